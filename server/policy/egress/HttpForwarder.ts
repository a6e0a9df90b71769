import type http from 'node:http';
import { decideGithubCall } from '../github/githubPermission';
import { substituteSecrets } from '../secrets/SecretBindings';
import { decideHost, isGithubHost, type EgressAgent, type EgressAuditor } from './EgressAgent';
import type { EgressProxyOptions } from './EgressProxy';
import { endToEndHeaders, forwardRequest, type UpstreamTarget } from './forwardRequest';
import { normalizeHost } from './HostAllowlist';
import { refuse } from './refuse';

/** Where a request read from a terminated TLS connection was headed (its CONNECT target). */
export interface TlsOrigin {
  host: string;
  port: number;
}

/**
 * The request-level half of the egress proxy: absolute-URL plain-HTTP proxy requests and the
 * requests read off TLS connections the proxy terminated. Each is checked against the agent's
 * allowlist (and GitHub scopes), has secret placeholders swapped, is audited and sent upstream.
 */
export class HttpForwarder {
  constructor(
    private readonly options: EgressProxyOptions,
    private readonly audit: EgressAuditor,
  ) {}

  /** A plain proxy request: the URL names the upstream. */
  onPlainRequest(
    agent: EgressAgent,
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
    const decision = decideHost(agent, host, port);
    if (!decision.allowed) {
      this.audit(agent, 'egress.request', 'deny', {
        host,
        port,
        method: request.method,
        path: url.pathname,
        reason: decision.reason,
      });
      return refuse(response, 403, decision.reason);
    }

    const target = { host, port, tls: false, allowLocal: decision.allowLocal };
    this.forward(agent, target, request, response, url.pathname + url.search);
  }

  /**
   * A request inside a terminated TLS connection. The allowlist is checked again: it may have
   * changed since the CONNECT.
   */
  onTlsRequest(
    agent: EgressAgent,
    origin: TlsOrigin | undefined,
    request: http.IncomingMessage,
    response: http.ServerResponse,
  ): void {
    if (!origin) return refuse(response, 500, 'lost track of this TLS connection');

    const decision = decideHost(agent, origin.host, origin.port);
    if (!decision.allowed) {
      this.audit(agent, 'egress.request', 'deny', {
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
    this.forward(agent, target, request, response, request.url ?? '/');
  }

  private forward(
    agent: EgressAgent,
    target: UpstreamTarget,
    request: http.IncomingMessage,
    response: http.ServerResponse,
    path: string,
  ): void {
    const method = request.method ?? 'GET';
    const pathname = path.split('?')[0];
    const github = isGithubHost(agent, target.host, target.port);
    const bindings = [...(agent.policy.secrets ?? [])];
    const facts: Record<string, unknown> = {
      host: target.host,
      port: target.port,
      method,
      path: pathname,
      tls: target.tls,
    };

    if (github && agent.policy.github) {
      const grant = agent.policy.github;
      const verdict = decideGithubCall(grant, method, path);
      if (!verdict.allowed) {
        this.audit(agent, 'github.call', 'deny', { ...facts, reason: verdict.reason });
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
    this.audit(agent, github ? 'github.call' : 'egress.request', 'allow', {
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
        agentId: agent.id,
        host: target.host,
        port: target.port,
        error: error.message,
      }),
    );
  }
}
