import type { AgentState } from '../../protocol/api';
import { AgentvmError } from '../../protocol/errors';

/**
 * INVALID_STATE for removing agent `id`, which has not ended (it is `state`), without force: what
 * removing it would throw away, and how to end it first. The broker answers a DELETE with it, and
 * the CLI checks every id of an `rm` with it before it removes any.
 */
export function liveRemovalError(id: string, state: AgentState): AgentvmError {
  const stop = `stop it with \`agentvm cancel ${id}\`, or remove it anyway with \`agentvm rm --force ${id}\` (API: DELETE /v1/agents/${id}?force=true)`;
  return new AgentvmError(
    'INVALID_STATE',
    `agent ${id} is ${state}, not ended: ${whatRemovalLoses(state)} (nothing was removed)`,
    state === 'awaiting_review'
      ? `Answer it with \`agentvm resume ${id} --message "..."\` and let it finish, ${stop}.`
      : `Let it finish, ${stop}.`,
  );
}

/** What removing an agent that has not ended throws away, which depends on whether it has a VM. */
function whatRemovalLoses(state: AgentState): string {
  switch (state) {
    case 'queued':
      return 'removing it drops its task before its VM starts';
    case 'awaiting_review':
      return 'it has no running VM but its paused one is saved on disk for the review: removing it deletes that snapshot and the work in it';
    default:
      return 'removing it stops its VM and deletes its work';
  }
}
