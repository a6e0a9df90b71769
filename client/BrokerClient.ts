import WebSocket from 'ws';
import { z } from 'zod';
import {
  agentEventSchema,
  agentResultSchema,
  agentSchema,
  healthSchema,
  profileProblemSchema,
  profileSchema,
  serverStreamMessageSchema,
  whoamiSchema,
  type Agent,
  type AgentEvent,
  type AgentResult,
  type CreateAgentRequest,
  type Profile,
  type ProfileProblem,
  type ServerStreamMessage,
} from '../protocol/api';
import type { GuestRequestInput } from '../protocol/control';
import { AgentvmError, errorBodySchema } from '../protocol/errors';
import {
  auditEntrySchema,
  auditVerifyResultSchema,
  egressPolicySchema,
  type AuditEntry,
  type AuditVerifyResult,
  type EgressPolicy,
} from '../protocol/policy';

export interface BrokerClientOptions {
  /** Base URL of the broker, e.g. http://127.0.0.1:7878 */
  url: string;
  token: string;
  /** Per-request timeout in milliseconds (uploads and restores can take a while). */
  requestTimeoutMs?: number;
  /**
   * The hint of a BROKER_UNREACHABLE error, for a caller that knows where the URL came from and how
   * to start a broker there (the CLI); the error catalog's general hint otherwise.
   */
  unreachableHint?: string;
  /**
   * The hint of an UNAUTHORIZED answer, for a caller that knows where the token came from (the
   * CLI); the broker's own hint otherwise.
   */
  unauthorizedHint?: string;
  /**
   * The hint of a BROKER_CONNECTION_LOST error, for a caller that knows how to check what became
   * of the request (the CLI); the error catalog's general hint otherwise.
   */
  connectionLostHint?: string;
}

/**
 * Socket errors that mean the broker accepted the connection and then closed or reset it:
 * undici's "other side closed", and the kernel's reset and broken pipe.
 */
const CONNECTION_LOST_CODES = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE', 'ECONNABORTED']);

/**
 * How long a stream waits for the broker to acknowledge its subscription before it counts it as in
 * effect anyway: brokers older than the acknowledgement never send one.
 */
export const SUBSCRIBE_ACK_TIMEOUT_MS = 1500;

/** How a stream learnt that its subscription is in effect (see {@link StreamHandlers}). */
export type SubscribedBy = 'acknowledgement' | 'first message' | 'timeout';

export interface StreamHandlers {
  onMessage(message: ServerStreamMessage): void;
  onOpen?(): void;
  /**
   * Called once, when the subscription is in effect: on the broker's `subscribed` answer; on the
   * first message of a broker too old to answer (it sends one only once subscribed), just before
   * that message's `onMessage`; or `subscribeAckTimeoutMs` after the stream opened, when nothing
   * came. A state read over HTTP after it misses no change the stream does not bring.
   */
  onSubscribed?(by: SubscribedBy): void;
  /** Called once when the stream ends; `error` is set when it ended abnormally. */
  onClose?(error?: Error): void;
}

export interface EventStream {
  close(): void;
}

/**
 * Typed client of the broker's HTTP + WebSocket API (protocol/api.ts), used by the CLI and the
 * VS Code extension. Every failure is an {@link AgentvmError}: the broker's own code and hint;
 * BROKER_UNREACHABLE when nothing answers; BROKER_CONNECTION_LOST when the broker closed the
 * connection before its whole answer came (the request may have taken effect).
 */
export class BrokerClient {
  private readonly baseUrl: string;
  private readonly token: string;
  private readonly requestTimeoutMs: number;
  private readonly unreachableHint?: string;
  private readonly unauthorizedHint?: string;
  private readonly connectionLostHint?: string;

  constructor(options: BrokerClientOptions) {
    this.baseUrl = options.url.replace(/\/+$/, '');
    this.token = options.token;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 120_000;
    this.unreachableHint = options.unreachableHint;
    this.unauthorizedHint = options.unauthorizedHint;
    this.connectionLostHint = options.connectionLostHint;
  }

  get url(): string {
    return this.baseUrl;
  }

  health() {
    return this.json('GET', '/v1/health', undefined, healthSchema);
  }

  whoami() {
    return this.json('GET', '/v1/whoami', undefined, whoamiSchema);
  }

  profiles(): Promise<Profile[]> {
    return this.json('GET', '/v1/profiles', undefined, z.array(profileSchema));
  }

  /** The profile files the broker cannot use, and why (empty from a broker older than this call). */
  async profileProblems(): Promise<ProfileProblem[]> {
    try {
      return await this.json(
        'GET',
        '/v1/profile-problems',
        undefined,
        z.array(profileProblemSchema),
      );
    } catch (error) {
      if (error instanceof AgentvmError && error.code === 'NOT_FOUND') return [];

      throw error;
    }
  }

  createAgent(request: CreateAgentRequest): Promise<Agent> {
    return this.json('POST', '/v1/agents', request, agentSchema);
  }

  listAgents(): Promise<Agent[]> {
    return this.json('GET', '/v1/agents', undefined, z.array(agentSchema));
  }

