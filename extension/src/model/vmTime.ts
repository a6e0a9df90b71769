import type { Agent, AgentState } from '../../../protocol/api';
import { formatDuration } from '../../../server/cli/commands/formatDuration';

/**
 * States in which the broker has the agent's VM running, so its VM time grows: the broker counts
 * a VM from when it attaches it (just before `running` or `reviewing`) until its process ends (a
 * snapshot written after `pausing`, or the agent ending).
 */
export const vmRunningStates: readonly AgentState[] = ['running', 'pausing', 'reviewing'];

/** When and how the extension holds an agent's figure. */
export interface VmTimeReading {
  /** When the extension received the agent from the broker, in epoch milliseconds. */
  receivedAtMs: number;
  /** Whether the event stream is connected, so the agent stopping would have reached us. */
  live: boolean;
  /** Now, in epoch milliseconds. */
  nowMs: number;
}

/**
 * Whether the agent's VM time grows by itself as the extension sees it: its VM runs and the
 * stream is connected (the broker sends agents on changes of state, not as the seconds pass).
 */
export function vmTimeCounts(agent: Pick<Agent, 'state' | 'vmSeconds'>, live: boolean): boolean {
  return agent.vmSeconds !== undefined && live && vmRunningStates.includes(agent.state);
}

/**
 * The agent's VM time as the tree and the panel show it, undefined when the broker does not send
 * it (brokers older than `vmSeconds`). While the VM runs the figure is counted on from when it
 * arrived (`4m12s so far`), as the broker would count it; when it may have grown but the stream
 * is down, it says when it was true (`4m12s at 09:41`, local time); otherwise it is final until
 * the next change (`4m12s`).
 */
export function vmTimeText(
  agent: Pick<Agent, 'state' | 'vmSeconds'>,
  reading: VmTimeReading,
): string | undefined {
  if (agent.vmSeconds === undefined) return undefined;

  if (vmTimeCounts(agent, reading.live)) {
    const sinceMs = Math.max(0, reading.nowMs - reading.receivedAtMs);
    return `${formatDuration(agent.vmSeconds + sinceMs / 1000)} so far`;
  }
  if (vmRunningStates.includes(agent.state)) {
    return `${formatDuration(agent.vmSeconds)} at ${clockTime(reading.receivedAtMs)}`;
  }

  return formatDuration(agent.vmSeconds);
}

/** Epoch milliseconds as local `HH:MM`. */
function clockTime(ms: number): string {
  const date = new Date(ms);
  const twoDigits = (value: number) => String(value).padStart(2, '0');
  return `${twoDigits(date.getHours())}:${twoDigits(date.getMinutes())}`;
}
