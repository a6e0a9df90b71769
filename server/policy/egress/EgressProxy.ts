import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import type { Logger } from '../../log';
import { isDiskFullError } from '../../store/storeFullError';
import type { AuditSink } from '../audit/AuditLog';
import type { SecretBinding } from '../secrets/SecretBindings';
import type { CertificateAuthority } from './CertificateAuthority';
import { answerInTurn, MAX_PIPELINED_REQUESTS } from './answerInTurn';
import { clipAuditDetails } from './clipAuditDetails';
import { ConnectHandler } from './ConnectHandler';
import { DenialBudget } from './DenialBudget';
import {
  auditRefusalFromHandler,
  compileEgressPolicy,
  decideHost,
  trackSocket,
  trackTarget,
  type EgressAgent,
  type EgressAuditor,
} from './EgressAgent';
import { normalizeHost } from './HostAllowlist';
import { HttpForwarder } from './HttpForwarder';
import { refuse, refuseSocket, refuseUnparsable } from './refuse';

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
  /** Guest connections one agent may hold open at once ({@link MAX_GUEST_CONNECTIONS} default). */
  maxConnectionsPerAgent?: number;
  /**
   * Close a guest connection on which nothing has moved for this many milliseconds while it is not
   * a spliced tunnel: one that never sent a request, or an inspected tunnel that never finished its
   * TLS handshake or request ({@link GUEST_IDLE_TIMEOUT_MS} default).
   */
  guestIdleTimeoutMs?: number;
}

/**
 * Guest connections one agent may hold open at once; more are closed as they arrive. Each guest
 * connection is a relay process on the host (see guestEgress.ts), so an agent opening connections
 * without end would otherwise grow the host's process table without end.
 */
export const MAX_GUEST_CONNECTIONS = 128;

/**
 * How long a guest connection may stay silent outside a spliced tunnel, in milliseconds. Longer
 * than the upstream timeout, so an answer still on its way is never what ends it; without it, a
 * connection that never sent anything held its relay process on the host until the agent ended.
 */
export const GUEST_IDLE_TIMEOUT_MS = 120_000;

/** Refusals whose rows a {@link DenialBudget} bounds. */
const coalescedActions = new Set(['egress.request', 'egress.connect', 'github.call']);

/** Connections refused for the limit are audited at most once in this many milliseconds. */
const LIMIT_AUDIT_INTERVAL_MS = 60_000;

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
 * This class owns the per-agent listeners; {@link HttpForwarder} handles requests and
 * {@link ConnectHandler} handles tunnels.
 */
export class EgressProxy {
  private readonly options: EgressProxyOptions;
  private readonly agents = new Map<string, EgressAgent>();
  private readonly forwarder: HttpForwarder;
  private readonly tunnels: ConnectHandler;
  /** {@link audit}, bound: what the handlers write their rows with. */
  private readonly auditor: EgressAuditor = this.audit.bind(this);

