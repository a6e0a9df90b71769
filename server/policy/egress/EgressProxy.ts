import http from 'node:http';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from '../../log';
import type { AuditSink } from '../audit/AuditLog';
import type { SecretBinding } from '../secrets/SecretBindings';
import type { CertificateAuthority } from './CertificateAuthority';
import { ConnectHandler } from './ConnectHandler';
import { compileEgressPolicy, trackSocket, type EgressAgent } from './EgressAgent';
import { HttpForwarder } from './HttpForwarder';

/** GitHub access through the proxy: calls to `apiHost` are checked against `scopes`. */
export interface GithubEgress {
  /** `api.github.com`, or `host:port` of a test server. */
  apiHost: string;
  scopes: readonly string[];
  repositories?: readonly string[];
  /** The token's binding; its placeholder is replaced only in calls the scopes allow. */
  token: SecretBinding;
}

/** What one agent may reach. Replace it at run time with {@link EgressProxy.updateAgent}. */
export interface AgentEgressPolicy {
  /** The user who delegated the agent; every audit row names them. */
  actor: string;
  allowedHosts: readonly string[];
  secrets?: readonly SecretBinding[];
  github?: GithubEgress;
}

export interface EgressProxyOptions {
  ca: CertificateAuthority;
  audit?: AuditSink;
  log?: Logger;
  /** Extra CA certificates (PEM) trusted for upstream TLS besides the system roots (tests). */
  upstreamCa?: string[];
  /** Give up on an upstream that has not answered within this many milliseconds; 30 s default. */
  upstreamTimeoutMs?: number;
}

/** Where an agent's proxy listens on the host; the VMM forwards the guest's proxy address here. */
export interface EgressEndpoint {
  hostPort: number;
}

/**
 * The broker's egress proxy: an HTTP forward proxy with CONNECT, one loopback listener per agent
 * (the listener an agent's connection arrives on is its identity). It applies the agent's host
 * allowlist, swaps secret placeholders for real values in headers sent to the hosts each secret is
 * bound to, checks GitHub API calls against the agent's scopes, and audits every decision.
 *
 * HTTPS is tunnelled untouched unless the proxy must read it (a host with a bound secret, or the
 * GitHub API host); then it terminates TLS with a certificate forged by the broker's CA and opens
 * its own verified TLS connection upstream.
 *
 * This class owns the per-agent listeners; {@link HttpForwarder} handles requests and
 * {@link ConnectHandler} handles tunnels.
 */
export class EgressProxy {
  private readonly options: EgressProxyOptions;
  private readonly agents = new Map<string, EgressAgent>();
  private readonly forwarder: HttpForwarder;
  private readonly tunnels: ConnectHandler;

  constructor(options: EgressProxyOptions) {
    this.options = options;
    const audit = this.audit.bind(this);
    this.forwarder = new HttpForwarder(options, audit);
    this.tunnels = new ConnectHandler(options, audit);
  }

  /**
   * Start an agent's listener on 127.0.0.1 with its policy. `preferredPort` (a VM that outlived a
   * broker restart still forwards to its old port) is tried first; a random port otherwise.
   */
  async addAgent(
    agentId: string,
    policy: AgentEgressPolicy,
    preferredPort = 0,
  ): Promise<EgressEndpoint> {
    if (this.agents.has(agentId))
      throw new Error(`agent ${agentId} already has an egress listener`);

    const state: EgressAgent = {
      id: agentId,
      ...compileEgressPolicy(policy),
      listener: http.createServer(),
      inner: http.createServer(),
      sockets: new Set(),
    };
    state.listener.on('request', (request, response) =>
      this.forwarder.onPlainRequest(state, request, response),
    );
    state.listener.on(
      'connect',
      (request, socket, head) => void this.tunnels.onConnect(state, request, socket, head),
    );
    state.inner.on('request', (request, response) =>
      this.forwarder.onTlsRequest(state, this.tunnels.originOf(request.socket), request, response),
    );
    for (const server of [state.listener, state.inner]) {
      // Clients that half-close after sending (nc-style relays, some HTTP/1.0 tools) would otherwise
      // have their request aborted before the upstream answers; Node has no public option for this.
      (server as unknown as { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
      server.on('connection', (socket: Duplex) => trackSocket(state.sockets, socket));
      server.on('clientError', (_error, socket) => socket.destroy());
    }

    const listen = (port: number) =>
      new Promise<void>((resolve, reject) => {
        state.listener.once('error', reject);
        state.listener.listen(port, '127.0.0.1', () => resolve());
      });
    await listen(preferredPort).catch((error: NodeJS.ErrnoException) => {
      if (preferredPort === 0 || error.code !== 'EADDRINUSE') throw error;
      return listen(0);
    });
    this.agents.set(agentId, state);
    return { hostPort: (state.listener.address() as net.AddressInfo).port };
  }

  /** Replace a running agent's policy; connections opened afterwards see the new one. */
  updateAgent(agentId: string, policy: AgentEgressPolicy): void {
    const state = this.agents.get(agentId);
    if (!state) throw new Error(`agent ${agentId} has no egress listener`);

    Object.assign(state, compileEgressPolicy(policy));
  }

  /** Change only the allowlist of a running agent. */
  setAllowedHosts(agentId: string, allowedHosts: readonly string[]): void {
    const state = this.agents.get(agentId);
    if (!state) throw new Error(`agent ${agentId} has no egress listener`);

    this.updateAgent(agentId, { ...state.policy, allowedHosts });
  }

  /** The port of an agent's listener, or `null` when it has none. */
  endpoint(agentId: string): EgressEndpoint | null {
    const state = this.agents.get(agentId);
    return state ? { hostPort: (state.listener.address() as net.AddressInfo).port } : null;
  }

  /** Close an agent's listener and every connection it carries. Safe to call twice. */
  async removeAgent(agentId: string): Promise<void> {
    const state = this.agents.get(agentId);
    if (!state) return;

    this.agents.delete(agentId);
    for (const socket of state.sockets) socket.destroy();
    await new Promise<void>((resolve) => state.listener.close(() => resolve()));
  }

  /** Close every listener. Safe to call twice. */
  async close(): Promise<void> {
    await Promise.all([...this.agents.keys()].map((agentId) => this.removeAgent(agentId)));
  }

  private audit(
    agent: EgressAgent,
    action: string,
    decision: 'allow' | 'deny',
    details: Record<string, unknown>,
  ): void {
    this.options.audit?.({
      actor: agent.policy.actor,
      agentId: agent.id,
      action,
      decision,
      details,
    });
    this.options.log?.debug(action, { agentId: agent.id, decision, ...details });
  }
}
