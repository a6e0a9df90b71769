import net from 'node:net';
import { LineReader } from '../../../protocol/LineReader';
import { connectOnce } from '../connectOnce';

/** An asynchronous QMP event, e.g. `STOP`, `RESUME`, `SHUTDOWN`, `MIGRATION`. */
export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp?: { seconds: number; microseconds: number };
}

/** A command QEMU refused (`{"error": {"class", "desc"}}`). */
export class QmpError extends Error {
  constructor(
    readonly command: string,
    readonly errorClass: string,
    description: string,
  ) {
    super(`QMP ${command} failed: ${errorClass}: ${description}`);
    this.name = 'QmpError';
  }
}

interface PendingCommand {
  command: string;
  resolve(value: unknown): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

// QEMU creates its sockets within tens of milliseconds; a short retry keeps that off the start time.
const CONNECT_RETRY_MS = 5;

/**
 * A QMP client over QEMU's unix monitor socket: negotiates capabilities, then runs commands one
 * request/response at a time (correlated by `id`) and reports events.
 */
export class QmpClient {
  private readonly lines = new LineReader((line) => this.handle(line));
  private nextId = 1;
  private readonly pending = new Map<string, PendingCommand>();
  private readonly eventListeners = new Set<(event: QmpEvent) => void>();
  private greeted: ((error?: Error) => void) | undefined;
  private isClosed = false;
  private resolveClosed!: () => void;
  /** Resolves once when the monitor socket closes (QEMU ended, or {@link close}). */
  readonly closed = new Promise<void>((resolve) => (this.resolveClosed = resolve));

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => this.lines.push(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => this.markClosed());
  }

  /**
   * Connect to `socketPath` (retrying while QEMU has not created it, up to `timeoutMs`), wait for
   * the greeting and leave negotiation mode. `shouldStop` aborts the retries early (QEMU exited).
   */
  static async connect(
    socketPath: string,
    timeoutMs: number,
    shouldStop: () => boolean = () => false,
  ): Promise<QmpClient> {
    const deadline = Date.now() + timeoutMs;
    let socket: net.Socket;
    for (;;) {
      try {
        socket = await connectOnce(socketPath);
        break;
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        const retryable = code === 'ENOENT' || code === 'ECONNREFUSED';
        if (!retryable || shouldStop() || Date.now() + CONNECT_RETRY_MS > deadline) throw error;

        await new Promise((resolve) => setTimeout(resolve, CONNECT_RETRY_MS));
      }
    }

    const client = new QmpClient(socket);
    try {
      await client.waitForGreeting(Math.max(deadline - Date.now(), 1_000));
      await client.execute('qmp_capabilities');
    } catch (error) {
      client.close();
      throw error;
    }
    return client;
  }

  get isOpen(): boolean {
    return !this.isClosed;
  }

  /** Run one command; rejects with {@link QmpError} when QEMU refuses it. */
  execute<T = unknown>(
    command: string,
    args?: Record<string, unknown>,
    timeoutMs = 30_000,
  ): Promise<T> {
    if (this.isClosed)
      return Promise.reject(new Error(`QMP ${command}: monitor connection is closed`));

    const id = String(this.nextId++);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`QMP ${command}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        command,
        resolve: resolve as (value: unknown) => void,
        reject,
        timer,
      });
      this.socket.write(
        JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}), id }) + '\n',
      );
    });
  }

  onEvent(listener: (event: QmpEvent) => void): { dispose(): void } {
    this.eventListeners.add(listener);
    return { dispose: () => this.eventListeners.delete(listener) };
  }

  /** Close the connection; QEMU keeps running and accepts the next client. Safe to call twice. */
  close(): void {
    this.socket.destroy();
    this.markClosed();
  }

  private waitForGreeting(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.greeted = undefined;
        reject(new Error(`QMP: no greeting within ${timeoutMs} ms`));
      }, timeoutMs);
      this.greeted = (error) => {
        clearTimeout(timer);
        this.greeted = undefined;
        if (error) reject(error);
        else resolve();
      };
    });
  }

  private handle(line: string): void {
    let message: Record<string, unknown>;
    try {
      message = JSON.parse(line);
    } catch {
      return;
    }

    if ('QMP' in message) {
      this.greeted?.();
      return;
    }

    if (typeof message.event === 'string') {
      for (const listener of [...this.eventListeners]) listener(message as unknown as QmpEvent);
      return;
    }

    const pending = this.pending.get(String(message.id));
    if (!pending) return;

    clearTimeout(pending.timer);
    this.pending.delete(String(message.id));
    const error = message.error as { class?: string; desc?: string } | undefined;
    if (error)
      pending.reject(new QmpError(pending.command, error.class ?? 'Error', error.desc ?? ''));
    else pending.resolve(message.return);
  }

  private markClosed(): void {
    if (this.isClosed) return;

    this.isClosed = true;
    this.greeted?.(new Error('QMP: connection closed before the greeting'));
    for (const [id, pending] of this.pending) {
      clearTimeout(pending.timer);
      pending.reject(new Error(`QMP ${pending.command}: monitor connection closed`));
      this.pending.delete(id);
    }
    this.eventListeners.clear();
    this.resolveClosed();
  }
}
