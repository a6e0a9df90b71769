import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import type { Logger } from '../../log';
import type { AuditSink } from '../audit/AuditLog';
import type { SecretBinding } from '../secrets/SecretBindings';
import type { CertificateAuthority } from './CertificateAuthority';
import { closeDisallowed, rememberPlainTarget } from './closeDisallowed';
import { ConnectHandler } from './ConnectHandler';
import { createEgressAuditor } from './createEgressAuditor';
import { DenialBudget } from './DenialBudget';
import {
  auditRefusalFromHandler,
  compileEgressPolicy,
  trackSocket,
  type EgressAgent,
  type EgressAuditor,
} from './EgressAgent';
import { guarded } from './guarded';
import { GuestLimits } from './GuestLimits';
import { HttpForwarder } from './HttpForwarder';
import { prepareSocketPath } from './prepareSocketPath';
import { refuseUnparsable } from './refuse';

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
  /**
   * Give up on an upstream that has not answered (or, for a CONNECT, not accepted the connection)
   * within this many milliseconds; 30 s by default (`DEFAULT_UPSTREAM_TIMEOUT_MS`).
   */
  upstreamTimeoutMs?: number;
  /** Guest connections one agent may hold open at once (`MAX_GUEST_CONNECTIONS` by default). */
  maxConnectionsPerAgent?: number;
  /**
   * Close a guest connection on which nothing has moved for this many milliseconds while it is not
   * a spliced tunnel: one that never sent a request, or an inspected tunnel that never finished its
   * TLS handshake or request (`GUEST_IDLE_TIMEOUT_MS` by default).
   */
  guestIdleTimeoutMs?: number;
  /**
   * Answer `408` to a guest request whose headers have not all arrived this many milliseconds after
   * its connection opened or the answer before it ended, on the plain listener and inside inspected
   * tunnels alike (`GUEST_HEADERS_TIMEOUT_MS`, 60 s, by default).
   */
  guestHeadersTimeoutMs?: number;
}

/** Where an agent's proxy listens on the host; the VMM forwards the guest's proxy address here. */
export interface EgressEndpoint {
  /** The listener's unix socket, in a directory only the broker's user may enter. */
  socketPath: string;
}

/**
 * The broker's egress proxy: an HTTP forward proxy with CONNECT, one unix-socket listener per agent
 * in a 0700 directory (the listener an agent's connection arrives on is its identity, and only the
 * broker's user, which runs the VMs' relays, can connect to it). It applies the agent's host
 * allowlist, swaps secret placeholders for real values in headers sent to the hosts each secret is
 * bound to, checks GitHub API calls against the agent's scopes, and audits every decision.
 *
 * HTTPS is tunnelled untouched unless the proxy must read it (a host with a bound secret, or the
 * GitHub API host); then it terminates TLS with a certificate forged by the broker's CA and opens
 * its own verified TLS connection upstream.
 *
 * This class owns the per-agent listeners and wires them to the parts that do the work:
 * {@link HttpForwarder} handles requests, {@link ConnectHandler} tunnels, {@link GuestLimits} what
 * bounds a guest, {@link closeDisallowed} what a narrower policy cuts.
 */
export class EgressProxy {
  private readonly options: EgressProxyOptions;
  private readonly agents = new Map<string, EgressAgent>();
  /** What every part writes its audit rows with. */
  private readonly auditor: EgressAuditor;
  private readonly forwarder: HttpForwarder;
  private readonly tunnels: ConnectHandler;
  private readonly limits: GuestLimits;

  constructor(options: EgressProxyOptions) {
    this.options = options;
    this.auditor = createEgressAuditor(options);
    this.forwarder = new HttpForwarder(options, this.auditor);
    this.tunnels = new ConnectHandler(options, this.auditor);
    this.limits = new GuestLimits(options, this.auditor);
  }

