import net from 'node:net';
import {
  MAX_GUEST_LINE_CHARS,
  guestMessageSchema,
  hostMessageSchema,
  type GuestMessage,
  type GuestRequest,
  type HostMessage,
} from '../../protocol/control';
import { AgentvmError } from '../../protocol/errors';
import { silentLogger, type Logger } from '../log';
import { LineReader } from '../../protocol/LineReader';
import { connectOnce } from './connectOnce';

/** The `ready` message the guest agent answers `hello` with. */
export type ReadyMessage = Extract<GuestMessage, { type: 'ready' }>;

export interface ControlChannelOptions {
  /** How long to keep retrying while the socket does not exist or refuses, in milliseconds. */
  connectTimeoutMs?: number;
  /** How often `handshake` repeats `hello` until the guest answers, in milliseconds. */
  helloIntervalMs?: number;
  /** Default deadline of {@link ControlChannel.request}, in milliseconds. */
  requestTimeoutMs?: number;
  /** Most messages kept for a listener that has not subscribed yet; the oldest are dropped. */
  maxQueuedMessages?: number;
  /** Longest line read from the guest, in characters; {@link MAX_GUEST_LINE_CHARS} by default. */
  maxLineChars?: number;
  /** Stops the connect retries early (the VM process ended). */
  signal?: AbortSignal;
  logger?: Logger;
}

export interface Disposable {
  dispose(): void;
}

type MessageListener = (message: GuestMessage) => void;

interface PendingRequest {
  resolve(result: unknown): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

const CONNECT_RETRY_MS = 10;

/**
 * The host end of the control channel (see protocol/control.ts): newline-delimited JSON over the
 * unix socket QEMU serves for the control virtserialport. Lines that do not parse or do not match
 * {@link guestMessageSchema} are logged and skipped.
 */
export class ControlChannel {
  private readonly lines: LineReader;
  private readonly listeners = new Set<MessageListener>();
  private readonly queue: GuestMessage[] = [];
  private draining = false;
  private readonly readyWaiters = new Set<(ready: ReadyMessage) => void>();
  private readonly pending = new Map<number, PendingRequest>();
  private readonly closeListeners = new Set<() => void>();
  private nextRequestId = 1;
  private closed = false;
  private readonly logger: Logger;

  private constructor(
    private readonly socket: net.Socket,
    private readonly options: ControlChannelOptions,
  ) {
    this.logger = options.logger ?? silentLogger;
    const maxLineChars = options.maxLineChars ?? MAX_GUEST_LINE_CHARS;
    // A guest that sends more than any real message is misbehaving: its line is dropped, not kept.
    this.lines = new LineReader((line) => this.handleLine(line), {
      maxLineChars,
      onOverflow: (chars) =>
        this.logger.warn('control.line_too_long', { chars, limit: maxLineChars }),
    });
    socket.on('data', (chunk: Buffer) => this.lines.push(chunk));
    socket.on('error', (error) => this.logger.debug('control.socket_error', { error }));
    socket.on('close', () => this.close());
  }

