import type { Agent } from '../../protocol/api';
import type { Store } from '../store/Store';

/**
 * Milliseconds the agent's VM has been running in its current run segment, 0 when no VM of it
 * runs: what the broker has not yet charged to the agent's record (it charges a segment when it
 * ends).
 */
export type LiveVmMs = (agentId: string) => number;

/**
 * Completes agents as the API sends them with `vmSeconds`: the seconds charged to the agent's
 * record plus the segment its VM is running now. Without `liveVmMs` the running segment is left
 * out, so an agent whose VM runs shows only the segments that ended.
 */
export function agentVmTime(store: Store, liveVmMs?: LiveVmMs): (agent: Agent) => Agent {
  return (agent) => {
    const record = store.getAgent(agent.id);
    if (!record) return agent;

    const ms = record.vmSeconds * 1000 + (liveVmMs?.(agent.id) ?? 0);
    return { ...agent, vmSeconds: Math.round(ms) / 1000 };
  };
}