  /**
   * Start an agent's listener on the unix socket `socketPath` with its policy. The socket's
   * directory is created (or tightened) to mode 0700 and must belong to the broker's user; a
   * socket left there by an earlier broker is replaced, so a VM that outlived it finds the new one.
   */
  async addAgent(
    agentId: string,
    policy: AgentEgressPolicy,
    socketPath: string,
  ): Promise<EgressEndpoint> {
    if (this.agents.has(agentId))
      throw new Error(`agent ${agentId} already has an egress listener`);

    prepareSocketPath(socketPath);
    const state: EgressAgent = {
      id: agentId,
      ...compileEgressPolicy(policy),
      listener: http.createServer(this.limits.listenerOptions()),
      inner: http.createServer(),
      sockets: new Set(),
      targets: new Map(),
      denials: new DenialBudget((summary) =>
        auditRefusalFromHandler(this.auditor, this.options.log, state, 'egress.denied', {
          ...summary,
        }),
      ),
    };
    this.serve(state);

    await new Promise<void>((resolve, reject) => {
      state.listener.once('error', reject);
      state.listener.listen(socketPath, () => resolve());
    });
    this.agents.set(agentId, state);
    return { socketPath };
  }

  /**
   * Replace a running agent's policy. Connections opened afterwards see the new one; open tunnels
   * and keep-alive connections to hosts it no longer allows are closed at once, and audited.
   */
  updateAgent(agentId: string, policy: AgentEgressPolicy): void {
    const state = this.agents.get(agentId);
    if (!state) throw new Error(`agent ${agentId} has no egress listener`);

    Object.assign(state, compileEgressPolicy(policy));
    closeDisallowed(state, this.auditor);
  }

  /** Change only the allowlist of a running agent (closing what it no longer allows). */
  setAllowedHosts(agentId: string, allowedHosts: readonly string[]): void {
    const state = this.agents.get(agentId);
    if (!state) throw new Error(`agent ${agentId} has no egress listener`);

    this.updateAgent(agentId, { ...state.policy, allowedHosts });
  }

  /** The socket of an agent's listener, or `null` when it has none. */
  endpoint(agentId: string): EgressEndpoint | null {
    const state = this.agents.get(agentId);
    return state ? { socketPath: String(state.listener.address()) } : null;
  }

  /** Close an agent's listener and every connection it carries. Safe to call twice. */
  async removeAgent(agentId: string): Promise<void> {
    const state = this.agents.get(agentId);
    if (!state) return;

    this.agents.delete(agentId);
    state.denials.flush();
    const socketPath = String(state.listener.address());
    for (const socket of state.sockets) socket.destroy();
    await new Promise<void>((resolve) => state.listener.close(() => resolve()));
    try {
      fs.rmdirSync(path.dirname(socketPath));
    } catch {
      // Not empty, or already gone: the next start recreates and tightens it anyway.
    }
  }

  /** Close every listener. Safe to call twice. */
  async close(): Promise<void> {
    await Promise.all([...this.agents.keys()].map((agentId) => this.removeAgent(agentId)));
  }

  /**
   * Wires an agent's two servers: the listener, which takes plain proxy requests and CONNECTs, and
   * the inner server, which takes the requests read off the TLS connections the proxy terminated.
   */
  private serve(agent: EgressAgent): void {
    const { log } = this.options;
    agent.listener.on('request', (request, response) =>
      this.limits.inTurn(agent, request, response, () =>
        guarded(agent, response, log, () => {
          rememberPlainTarget(agent, request);
          this.forwarder.onPlainRequest(agent, request, response);
        }),
      ),
    );
    agent.listener.on('connect', (request, socket, head) =>
      guarded(agent, socket, log, () => this.tunnels.onConnect(agent, request, socket, head)),
    );
    agent.inner.on('request', (request, response) =>
      this.limits.inTurn(agent, request, response, () =>
        guarded(agent, response, log, () =>
          this.forwarder.onTlsRequest(
            agent,
            this.tunnels.originOf(request.socket),
            request,
            response,
          ),
        ),
      ),
    );
    for (const server of [agent.listener, agent.inner]) {
      // Clients that half-close after sending (nc-style relays, some HTTP/1.0 tools) would otherwise
      // have their request aborted before the upstream answers; Node has no public option for this.
      (server as unknown as { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
      server.on('connection', (socket: Duplex) => trackSocket(agent.sockets, socket));
      server.on('clientError', refuseUnparsable);
    }

    this.limits.apply(agent, (socket) => this.tunnels.originOf(socket));
  }
}