  /** Connect to the control socket, retrying while QEMU has not created it yet. */
  static async connect(
    socketPath: string,
    options: ControlChannelOptions = {},
  ): Promise<ControlChannel> {
    const deadline = Date.now() + (options.connectTimeoutMs ?? 5_000);
    for (;;) {
      try {
        const socket = await connectOnce(socketPath);
        return new ControlChannel(socket, options);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        const retryable = code === 'ENOENT' || code === 'ECONNREFUSED';
        const stopped = options.signal?.aborted === true;
        if (!retryable || stopped || Date.now() + CONNECT_RETRY_MS > deadline) {
          throw new AgentvmError(
            'GUEST_UNREACHABLE',
            `cannot connect to the control socket ${socketPath}: ${(error as Error).message}`,
          );
        }

        await delay(CONNECT_RETRY_MS);
      }
    }
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Say `hello` until the guest answers `ready`. The guest opens its port only once its agent runs,
   * and bytes written before that may be lost, so `hello` is repeated rather than sent once.
   * Rejects with VM_BOOT_TIMEOUT after `timeoutMs`, or GUEST_UNREACHABLE if the channel closes.
   */
  handshake(lastSeq: number, timeoutMs: number): Promise<ReadyMessage> {
    if (this.closed) return Promise.reject(closedError());

    return new Promise<ReadyMessage>((resolve, reject) => {
      const sayHello = () => {
        if (!this.closed) this.send({ type: 'hello', lastSeq });
      };
      const finish = () => {
        clearInterval(helloTimer);
        clearTimeout(deadlineTimer);
        this.readyWaiters.delete(onReady);
        this.closeListeners.delete(onClose);
      };
      const onReady = (ready: ReadyMessage) => {
        finish();
        resolve(ready);
      };
      const onClose = () => {
        finish();
        reject(closedError());
      };
      const helloTimer = setInterval(sayHello, this.options.helloIntervalMs ?? 300);
      const deadlineTimer = setTimeout(() => {
        finish();
        reject(
          new AgentvmError(
            'VM_BOOT_TIMEOUT',
            `the guest agent did not answer hello within ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);

      this.readyWaiters.add(onReady);
      this.closeListeners.add(onClose);
      sayHello();
    });
  }

  /** Validate and write one message. Throws GUEST_UNREACHABLE once the channel is closed. */
  send(message: HostMessage): void {
    if (this.closed) throw closedError();

    const parsed = hostMessageSchema.safeParse(message);
    if (!parsed.success) {
      throw new AgentvmError('INTERNAL', `invalid control message: ${parsed.error.message}`);
    }

    this.socket.write(JSON.stringify(parsed.data) + '\n');
  }

  /**
   * Send a `request` and wait for the `response` with the same id. Rejects with GUEST_ERROR when
   * the guest answers ok:false, GUEST_TIMEOUT when it does not answer within `timeoutMs`, and
   * GUEST_UNREACHABLE when the channel closes first.
   */
  request(request: GuestRequest, timeoutMs?: number): Promise<unknown> {
    if (this.closed) return Promise.reject(closedError());

    const id = this.nextRequestId++;
    const limitMs = timeoutMs ?? this.options.requestTimeoutMs ?? 60_000;
    return new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(
          new AgentvmError(
            'GUEST_TIMEOUT',
            `guest did not answer ${request.op} within ${limitMs} ms`,
          ),
        );
      }, limitMs);
      this.pending.set(id, { resolve, reject, timer });

      try {
        this.send({ type: 'request', id, request });
      } catch (error) {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(error);
      }
    });
  }

  /**
   * Receive every message not consumed by `handshake` or `request`. Messages that arrived while
   * nobody listened are delivered to the first listener, in order, right after it subscribes.
   */
  onMessage(listener: MessageListener): Disposable {
    this.listeners.add(listener);
    if (this.queue.length > 0) this.scheduleDrain();

    return { dispose: () => this.listeners.delete(listener) };
  }

  /** Called once when the channel closes, whoever closed it. */
  onClose(listener: () => void): Disposable {
    if (this.closed) {
      queueMicrotask(listener);
      return { dispose: () => undefined };
    }

    this.closeListeners.add(listener);
    return { dispose: () => this.closeListeners.delete(listener) };
  }

  /** Close the socket and reject pending requests. Safe to call more than once. */
  close(): void {
    if (this.closed) return;

    this.closed = true;
    this.socket.destroy();
    for (const [id, pending] of this.pending) {
      clearTimeout(pending.timer);
      pending.reject(closedError());
      this.pending.delete(id);
    }

    for (const listener of [...this.closeListeners]) listener();
    this.closeListeners.clear();
  }

  private handleLine(line: string): void {
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch {
      this.logger.warn('control.invalid_line', { reason: 'not JSON', line: line.slice(0, 200) });
      return;
    }

    const parsed = guestMessageSchema.safeParse(json);
    if (!parsed.success) {
      this.logger.warn('control.invalid_line', {
        reason: parsed.error.message,
        line: line.slice(0, 200),
      });
      return;
    }

    this.dispatch(parsed.data);
  }

  private dispatch(message: GuestMessage): void {
    if (message.type === 'ready' && this.readyWaiters.size > 0) {
      for (const waiter of [...this.readyWaiters]) waiter(message);
      return;
    }

    if (message.type === 'response') {
      const pending = this.pending.get(message.id);
      if (!pending) {
        this.logger.warn('control.unexpected_response', { id: message.id });
        return;
      }

      clearTimeout(pending.timer);
      this.pending.delete(message.id);
      if (message.ok) pending.resolve(message.result);
      else {
        const detail = message.error
          ? `${message.error.code}: ${message.error.message}`
          : 'no details';
        pending.reject(new AgentvmError('GUEST_ERROR', `guest request failed: ${detail}`));
      }
      return;
    }

    this.queue.push(message);
    const limit = this.options.maxQueuedMessages ?? 10_000;
    if (this.queue.length > limit) {
      this.queue.shift();
      this.logger.warn('control.queue_overflow', { limit });
    }

    if (this.listeners.size > 0) this.scheduleDrain();
  }

  // Delivery is deferred to a microtask so a listener never runs inside onMessage's caller, and
  // every message still goes through the one queue, which keeps replayed and live events in order.
  private scheduleDrain(): void {
    if (this.draining) return;

    this.draining = true;
    queueMicrotask(() => {
      this.draining = false;
      while (this.queue.length > 0 && this.listeners.size > 0) {
        const message = this.queue.shift()!;
        for (const listener of [...this.listeners]) {
          try {
            listener(message);
          } catch (error) {
            this.logger.error('control.listener_failed', { error });
          }
        }
      }
    });
  }
}

function closedError(): AgentvmError {
  return new AgentvmError('GUEST_UNREACHABLE', 'the control channel is closed');
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
