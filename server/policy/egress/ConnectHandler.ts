import type dns from 'node:dns';
import type http from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import {
  decideHost,
  mustInspect,
  trackSocket,
  trackTarget,
  type EgressAgent,
  type EgressAuditor,
} from './EgressAgent';
import type { EgressProxyOptions } from './EgressProxy';
import { DEFAULT_UPSTREAM_TIMEOUT_MS } from './forwardRequest';
import { guardedLookup } from './guardedLookup';
import { normalizeHost } from './HostAllowlist';
import type { TlsOrigin } from './HttpForwarder';
import { localAddressRefusal } from './localAddressRefusal';
import { refuseSocket } from './refuse';

/**
 * The CONNECT half of the egress proxy. An allowed tunnel is spliced to the upstream untouched,
 * unless the proxy must read it (a host with a bound secret, or the GitHub API host): then it
 * terminates TLS with a certificate forged by the broker's CA and hands the decrypted connection
 * to the agent's inner HTTP server, remembering where the tunnel was headed.
 */
export class ConnectHandler {
  private readonly origins = new WeakMap<object, TlsOrigin>();

  constructor(
    private readonly options: EgressProxyOptions,
    private readonly audit: EgressAuditor,
  ) {}

  /** The CONNECT target of a TLS connection this handler terminated (keyed by its socket). */
  originOf(socket: object): TlsOrigin | undefined {
    return this.origins.get(socket);
  }

  async onConnect(
    agent: EgressAgent,
    request: http.IncomingMessage,
    socket: Duplex,
    head: Buffer,
  ): Promise<void> {
    trackSocket(agent.sockets, socket);
    socket.on('error', () => socket.destroy());

    const match = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(request.url ?? '');
    if (!match) return refuseSocket(socket, 400, 'CONNECT needs host:port');

    const host = normalizeHost(match[1]);
    const port = Number(match[2]);
    if (port < 1 || port > 65535)
      return refuseSocket(socket, 400, `CONNECT needs a port from 1 to 65535, not ${port}`);

    const decision = decideHost(agent, host, port);
    if (!decision.allowed) {
      this.audit(agent, 'egress.connect', 'deny', { host, port, reason: decision.reason });
      return refuseSocket(socket, 403, decision.reason);
    }

    trackTarget(agent, socket, { host, port, kind: 'tunnel' });
    // Resolved before the audit row, so a name leading to the host itself is denied, not allowed.
    const resolved = await resolveGuarded(host, decision.allowLocal);
    if (socket.destroyed) return;

    const local = 'error' in resolved ? localAddressRefusal(resolved.error, host) : null;
    if (local) {
      this.audit(agent, 'egress.connect', 'deny', {
        host,
        port,
        reason: local.reason,
        addressClass: local.addressClass,
      });
      return refuseSocket(socket, 502, local.reason);
    }

    const inspected = mustInspect(agent, host, port);
    if ('error' in resolved) {
      // Refused before a certificate is forged too: a name that does not resolve costs no openssl.
      this.audit(agent, 'egress.connect', 'allow', { host, port, inspected });
      this.warnUnreachable(agent, host, port, resolved.error);
      return refuseSocket(socket, 502, `cannot reach ${host}:${port}: ${resolved.error.message}`);
    }

    if (inspected) return this.terminateTls(agent, socket, head, host, port);

    this.audit(agent, 'egress.connect', 'allow', { host, port, inspected: false });
    // The addresses just checked are the ones connected to: no second lookup can differ.
    const upstream = net.connect({ host, port, lookup: replayLookup(resolved.addresses) as never });
    trackSocket(agent.sockets, upstream);
    // Only the connecting is timed: an open tunnel may stay quiet as long as its two ends like.
    const connectTimeoutMs = this.options.upstreamTimeoutMs ?? DEFAULT_UPSTREAM_TIMEOUT_MS;
    upstream.setTimeout(connectTimeoutMs, () =>
      upstream.destroy(new Error(`no connection within ${connectTimeoutMs} ms`)),
    );
    let connected = false;
    upstream.once('connect', () => {
      connected = true;
      upstream.setTimeout(0);
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
    upstream.on('error', (error) => {
      if (connected) return socket.destroy();

      this.warnUnreachable(agent, host, port, error);
      refuseSocket(socket, 502, `cannot reach ${host}:${port}: ${error.message}`);
    });
    socket.on('close', () => upstream.destroy());
  }

  private warnUnreachable(agent: EgressAgent, host: string, port: number, error: Error): void {
    this.options.log?.warn('egress.upstream_failed', {
      agentId: agent.id,
      host,
      port,
      error: error.message,
    });
  }

  private async terminateTls(
    agent: EgressAgent,
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

    this.audit(agent, 'egress.connect', 'allow', { host, port, inspected: true });
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length > 0) socket.unshift(head);

    const secure = new tls.TLSSocket(socket, {
      isServer: true,
      secureContext,
      ALPNProtocols: ['http/1.1'],
    });
    secure.on('error', () => secure.destroy());
    this.origins.set(secure, { host, port });
    agent.inner.emit('connection', secure);
  }
}

type LookupCallback = (
  error: NodeJS.ErrnoException | null,
  address: string | dns.LookupAddress[],
  family?: number,
) => void;

/** Every address `host` resolves to that {@link guardedLookup} lets through, or its refusal. */
function resolveGuarded(
  host: string,
  allowLocal: boolean,
): Promise<{ addresses: dns.LookupAddress[] } | { error: Error }> {
  return new Promise((resolve) =>
    guardedLookup(allowLocal)(host, { all: true }, (error, addresses) =>
      resolve(error ? { error } : { addresses: addresses as dns.LookupAddress[] }),
    ),
  );
}

/** A `lookup` for net.connect that answers with addresses resolved (and checked) beforehand. */
function replayLookup(addresses: readonly dns.LookupAddress[]) {
  return (hostname: string, options: dns.LookupOptions, callback: LookupCallback): void => {
    const family = options.family === 'IPv4' ? 4 : options.family === 'IPv6' ? 6 : options.family;
    const usable = family ? addresses.filter((entry) => entry.family === family) : [...addresses];
    if (usable.length === 0) {
      const none = Object.assign(new Error(`${hostname} has no IPv${family} address`), {
        code: 'ENOTFOUND',
      });
      return callback(none, options.all ? [] : '', undefined);
    }

    if (options.all) return callback(null, usable);
    callback(null, usable[0].address, usable[0].family);
  };
}