  getAgent(id: string): Promise<Agent> {
    return this.json('GET', `/v1/agents/${enc(id)}`, undefined, agentSchema);
  }

  /** The agent's timeline, optionally only the events after `afterId`. */
  events(id: string, afterId = 0): Promise<AgentEvent[]> {
    const path = `/v1/agents/${enc(id)}/events?after=${afterId}`;
    return this.json('GET', path, undefined, z.array(agentEventSchema));
  }

  async consoleLog(id: string): Promise<string> {
    const path = `/v1/agents/${enc(id)}/console`;
    const response = await this.raw('GET', path);
    return this.readBody('GET', path, () => response.text());
  }

  /** Restore the paused agent's snapshot so its workspace can be reviewed. */
  review(id: string): Promise<Agent> {
    return this.json('POST', `/v1/agents/${enc(id)}/review`, {}, agentSchema);
  }

  /** Send the reviewer's answer; the agent continues. */
  resume(id: string, message = ''): Promise<Agent> {
    return this.json('POST', `/v1/agents/${enc(id)}/resume`, { message }, agentSchema);
  }

  /** Stop an agent that has not ended; one that has is refused with INVALID_STATE. */
  cancel(id: string): Promise<Agent> {
    return this.json('POST', `/v1/agents/${enc(id)}/cancel`, {}, agentSchema);
  }

  /**
   * Remove an agent, its VM and its files. One that has not ended is refused with INVALID_STATE
   * unless `force`, which stops its VM and loses its work.
   */
  async remove(id: string, options: { force?: boolean } = {}): Promise<void> {
    const query = options.force ? '?force=true' : '';
    await this.raw('DELETE', `/v1/agents/${enc(id)}${query}`);
  }

  result(id: string): Promise<AgentResult> {
    return this.json('GET', `/v1/agents/${enc(id)}/result`, undefined, agentResultSchema);
  }

  async resultBundle(id: string): Promise<Buffer> {
    const path = `/v1/agents/${enc(id)}/result/bundle`;
    const response = await this.raw('GET', path);
    return Buffer.from(await this.readBody('GET', path, () => response.arrayBuffer()));
  }

  /** One file-API or exec call into the agent's live VM (state reviewing). */
  async guest(id: string, request: GuestRequestInput): Promise<unknown> {
    const body = await this.json(
      'POST',
      `/v1/agents/${enc(id)}/guest`,
      { request },
      z.object({ result: z.unknown() }),
    );
    return body.result;
  }

  /** The agent's egress policy in force: allowlist, bound secret names, proxy port. */
  egress(id: string): Promise<EgressPolicy> {
    return this.json('GET', `/v1/agents/${enc(id)}/egress`, undefined, egressPolicySchema);
  }

  /** Replace a running agent's egress allowlist (the complete list); returns the policy in force. */
  setAllowedHosts(id: string, allowedHosts: string[]): Promise<EgressPolicy> {
    return this.json('POST', `/v1/agents/${enc(id)}/egress`, { allowedHosts }, egressPolicySchema);
  }

  /**
   * Audit rows, oldest first: an admin gets every row, a user only the rows of their own agents.
   * `afterId` pages on from a row id; `limit` caps the count (newest rows kept).
   */
  audit(
    options: { agentId?: string; afterId?: number; limit?: number } = {},
  ): Promise<AuditEntry[]> {
    const query = new URLSearchParams();
    if (options.agentId) query.set('agent', options.agentId);
    if (options.afterId !== undefined) query.set('after', String(options.afterId));
    if (options.limit !== undefined) query.set('limit', String(options.limit));
    return this.json('GET', `/v1/audit?${query}`, undefined, z.array(auditEntrySchema));
  }

  /** Recompute the audit log's hash chain (admin only). */
  verifyAudit(): Promise<AuditVerifyResult> {
    return this.json('GET', '/v1/audit/verify', undefined, auditVerifyResultSchema);
  }

  /** Subscribe to live events of one agent (or all of the user's agents). */
  stream(
    options: { agentId?: string; afterEventId?: number; subscribeAckTimeoutMs?: number },
    handlers: StreamHandlers,
  ): EventStream {
    const { subscribeAckTimeoutMs = SUBSCRIBE_ACK_TIMEOUT_MS, ...subscription } = options;
    const wsUrl = this.baseUrl.replace(/^http/, 'ws') + '/v1/events';
    const socket = new WebSocket(wsUrl, { headers: { authorization: `Bearer ${this.token}` } });
    let closed = false;
    let failure: Error | undefined;
    let subscribed = false;
    let ackTimer: NodeJS.Timeout | undefined;
    const markSubscribed = (by: SubscribedBy) => {
      if (subscribed) return;

      subscribed = true;
      clearTimeout(ackTimer);
      handlers.onSubscribed?.(by);
    };

    socket.on('open', () => {
      socket.send(JSON.stringify({ type: 'subscribe', ...subscription }));
      ackTimer = setTimeout(() => markSubscribed('timeout'), subscribeAckTimeoutMs);
      handlers.onOpen?.();
    });
    socket.on('message', (data) => {
      const parsed = serverStreamMessageSchema.safeParse(safeJson(data.toString()));
      if (!parsed.success) return;

      markSubscribed(parsed.data.type === 'subscribed' ? 'acknowledgement' : 'first message');
      handlers.onMessage(parsed.data);
    });
    socket.on('unexpected-response', (_request, response) => {
      const refused = response.statusCode === 401;
      failure = new AgentvmError(
        refused ? 'UNAUTHORIZED' : 'BROKER_UNREACHABLE',
        `event stream refused with HTTP ${response.statusCode}`,
        refused ? this.unauthorizedHint : this.unreachableHint,
      );
      socket.terminate();
    });
    socket.on('error', (error) => {
      failure ??= new AgentvmError(
        'BROKER_UNREACHABLE',
        `event stream: ${error.message}`,
        this.unreachableHint,
      );
    });
    socket.on('close', () => {
      clearTimeout(ackTimer);
      if (closed) return;

      closed = true;
      handlers.onClose?.(failure);
    });

    return {
      close: () => {
        clearTimeout(ackTimer);
        if (closed) return;

        closed = true;
        socket.close();
      },
    };
  }