  constructor(options: EgressProxyOptions) {
    this.options = options;
    this.forwarder = new HttpForwarder(options, this.auditor);
    this.tunnels = new ConnectHandler(options, this.auditor);
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
      listener: http.createServer(),
      inner: http.createServer(),
      sockets: new Set(),
      targets: new Map(),
      denials: new DenialBudget((summary) =>
        auditRefusalFromHandler(this.auditor, this.options.log, state, 'egress.denied', {
          ...summary,
        }),
      ),
    };
    state.listener.on('request', (request, response) =>
      this.inTurn(state, request, response, () =>
        this.guarded(state, response, () => {
          this.rememberPlainTarget(state, request);
          this.forwarder.onPlainRequest(state, request, response);
        }),
      ),
    );
    state.listener.on('connect', (request, socket, head) =>
      this.guarded(state, socket, () => this.tunnels.onConnect(state, request, socket, head)),
    );
    state.inner.on('request', (request, response) =>
      this.inTurn(state, request, response, () =>
        this.guarded(state, response, () =>
          this.forwarder.onTlsRequest(
            state,
            this.tunnels.originOf(request.socket),
            request,
            response,
          ),
        ),
      ),
    );
    for (const server of [state.listener, state.inner]) {
      // Clients that half-close after sending (nc-style relays, some HTTP/1.0 tools) would otherwise
      // have their request aborted before the upstream answers; Node has no public option for this.
      (server as unknown as { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
      server.on('connection', (socket: Duplex) => trackSocket(state.sockets, socket));
      server.on('clientError', refuseUnparsable);
      // Node arms this on each connection (a TLS one too, emitted into `inner`) and, when it fires
      // with no 'timeout' listener, destroys the socket. A spliced tunnel has left the server: its
      // timer fires to no listener, so a quiet tunnel stays open.
      server.timeout = this.options.guestIdleTimeoutMs ?? GUEST_IDLE_TIMEOUT_MS;
    }

    this.limitConnections(state);

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
    this.closeDisallowed(state);
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
   * Notes which host a plain proxy request on this connection goes to, when the policy allows it,
   * so a later policy change can close the connection (it may be kept alive, or still streaming).
   */
  private rememberPlainTarget(agent: EgressAgent, request: http.IncomingMessage): void {
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

  /** Ends every tunnel and proxy connection whose host the agent's policy no longer allows. */
  private closeDisallowed(agent: EgressAgent): void {
    const closed = new Map<
      string,
      { host: string; port: number; tunnels: number; connections: number; reason: string }
    >();
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

    for (const entry of closed.values()) this.audit(agent, 'egress.closed', 'deny', entry);
  }

  /**
   * Closes guest connections past the agent's limit as they arrive, and audits the refusals: the
   * first at once, later ones counted into one row a minute, so a flood does not flood the log.
   */
  private limitConnections(agent: EgressAgent): void {
    const limit = this.options.maxConnectionsPerAgent ?? MAX_GUEST_CONNECTIONS;
    agent.listener.maxConnections = limit;
    let refused = 0;
    let auditedAt = -Infinity;
    agent.listener.on('drop', () => {
      refused++;
      const now = performance.now();
      if (now - auditedAt < LIMIT_AUDIT_INTERVAL_MS) return;

      auditedAt = now;
      const details = { limit, refused, reason: `more than ${limit} open connections` };
      refused = 0;
      this.options.log?.warn('egress.connection_limit', { agentId: agent.id, ...details });
      auditRefusalFromHandler(
        this.auditor,
        this.options.log,
        agent,
        'egress.connection_limit',
        details,
      );
    });
  }

  /** Handles a request after those before it on its connection (see {@link answerInTurn}). */
  private inTurn(
    agent: EgressAgent,
    request: http.IncomingMessage,
    response: http.ServerResponse,
    handle: () => void,
  ): void {
    if (answerInTurn(request, response, handle)) return;

    const details = {
      limit: MAX_PIPELINED_REQUESTS,
      reason: `more than ${MAX_PIPELINED_REQUESTS} pipelined requests waiting on one connection`,
    };
    this.options.log?.warn('egress.pipeline_limit', { agentId: agent.id, ...details });
    auditRefusalFromHandler(
      this.auditor,
      this.options.log,
      agent,
      'egress.pipeline_limit',
      details,
    );
  }

  /**
   * Runs a request handler so that its failure refuses that one request instead of ending the
   * broker (an exception in a server's event handler, or a rejected promise nobody awaits, would).
   * The usual failure is the audit log's write on a full disk: what cannot be audited does not
   * leave the VM, so the request is refused before anything is sent upstream.
   */
  private guarded(
    agent: EgressAgent,
    client: http.ServerResponse | Duplex,
    handle: () => void | Promise<void>,
  ): void {
    const fail = (error: unknown) => {
      const diskFull = isDiskFullError(error);
      const reason = diskFull
        ? 'the broker cannot write its audit log (its disk is full), so nothing leaves the VM until it can'
        : `the egress proxy failed: ${(error as Error).message}`;
      this.options.log?.error('egress.handler_failed', {
        agentId: agent.id,
        error: (error as Error).message,
      });
      const status = diskFull ? 503 : 502;
      if (client instanceof http.ServerResponse) {
        if (client.headersSent) client.destroy();
        else refuse(client, status, reason);
      } else if (!client.destroyed) {
        refuseSocket(client, status, reason);
      }
    };
    try {
      const pending = handle();
      if (pending) pending.catch(fail);
    } catch (error) {
      fail(error);
    }
  }

  private audit(
    agent: EgressAgent,
    action: string,
    decision: 'allow' | 'deny',
    details: Record<string, unknown>,
  ): void {
    // Refusals by policy are counted past a budget; a refusal by address follows an allow row or
    // says where a name led, and the limits' own rows are already bounded: those are all written.
    const budgeted =
      decision === 'deny' && coalescedActions.has(action) && details.addressClass === undefined;
    if (budgeted && !agent.denials.admit(action, details.host, details.port)) return;

    const clipped = clipAuditDetails(details);
    this.options.audit?.({
      actor: agent.policy.actor,
      agentId: agent.id,
      action,
      decision,
      details: clipped,
    });
    this.options.log?.debug(action, { agentId: agent.id, decision, ...clipped });
  }
}

/**
 * Makes the socket's directory 0700 and owned by this process's user (refusing one that another
 * user owns or that is a symlink), and removes a stale socket left in it.
 */
function prepareSocketPath(socketPath: string): void {
  const dir = path.dirname(socketPath);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });

  const stat = fs.lstatSync(dir);
  if (!stat.isDirectory()) throw new Error(`${dir} is not a directory`);
  if (process.getuid && stat.uid !== process.getuid())
    throw new Error(`${dir} belongs to uid ${stat.uid}, not to the broker's user`);
  fs.chmodSync(dir, 0o700);

  const existing = fs.lstatSync(socketPath, { throwIfNoEntry: false });
  if (!existing) return;
  if (!existing.isSocket()) throw new Error(`${socketPath} exists and is not a socket`);
  fs.unlinkSync(socketPath);
}
