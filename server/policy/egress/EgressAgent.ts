import type http from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from '../../log';
import type { DenialBudget } from './DenialBudget';
import type { AgentEgressPolicy } from './EgressProxy';
import { HostAllowlist, normalizeHost } from './HostAllowlist';

/** One agent as the egress proxy sees it: its policy, compiled, and the servers it owns. */
export interface EgressAgent {
  id: string;
  policy: AgentEgressPolicy;
  allowlist: HostAllowlist;
  github: { host: string; port: number } | null;
  listener: http.Server;
  /** Serves requests read from TLS connections the proxy terminated. */
  inner: http.Server;
  sockets: Set<Duplex>;
  /** Guest connections by where they lead, so a narrower policy can close them. */
  targets: Map<Duplex, EgressTarget>;
  /** How many of its refusals get audit rows of their own. */
  denials: DenialBudget;
}

/** Where one guest connection to the proxy leads. */
export interface EgressTarget {
  host: string;
  port: number;
  /** A CONNECT tunnel (spliced or inspected), or a connection carrying plain proxy requests. */
  kind: 'tunnel' | 'request';
}

/** Whether an agent may reach a host, and why, for the audit log and the refusal. */
export interface HostDecision {
  allowed: boolean;
  reason: string;
  /** Connect to host-local addresses: only when the allowlist names this literal address. */
  allowLocal: boolean;
}

/** Writes one audit row (and a debug log line) about an agent's egress. */
export type EgressAuditor = (
  agent: EgressAgent,
  action: string,
  decision: 'allow' | 'deny',
  details: Record<string, unknown>,
) => void;

/**
 * Writes a deny row from an event handler, after the refusal was sent: a failing audit write (a
 * full disk) is logged instead of thrown, which there would end the broker.
 */
export function auditRefusalFromHandler(
  audit: EgressAuditor,
  log: Logger | undefined,
  agent: EgressAgent,
  action: string,
  details: Record<string, unknown>,
): void {
  try {
    audit(agent, action, 'deny', details);
  } catch (error) {
    log?.error('egress.handler_failed', { agentId: agent.id, error: (error as Error).message });
  }
}

/** The parts of an {@link EgressAgent} that follow from its policy (replaced on update). */
export function compileEgressPolicy(
  policy: AgentEgressPolicy,
): Pick<EgressAgent, 'policy' | 'allowlist' | 'github'> {
  let github: EgressAgent['github'] = null;
  if (policy.github) {
    const [host, port] = policy.github.apiHost.split(':');
    github = { host: normalizeHost(host), port: port ? Number(port) : 443 };
  }
  return { policy, allowlist: new HostAllowlist(policy.allowedHosts), github };
}

/** Whether `host:port` is the GitHub API host of the agent's grant. */
export function isGithubHost(agent: EgressAgent, host: string, port: number): boolean {
  return agent.github !== null && agent.github.host === host && agent.github.port === port;
}

/** Applies the agent's allowlist (the GitHub API host of its grant is always allowed). */
export function decideHost(agent: EgressAgent, host: string, port: number): HostDecision {
  const name = normalizeHost(host);
  const literal = net.isIP(name) !== 0;
  if (isGithubHost(agent, name, port)) {
    return { allowed: true, reason: 'GitHub API host', allowLocal: literal };
  }

  const pattern = agent.allowlist.match(name, port);
  if (pattern)
    return {
      allowed: true,
      reason: `allowed by ${pattern.source}`,
      allowLocal: literal && !pattern.wildcard,
    };

  const allowed = agent.allowlist.entries.join(', ') || 'nothing';
  return {
    allowed: false,
    reason: `${name}:${port} is not in this agent's allowedHosts (allowed: ${allowed})`,
    allowLocal: false,
  };
}

/** Whether the proxy must read the agent's traffic to this host (a bound secret, or GitHub). */
export function mustInspect(agent: EgressAgent, host: string, port: number): boolean {
  if (isGithubHost(agent, host, port)) return true;
  return (agent.policy.secrets ?? []).some((binding) => binding.hosts.allows(host, port));
}

/** Counts `socket` among the agent's connections until it closes, so removal can end it. */
export function trackSocket(sockets: Set<Duplex>, socket: Duplex): void {
  sockets.add(socket);
  socket.once('close', () => sockets.delete(socket));
}

/** Records where a guest connection leads (the latest request's host) until it closes. */
export function trackTarget(agent: EgressAgent, socket: Duplex, target: EgressTarget): void {
  if (!agent.targets.has(socket)) socket.once('close', () => agent.targets.delete(socket));
  agent.targets.set(socket, target);
}
