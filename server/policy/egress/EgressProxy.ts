import http from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import type { Logger } from '../../log';
import type { AuditSink } from '../audit/AuditLog';
import { decideGithubCall } from '../github/githubPermission';
import { substituteSecrets, type SecretBinding } from '../secrets/SecretBindings';
import type { CertificateAuthority } from './CertificateAuthority';
import { endToEndHeaders, forwardRequest, type UpstreamTarget } from './forwardRequest';
import { guardedLookup } from './guardedLookup';
import { HostAllowlist, normalizeHost } from './HostAllowlist';

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

interface AgentState {
  id: string;
  policy: AgentEgressPolicy;
  allowlist: HostAllowlist;
  github: { host: string; port: number } | null;
  listener: http.Server;
  /** Serves requests read from TLS connections the proxy terminated. */
  inner: http.Server;
  sockets: Set<Duplex>;
}

interface Decision {
  allowed: boolean;
  reason: string;
  allowLocal: boolean;
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
 */
export class EgressProxy {
  private readonly options: EgressProxyOptions;
  private readonly agents = new Map<string, AgentState>();
  private readonly tlsTargets = new WeakMap<
    object,
    { agent: AgentState; host: string; port: number }
  >();

  constructor(options: EgressProxyOptions) {
    this.options = options;
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

    const state: AgentState = {
      id: agentId,
      ...compilePolicy(policy),
      listener: http.createServer(),
      inner: http.createServer(),
      sockets: new Set(),
    };
    state.listener.on('request', (request, response) =>
      this.onPlainRequest(state, request, response),
    );
    state.listener.on(
      'connect',
      (request, socket, head) => void this.onConnect(state, request, socket, head),
    );
    state.inner.on('request', (request, response) => this.onTlsRequest(state, request, response));
    for (const server of [state.listener, state.inner]) {
      // Clients that half-close after sending (nc-style relays, some HTTP/1.0 tools) would otherwise
      // have their request aborted before the upstream answers; Node has no public option for this.
      (server as unknown as { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
      server.on('connection', (socket: Duplex) => track(state.sockets, socket));
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

    Object.assign(state, compilePolicy(policy));
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

  private decideHost(state: AgentState, host: string, port: number): Decision {
    const name = normalizeHost(host);
    const literal = net.isIP(name) !== 0;
    if (state.github && state.github.host === name && state.github.port === port) {
      return { allowed: true, reason: 'GitHub API host', allowLocal: literal };
    }

    const pattern = state.allowlist.match(name, port);
    if (pattern)
      return {
        allowed: true,
        reason: `allowed by ${pattern.source}`,
        allowLocal: literal && !pattern.wildcard,
      };

    const allowed = state.allowlist.entries.join(', ') || 'nothing';
    return {
      allowed: false,
      reason: `${name}:${port} is not in this agent's allowedHosts (allowed: ${allowed})`,
      allowLocal: false,
    };
  }

  private mustInspect(state: AgentState, host: string, port: number): boolean {
    if (state.github && state.github.host === host && state.github.port === port) return true;
    return (state.policy.secrets ?? []).some((binding) => binding.hosts.allows(host, port));
  }

  private onPlainRequest(
    state: AgentState,
    request: http.IncomingMessage,
    response: http.ServerResponse,
  ): void {
    let url: URL;
    try {
      url = new URL(request.url ?? '');
    } catch {
      return refuse(response, 400, 'this is an HTTP proxy: send absolute http:// URLs or CONNECT');
    }

    if (url.protocol !== 'http:') {
      return refuse(
        response,
        400,
        `${url.protocol} URLs go through CONNECT, not a plain proxy request`,
      );
    }

    const host = normalizeHost(url.hostname);
    const port = Number(url.port || 80);
    const decision = this.decideHost(state, host, port);
    if (!decision.allowed) {
      this.audit(state, 'egress.request', 'deny', {
        host,
        port,
        method: request.method,
        path: url.pathname,
        reason: decision.reason,
      });
      return refuse(response, 403, decision.reason);
    }

    const target = { host, port, tls: false, allowLocal: decision.allowLocal };
    this.forward(state, target, request, response, url.pathname + url.search);
  }

  private onTlsRequest(
    state: AgentState,
    request: http.IncomingMessage,
    response: http.ServerResponse,
  ): void {
    const origin = this.tlsTargets.get(request.socket);
    if (!origin) return refuse(response, 500, 'lost track of this TLS connection');

    const decision = this.decideHost(state, origin.host, origin.port);
    if (!decision.allowed) {
      this.audit(state, 'egress.request', 'deny', {
        host: origin.host,
        port: origin.port,
        method: request.method,
        reason: decision.reason,
      });
      return refuse(response, 403, decision.reason);
    }

    const target = {
      host: origin.host,
      port: origin.port,
      tls: true,
      allowLocal: decision.allowLocal,
    };
    this.forward(state, target, request, response, request.url ?? '/');
  }

  private forward(
    state: AgentState,
    target: UpstreamTarget,
    request: http.IncomingMessage,
    response: http.ServerResponse,
    path: string,
  ): void {
    const method = request.method ?? 'GET';
    const pathname = path.split('?')[0];
    const github =
      state.github && state.github.host === target.host && state.github.port === target.port;
    const bindings = [...(state.policy.secrets ?? [])];
    const facts: Record<string, unknown> = {
      host: target.host,
      port: target.port,
      method,
      path: pathname,
      tls: target.tls,
    };

    if (github && state.policy.github) {
      const grant = state.policy.github;
      const verdict = decideGithubCall(grant, method, path);
      if (!verdict.allowed) {
        this.audit(state, 'github.call', 'deny', { ...facts, reason: verdict.reason });
        return refuse(response, 403, verdict.reason);
      }
      bindings.push(grant.token);
      facts.reason = verdict.reason;
    }

    const { headers, injected, withheld } = substituteSecrets(
      endToEndHeaders(request.headers),
      target.host,
      target.port,
      bindings,
    );
    this.audit(state, github ? 'github.call' : 'egress.request', 'allow', {
      ...facts,
      injected,
      withheld,
    });

    const options = {
      upstreamCa: this.options.upstreamCa,
      upstreamTimeoutMs: this.options.upstreamTimeoutMs ?? 30_000,
    };
    forwardRequest(request, response, target, path, headers, options, (error) =>
      this.options.log?.warn('egress.upstream_failed', {
        agentId: state.id,
        host: target.host,
        port: target.port,
        error: error.message,
      }),
    );
  }

  private async onConnect(
    state: AgentState,
    request: http.IncomingMessage,
    socket: Duplex,
    head: Buffer,
  ): Promise<void> {
    track(state.sockets, socket);
    socket.on('error', () => socket.destroy());

    const match = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(request.url ?? '');
    if (!match) return refuseSocket(socket, 400, 'CONNECT needs host:port');

    const host = normalizeHost(match[1]);
    const port = Number(match[2]);
    const decision = this.decideHost(state, host, port);
    if (!decision.allowed) {
      this.audit(state, 'egress.connect', 'deny', { host, port, reason: decision.reason });
      return refuseSocket(socket, 403, decision.reason);
    }

    if (this.mustInspect(state, host, port))
      return this.terminateTls(state, socket, head, host, port);

    this.audit(state, 'egress.connect', 'allow', { host, port, inspected: false });
    const upstream = net.connect({
      host,
      port,
      lookup: guardedLookup(decision.allowLocal) as never,
    });
    track(state.sockets, upstream);
    let connected = false;
    upstream.once('connect', () => {
      connected = true;
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
    upstream.on('error', (error) => {
      if (connected) return socket.destroy();

      this.options.log?.warn('egress.upstream_failed', {
        agentId: state.id,
        host,
        port,
        error: error.message,
      });
      refuseSocket(socket, 502, `cannot reach ${host}:${port}: ${error.message}`);
    });
    socket.on('close', () => upstream.destroy());
  }

  private async terminateTls(
    state: AgentState,
    socket: Duplex,
    head: Buffer,
    host: string,
    port: number,
  ): Promise<void> {
    let secureContext: tls.SecureContext;
    try {
      secureContext = await this.options.ca.secureContextFor(host);
    } catch (error) {
      this.options.log?.error('egress.forge_failed', { host, error: (error as Error).message });
      return refuseSocket(socket, 502, `could not make a certificate for ${host}`);
    }

    this.audit(state, 'egress.connect', 'allow', { host, port, inspected: true });
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length > 0) socket.unshift(head);

    const secure = new tls.TLSSocket(socket, {
      isServer: true,
      secureContext,
      ALPNProtocols: ['http/1.1'],
    });
    secure.on('error', () => secure.destroy());
    this.tlsTargets.set(secure, { agent: state, host, port });
    state.inner.emit('connection', secure);
  }

  private audit(
    state: AgentState,
    action: string,
    decision: 'allow' | 'deny',
    details: Record<string, unknown>,
  ): void {
    this.options.audit?.({
      actor: state.policy.actor,
      agentId: state.id,
      action,
      decision,
      details,
    });
    this.options.log?.debug(action, { agentId: state.id, decision, ...details });
  }
}

function compilePolicy(
  policy: AgentEgressPolicy,
): Pick<AgentState, 'policy' | 'allowlist' | 'github'> {
  let github: AgentState['github'] = null;
  if (policy.github) {
    const [host, port] = policy.github.apiHost.split(':');
    github = { host: normalizeHost(host), port: port ? Number(port) : 443 };
  }
  return { policy, allowlist: new HostAllowlist(policy.allowedHosts), github };
}

function track(sockets: Set<Duplex>, socket: Duplex): void {
  sockets.add(socket);
  socket.once('close', () => sockets.delete(socket));
}

function refuse(response: http.ServerResponse, status: number, reason: string): void {
  const body = `agentvm egress proxy refused this request: ${reason}\n`;
  response.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'x-agentvm-egress': headerSafe(reason),
  });
  response.end(body);
}

function refuseSocket(socket: Duplex, status: number, reason: string): void {
  const body = `agentvm egress proxy refused this request: ${reason}\n`;
  const statusText = http.STATUS_CODES[status] ?? 'Error';
  socket.end(
    `HTTP/1.1 ${status} ${statusText}\r\nContent-Type: text/plain; charset=utf-8\r\n` +
      `X-Agentvm-Egress: ${headerSafe(reason)}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
      `Connection: close\r\n\r\n${body}`,
  );
}

function headerSafe(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?');
}
