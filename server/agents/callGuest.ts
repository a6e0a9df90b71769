import type { GuestRequest } from '../../protocol/control';
import { AgentvmError } from '../../protocol/errors';
import type { AgentRecord } from '../store/Store';
import type { LiveVms } from './LiveVms';
import { stateHint } from './stateHint';

/** How long past an exec's own timeout the broker waits for the guest's answer, in milliseconds. */
const EXEC_ANSWER_GRACE_MS = 15_000;

/**
 * A file-API or exec call into the live VM of the agent `record` describes. Like review and
 * resume: a state without a VM is the caller's mistake (INVALID_STATE); a VM that should be there
 * and is not is the broker's (GUEST_UNREACHABLE).
 */
export function callGuest(
  vms: LiveVms,
  record: AgentRecord,
  request: GuestRequest,
): Promise<unknown> {
  const { id, state } = record;
  if (!['reviewing', 'running'].includes(state)) {
    throw new AgentvmError(
      'INVALID_STATE',
      `agent ${id} is ${state}: it has no running VM to call into`,
      stateHint(id, state),
    );
  }
  const live = vms.get(id);
  if (!live) {
    throw new AgentvmError(
      'GUEST_UNREACHABLE',
      `agent ${id} is ${state}, but its VM is not attached (it may be starting or gone)`,
      `Try again in a moment; \`agentvm logs ${id}\` shows what happened to its VM.`,
    );
  }

  // The guest stops an exec at its timeoutMs and answers; the channel waits that long and more.
  const timeoutMs = request.op === 'exec' ? request.timeoutMs + EXEC_ANSWER_GRACE_MS : undefined;
  return live.vm.channel.request(request, timeoutMs);
}
