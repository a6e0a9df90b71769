import type http from 'node:http';
import { decideHost, trackTarget, type EgressAgent, type EgressAuditor } from './EgressAgent';
import { normalizeHost } from './HostAllowlist';

/** What one `egress.closed` row says about the connections cut to one `host:port`. */
type ClosedTarget = {
  host: string;
  port: number;
  tunnels: number;
  connections: number;
  reason: string;
};

/**
 * Ends every tunnel and proxy connection whose host the agent's policy no longer allows, with one
 * `egress.closed` audit row per host. Tunnels are known from their CONNECT; connections carrying
 * plain requests only from {@link rememberPlainTarget}.
 */
export function closeDisallowed(agent: EgressAgent, audit: EgressAuditor): void {
  const closed = new Map<string, ClosedTarget>();
  for (const [socket, target] of agent.targets) {
    const decision = decideHost(agent, target.host, target.port);
    if (decision.allowed) continue;

    agent.targets.delete(socket);
    socket.destroy();
    const key = `${target.host}:${target.port}`;
    const entry = closed.get(key) ?? {
      host: target.host,
      port: target.port,
      tunnels: 0,
      connections: 0,
      reason: decision.reason,
    };
    if (target.kind === 'tunnel') entry.tunnels++;
    else entry.connections++;
    closed.set(key, entry);
  }

  for (const entry of closed.values()) audit(agent, 'egress.closed', 'deny', entry);
}

/**
 * Notes which host a plain proxy request on this connection goes to, when the policy allows it,
 * so a later policy change can close the connection (it may be kept alive, or still streaming).
 */
export function rememberPlainTarget(agent: EgressAgent, request: http.IncomingMessage): void {
  let url: URL;
  try {
    url = new URL(request.url ?? '');
  } catch {
    return;
  }
  if (url.protocol !== 'http:') return;

  const host = normalizeHost(url.hostname);
  const port = Number(url.port || 80);
  if (decideHost(agent, host, port).allowed)
    trackTarget(agent, request.socket, { host, port, kind: 'request' });
}
