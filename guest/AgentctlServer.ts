import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { GuestEvent } from '../protocol/control';
import { LineReader } from '../protocol/LineReader';
import {
  MAX_AGENTCTL_LINE_CHARS,
  agentctlMessageTooLong,
  agentctlRequestSchema,
  type AgentctlRequest,
  type AgentctlResponse,
} from './agentctlProtocol';
import type { GuestLog } from './guestLog';

/** Turns agentctl calls into guest events, and hands review answers back to waiting agentctls. */
export interface AgentctlHost {
  emit(event: GuestEvent): void;
  /** A review request started waiting (true) or was answered or abandoned (false). */
  onReviewWaiting(waiting: boolean): void;
}

/**
 * Serves agentctl on a unix socket (mode 0666, so user `agent` can use it while the guest agent
 * runs as root).
 */
export class AgentctlServer {
  private server: net.Server | null = null;
  /** Review requests waiting for the broker's answer, by requestId. */
  private readonly waiting = new Map<string, net.Socket>();

  constructor(
    private readonly socketPath: string,
    private readonly host: AgentctlHost,
    private readonly log: GuestLog,
  ) {}

  async listen(): Promise<void> {
    fs.mkdirSync(path.dirname(this.socketPath), { recursive: true });
    fs.rmSync(this.socketPath, { force: true });

    const server = net.createServer((socket) => this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.socketPath, () => resolve());
    });
    fs.chmodSync(this.socketPath, 0o666);
    this.server = server;
  }

  /** Delivers the broker's answer; returns false when no agentctl waits for `requestId`. */
  answerReview(requestId: string, message: string): boolean {
    const socket = this.waiting.get(requestId);
    if (!socket) return false;

    this.waiting.delete(requestId);
    this.reply(socket, { type: 'answer', requestId, message });
    this.host.onReviewWaiting(this.waiting.size > 0);
    return true;
  }

  async close(): Promise<void> {
    for (const socket of this.waiting.values()) socket.destroy();
    this.waiting.clear();
    await new Promise<void>((resolve) =>
      this.server ? this.server.close(() => resolve()) : resolve(),
    );
    this.server = null;
  }

  private accept(socket: net.Socket): void {
    let handled = false;
    const reader = new LineReader(
      (line) => {
        if (handled) return;

        handled = true;
        this.handle(socket, line);
      },
      {
        // Something other than agentctl may write here; it must not fill the guest agent's memory.
        maxLineChars: MAX_AGENTCTL_LINE_CHARS,
        onOverflow: (chars) => {
          if (handled) return;

          handled = true;
          this.log('warn', `agentctl request over ${MAX_AGENTCTL_LINE_CHARS} characters refused`);
          this.reply(socket, {
            type: 'error',
            message: `request is over ${chars} characters; the limit is ${MAX_AGENTCTL_LINE_CHARS}`,
          });
        },
      },
    );

    socket.on('data', (chunk: Buffer) => reader.push(chunk));
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      for (const [requestId, waiting] of this.waiting) {
        if (waiting !== socket) continue;

        // The agent gave up waiting (killed or interrupted); a later answer has nobody to reach.
        this.waiting.delete(requestId);
        this.log('warn', `agentctl review ${requestId} went away before it was answered`);
        this.host.onReviewWaiting(this.waiting.size > 0);
      }
    });
  }

  private handle(socket: net.Socket, line: string): void {
    let request: AgentctlRequest;
    try {
      request = parseRequest(line);
    } catch (error) {
      this.reply(socket, { type: 'error', message: (error as Error).message });
      return;
    }

    switch (request.type) {
      case 'progress':
        this.host.emit({ kind: 'progress', message: request.message });
        this.reply(socket, { type: 'ok' });
        return;
      case 'done':
        this.host.emit({ kind: 'done', message: request.message });
        this.reply(socket, { type: 'ok' });
        return;
      case 'review': {
        const requestId = randomUUID();
        this.waiting.set(requestId, socket);
        this.host.onReviewWaiting(true);
        this.host.emit({ kind: 'review', requestId, message: request.message });
        return;
      }
    }
  }

  private reply(socket: net.Socket, response: AgentctlResponse): void {
    socket.end(JSON.stringify(response) + '\n');
  }
}

/** The request on `line`; throws with a sentence for agentctl when it is malformed or too long. */
function parseRequest(line: string): AgentctlRequest {
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch (error) {
    throw new Error(`bad agentctl request: ${String(error)}`);
  }

  const parsed = agentctlRequestSchema.safeParse(json);
  if (parsed.success) return parsed.data;

  const { type, message } = (json ?? {}) as { type?: unknown; message?: unknown };
  const known = type === 'progress' || type === 'review' || type === 'done';
  const tooLong = known && typeof message === 'string' && agentctlMessageTooLong(type, message);
  throw new Error(tooLong || `bad agentctl request: ${parsed.error.message}`);
}
