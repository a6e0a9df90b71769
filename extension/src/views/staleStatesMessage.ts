import type { BrokerStatus } from '../model/AgentStore';

/**
 * The line over the Agents tree while the event stream is down and the tree still shows agents:
 * their states are the last ones seen and may have changed since. Undefined when the tree is
 * current, or empty (the welcome views explain an unreachable broker then).
 */
export function staleStatesMessage(
  status: BrokerStatus,
  agentCount: number,
  brokerUrl: string,
  disconnectedAtMs: number | undefined,
): string | undefined {
  if (status === 'connected' || status === 'idle' || agentCount === 0) return undefined;

  const since =
    disconnectedAtMs === undefined
      ? ''
      : ` since ${new Date(disconnectedAtMs).toLocaleTimeString()}`;
  if (status === 'unauthorized') {
    return `The broker at ${brokerUrl} refused the token${since}: states shown may be out of date. Sign in again (agentvm: Sign in to broker).`;
  }

  return `Not connected to the broker at ${brokerUrl}${since}: states shown may be out of date. Reconnecting…`;
}
