import type { Agent, AgentState } from '../../../protocol/api';
import { note } from '../context';

/** Where `delegate`, `resume` and `wait` stop following: the agent needs a human or has ended. */
export const pauseOrEndStates: readonly AgentState[] = [
  'awaiting_review',
  'reviewing',
  'done',
  'failed',
  'cancelled',
];

/** Tells the user what the agent is waiting for and which command comes next. */
export function describeNextStep(agent: Agent): void {
  switch (agent.state) {
    case 'awaiting_review':
    case 'reviewing':
      note(
        `\nagent ${agent.id} asks for review: ${agent.review?.message ?? agent.stateReason ?? ''}`,
      );
      note(
        `  agentvm review ${agent.id}                     # restore the paused VM to look at its work`,
      );
      note(`  agentvm exec ${agent.id} -- git log --oneline  # run a command in it`);
      note(`  agentvm resume ${agent.id} --message "..."     # answer and let it continue`);
      break;
    case 'done':
      note(`\nagent ${agent.id} is done: ${agent.result?.commits.length ?? 0} commit(s)`);
      note(`  agentvm diff ${agent.id}    # the patch`);
      note(`  agentvm apply ${agent.id}   # a local branch with its commits`);
      break;
    case 'failed':
      note(`\nagent ${agent.id} failed: ${agent.stateReason ?? 'unknown reason'}`);
      note(`  agentvm logs ${agent.id}             # its timeline, with the command's output`);
      note(
        `  agentvm logs ${agent.id} --console   # the VM's console (for a VM that did not boot)`,
      );
      break;
    default:
      note(`\nagent ${agent.id} is ${agent.state}`);
  }
}
