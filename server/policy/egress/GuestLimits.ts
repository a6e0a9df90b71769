import type http from 'node:http';
import type { Duplex } from 'node:stream';
import type tls from 'node:tls';
import { answerInTurn, MAX_PIPELINED_REQUESTS } from './answerInTurn';
import { auditRefusalFromHandler, type EgressAgent, type EgressAuditor } from './EgressAgent';
import type { EgressProxyOptions } from './EgressProxy';
import { enforceHeaderDeadline } from './enforceHeaderDeadline';
import type { TlsOrigin } from './HttpForwarder';
import { refuseSocket } from './refuse';

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

/**
 * How long a guest request's headers may take to arrive, in milliseconds (Node's own default for
 * its `headersTimeout`). Unlike the idle timeout it is not restarted by each byte, so a guest
 * trickling its headers cannot hold a connection, and its relay process, for longer.
 */
export const GUEST_HEADERS_TIMEOUT_MS = 60_000;

/** Connections refused for the limit are audited at most once in this many milliseconds. */
const LIMIT_AUDIT_INTERVAL_MS = 60_000;

/**
 * What bounds one agent's hold on the broker, whatever its policy allows: how many connections it
 * may hold open, how many requests may wait on one connection, how long a connection may stay
 * silent, and how long a request's headers may take. A guest is untrusted: each of these was, or
 * would be, a way to make the broker hold descriptors, relay processes or memory without end.
 * Refusals are audited, in rows bounded like the refusals by policy.
 */
export class GuestLimits {
  private readonly headersTimeoutMs: number;

  constructor(
    private readonly options: EgressProxyOptions,
    private readonly audit: EgressAuditor,
  ) {
    this.headersTimeoutMs = options.guestHeadersTimeoutMs ?? GUEST_HEADERS_TIMEOUT_MS;
  }

  /** Options for an agent's listener. */
  listenerOptions(): http.ServerOptions {
    // The header deadline is this class's (see enforceHeaderDeadline for why not Node's); Node's
    // request timeout (300 s from a request's first byte to its body's end) still applies.
    return { headersTimeout: 0 };
  }

  /**
   * Sets every limit on an agent's two servers. `originOf` names where an inspected tunnel leads,
   * for the audit row of a request that took too long in it.
   */
  apply(agent: EgressAgent, originOf: (socket: object) => TlsOrigin | undefined): void {
    for (const server of [agent.listener, agent.inner]) {
      // Node arms this on each connection (a TLS one too, emitted into `inner`) and, when it fires
      // with no 'timeout' listener, destroys the socket. A spliced tunnel has left the server: its
      // timer fires to no listener, so a quiet tunnel stays open.
      server.timeout = this.options.guestIdleTimeoutMs ?? GUEST_IDLE_TIMEOUT_MS;
    }
    this.limitConnections(agent);
    this.limitHeaderTime(agent, originOf);
  }

  /** Handles a request after those before it on its connection (see {@link answerInTurn}). */
  inTurn(
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
    auditRefusalFromHandler(this.audit, this.options.log, agent, 'egress.pipeline_limit', details);
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
        this.audit,
        this.options.log,
        agent,
        'egress.connection_limit',
        details,
      );
    });
  }

  /**
   * Answers `408` with the reason to a request whose headers take longer than the deadline, on
   * both servers, audited as a refused `egress.request` (to the tunnel's host inside an inspected
   * tunnel). A tunnel whose TLS handshake has not finished by then cannot be answered; it is closed.
   */
  private limitHeaderTime(
    agent: EgressAgent,
    originOf: (socket: object) => TlsOrigin | undefined,
  ): void {
    const timeoutMs = this.headersTimeoutMs;
    const audit = (reason: string, origin?: TlsOrigin) =>
      auditRefusalFromHandler(this.audit, this.options.log, agent, 'egress.request', {
        ...(origin ? { host: origin.host, port: origin.port } : {}),
        reason,
      });
    const late = `the request's headers did not all arrive within ${timeoutMs} ms`;

    const release = enforceHeaderDeadline(agent.listener, timeoutMs, (socket) => {
      refuseSocket(socket, 408, late);
      audit(late);
    });
    // A CONNECT takes its connection out of HTTP, into a tunnel: no deadline there.
    agent.listener.prependListener('connect', (_request, socket: Duplex) => release(socket));

    enforceHeaderDeadline(agent.inner, timeoutMs, (socket) => {
      // The client's Finished message is the last of a handshake, full or resumed.
      const handshaken = (socket as tls.TLSSocket).getPeerFinished() !== undefined;
      if (handshaken) refuseSocket(socket, 408, late);
      else socket.destroy();
      audit(
        handshaken ? late : `the TLS handshake did not finish within ${timeoutMs} ms`,
        originOf(socket),
      );
    });
  }
}