  private async json<T>(
    method: string,
    path: string,
    body: unknown,
    schema: z.ZodType<T>,
  ): Promise<T> {
    const response = await this.raw(method, path, body);
    const text = await this.readBody(method, path, () => response.text());
    const parsed = schema.safeParse(safeJson(text));
    if (!parsed.success) {
      throw new AgentvmError(
        'INTERNAL',
        `unexpected response from ${method} ${path}: ${parsed.error.message}`,
      );
    }

    return parsed.data;
  }

  private async raw(method: string, path: string, body?: unknown): Promise<Response> {
    let response: Response;
    try {
      response = await fetch(this.baseUrl + path, {
        method,
        headers: {
          authorization: `Bearer ${this.token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.requestTimeoutMs),
      });
    } catch (error) {
      throw this.requestFailure(method, path, error, 'before answering');
    }

    if (response.ok) return response;

    const text = await this.readBody(method, path, () => response.text());
    const parsed = errorBodySchema.safeParse(safeJson(text));
    if (parsed.success) {
      const { error } = parsed.data;
      if (error.code === 'UNAUTHORIZED' && this.unauthorizedHint)
        throw new AgentvmError(error.code, error.message, this.unauthorizedHint);

      throw AgentvmError.fromBody(parsed.data);
    }

    throw new AgentvmError(
      'INTERNAL',
      `${method} ${path}: HTTP ${response.status} ${text.slice(0, 200)}`,
    );
  }

  /** Reads the body of an answer whose head has come; the rest may still fail to. */
  private async readBody<T>(method: string, path: string, read: () => Promise<T>): Promise<T> {
    try {
      return await read();
    } catch (error) {
      throw this.requestFailure(method, path, error, 'before it finished answering');
    }
  }

  /**
   * Why a request got no whole answer. A connection the broker accepted and then closed is
   * BROKER_CONNECTION_LOST, not "nothing answered": the broker may have acted on the request (it
   * may have died doing so), so the caller must check before repeating it. The body of an answer
   * can only break off that way. No answer in time is BROKER_TIMEOUT, which says the same; nothing
   * listening is BROKER_UNREACHABLE.
   */
  private requestFailure(
    method: string,
    path: string,
    error: unknown,
    when: 'before answering' | 'before it finished answering',
  ): AgentvmError {
    if ((error as Error).name === 'TimeoutError') {
      // It took the request (a closed port refuses at once): "nothing answered" would be false.
      const effect = method === 'GET' ? '' : '; it may or may not have acted on it';
      return new AgentvmError(
        'BROKER_TIMEOUT',
        `the broker at ${this.baseUrl} did not answer ${method} ${path} within ${this.requestTimeoutMs / 1000} s${effect}`,
      );
    }

    const code = (error as { cause?: { code?: string } }).cause?.code;
    const answerBrokeOff = when === 'before it finished answering';
    if (answerBrokeOff || (code !== undefined && CONNECTION_LOST_CODES.has(code))) {
      // A kernel's code (ECONNRESET) says how; undici's own (UND_ERR_SOCKET) says nothing more.
      const how = code?.startsWith('E') ? ` (${code})` : '';
      const effect = method === 'GET' ? '' : ', so it may or may not have acted on it';
      return new AgentvmError(
        'BROKER_CONNECTION_LOST',
        `the broker at ${this.baseUrl} closed the connection ${when} ${method} ${path}${how}${effect}`,
        this.connectionLostHint,
      );
    }

    return new AgentvmError(
      'BROKER_UNREACHABLE',
      `broker at ${this.baseUrl} ${describeFetchError(error)}`,
      this.unreachableHint,
    );
  }
}

function enc(id: string): string {
  return encodeURIComponent(id);
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function describeFetchError(error: unknown): string {
  const cause = (error as { cause?: { code?: string } }).cause;
  if (cause?.code === 'ECONNREFUSED') return 'refused the connection (is `agentvm serve` running?)';

  return `is not reachable (${cause?.code ?? (error as Error).message})`;
}
