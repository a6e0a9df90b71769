import type { AgentState } from '../../protocol/api';

/**
 * What the user can do next with an agent in `state`: the hint for an error that a request met
 * because of the agent's state. A fixed hint per error code would be wrong for some states (telling
 * someone to wait for an agent that waits for them, or to review one that has ended).
 */
export function stateHint(id: string, state: AgentState): string {
  switch (state) {
    case 'queued':
    case 'starting':
    case 'running':
    case 'pausing':
      return `Agent ${id} is still at work; follow it with \`agentvm logs -f ${id}\`.`;
    case 'awaiting_review':
      return `Agent ${id} waits for your review: \`agentvm review ${id}\` restores its VM to look around, \`agentvm resume ${id} --message "..."\` answers it.`;
    case 'restoring':
      return `Agent ${id}'s VM is being restored for review; try again in a moment.`;
    case 'reviewing':
      return `Agent ${id} is open for review: look with \`agentvm exec ${id} -- ...\`, then answer with \`agentvm resume ${id} --message "..."\`.`;
    case 'done':
      return `Agent ${id} is done and its VM is gone: \`agentvm diff ${id}\` shows its result, \`agentvm apply ${id}\` makes a branch of it.`;
    case 'failed':
      return `Agent ${id} failed and has no result or VM: \`agentvm logs ${id}\` says why; delegate the task again to retry.`;
    case 'cancelled':
      return `Agent ${id} was cancelled and has no result or VM; delegate the task again to retry.`;
  }
}
