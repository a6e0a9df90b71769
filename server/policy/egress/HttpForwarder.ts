import type http from 'node:http';
import { decideGithubCall } from '../github/githubPermission';
import type { SecretBinding } from '../secrets/SecretBindings';
import { substituteSecrets } from '../secrets/substituteSecrets';
import {
  auditRefusalFromHandler,
  decideHost,
  isGithubHost,
  type EgressAgent,
  type EgressAuditor,
} from './EgressAgent';
import type { EgressProxyOptions } from './EgressProxy';
import {
  DEFAULT_UPSTREAM_TIMEOUT_MS,
  endToEndHeaders,
  forwardRequest,
  type UpstreamTarget,
} from './forwardRequest';
import { GUEST_PROXY_ADDRESS, GUEST_PROXY_PORT } from './guestEgress';
import { HostAllowlist, normalizeHost } from './HostAllowlist';
import { localAddressRefusal } from './localAddressRefusal';
import { refuse } from './refuse';
import { hostHeaderMismatch, targetAuthority } from './targetAuthority';

/** Where a request read from a terminated TLS connection was headed (its CONNECT target). */
export interface TlsOrigin {
  host: string;
  port: number;
}

/**
 * The request-level half of the egress proxy: absolute-URL plain-HTTP proxy requests and the
 * requests read off TLS connections the proxy terminated. Each is checked against the agent's
 * allowlist (and GitHub scopes) and its Host header against its target, has secret placeholders
 * swapped where the bindings allow (see {@link substituteSecrets}), is audited and sent upstream;
 * the answer comes back with every real secret value replaced by its placeholder.
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
    let path = request.url ?? '/';
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(path)) {
      // Absolute form inside the tunnel: its authority must be the tunnel's, like a Host header.
      const url = parseUrl(path);
      const mismatch = url
        ? hostHeaderMismatch(url.host, target)
        : 'the request URL does not parse';
      if (mismatch) {
        this.audit(agent, 'egress.request', 'deny', {
          host: origin.host,
          port: origin.port,
          method: request.method,
          reason: mismatch,
        });
        return refuse(response, 400, mismatch);
      }
      path = url!.pathname + url!.search;
    }
    this.forward(agent, target, request, response, path);
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
    const facts: Record<string, unknown> = {
      host: target.host,
      port: target.port,
      method,
      path: pathname,
      tls: target.tls,
    };

    const mismatch = hostHeaderMismatch(guestHostHeader(request, target), target);
    if (mismatch) {
      this.audit(agent, 'egress.request', 'deny', {
        ...facts,
        hostHeader: String(request.headers.host).slice(0, 200),
        reason: mismatch,
      });
      return refuse(response, 400, mismatch);
    }

    const known = knownSecrets(agent);
    const bindings = [...(agent.policy.secrets ?? [])];
    if (github && agent.policy.github) {
      const grant = agent.policy.github;
      const verdict = decideGithubCall(grant, method, path);
      if (!verdict.allowed) {
        this.audit(agent, 'github.call', 'deny', { ...facts, reason: verdict.reason });
        return refuse(response, 403, verdict.reason);
      }
      bindings.push(grant.token);
      facts.reason = verdict.reason;
    } else if (agent.policy.github) {
      // Bound to nothing here, so a stray token placeholder is reported withheld.
      bindings.push({ ...agent.policy.github.token, hosts: new HostAllowlist([]) });
    }

    const outgoing = endToEndHeaders(request.headers);
    delete outgoing.host;
    const { headers, injected, withheld, withheldReasons, encodedForms } = substituteSecrets(
      outgoing,
      target,
      bindings,
      path,
    );
    headers.host = targetAuthority(target);
    // An upstream that may hold a value answers uncompressed, so its answer can be scrubbed.
    const exposed = known.some((binding) => binding.hosts.allows(target.host, target.port));
    if (exposed) headers['accept-encoding'] = 'identity';

    const action = github ? 'github.call' : 'egress.request';
    this.audit(agent, action, 'allow', {
      ...facts,
      injected,
      withheld,
      ...(withheld.length > 0 ? { withheldReasons } : {}),
    });

    const options = {
      upstreamCa: this.options.upstreamCa,
      upstreamTimeoutMs: this.options.upstreamTimeoutMs ?? DEFAULT_UPSTREAM_TIMEOUT_MS,
      scrub:
        known.length > 0
          ? {
              // What this request carried encoded is scrubbed back to what the guest sent.
              secrets: [
                ...known.map(({ value, placeholder }) => ({ value, placeholder })),
                ...encodedForms,
              ],
              decode: exposed,
            }
          : undefined,
    };
    forwardRequest(request, response, target, path, headers, options, (error) => {
      const local = localAddressRefusal(error, target.host);
      if (local) {
        // The allow row is already written: the name is resolved only when connecting.
        return auditRefusalFromHandler(this.audit, this.options.log, agent, action, {
          ...facts,
          reason: local.reason,
          addressClass: local.addressClass,
        });
      }

      this.options.log?.warn('egress.upstream_failed', {
        agentId: agent.id,
        host: target.host,
        port: target.port,
        error: error.message,
      });
    });
  }
}

/**
 * The Host header that must match the target. Clients that send an absolute URL but fill Host in
 * from the address they connected to (Node's http module does) name the proxy itself: that names
 * no other server, so it is replaced like a missing one rather than refused.
 */
function guestHostHeader(
  request: http.IncomingMessage,
  target: UpstreamTarget,
): string | string[] | undefined {
  const header = request.headers.host;
  const proxy = `${GUEST_PROXY_ADDRESS}:${GUEST_PROXY_PORT}`;
  return !target.tls && header?.trim() === proxy ? undefined : header;
}

/** Every secret bound to the agent, its GitHub token included: none may reach the guest. */
function knownSecrets(agent: EgressAgent): SecretBinding[] {
  const github = agent.policy.github ? [agent.policy.github.token] : [];
  return [...(agent.policy.secrets ?? []), ...github];
}

function parseUrl(text: string): URL | null {
  try {
    return new URL(text);
  } catch {
    return null;
  }
}
