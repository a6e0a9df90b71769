import fs from 'node:fs';
import {
  hostMessageSchema,
  type GuestEvent,
  type GuestMessage,
  type HostMessage,
} from '../protocol/control';
import { AgentctlServer } from './AgentctlServer';
import { CommandLauncher } from './CommandLauncher';
import type { ControlTransport } from './ControlTransport';
import type { GuestConfig } from './guestConfig';
import { ensureGuestNetwork } from './guestNetwork';
import type { GuestLog } from './guestLog';
import { GuestRequestError, handleGuestRequest } from './handleGuestRequest';
import { baseEnv } from './runProcess';
import { startClockHelper, syncClock } from './syncClock';
import { TaskRunner } from './TaskRunner';
import { warmUpParsers } from './warmUp';

/**
 * Output characters the guest keeps unacknowledged before it drops more output: a host that is
 * away for a long time costs at most this much guest memory for output.
 */
const MAX_UNACKED_OUTPUT_CHARS = 16 * 1024 * 1024;

/**
 * The VM side of the control channel: numbers and keeps events until the host acknowledges
 * them, answers `hello` with `ready` plus a replay, applies `sync`, runs the task, serves agentctl
 * and the file API.
 */
export class GuestAgent {
  private seq = 0;
  private readonly unacked: { seq: number; line: string; outputChars: number }[] = [];
  private unackedOutputChars = 0;
  private runner: TaskRunner | null = null;
  private launcher: CommandLauncher | undefined;
  private syncing: Promise<void> = Promise.resolve();
  /** Whether the wall clock has been set by a `sync` since the last `hello` (see event `at`). */
  private clockTrusted = false;
  private readonly agentctl: AgentctlServer;

  constructor(
    private readonly config: GuestConfig,
    private readonly transport: ControlTransport,
  ) {
    this.agentctl = new AgentctlServer(
      config.agentctlSocketPath,
      {
        emit: (event) => this.emit(event),
        onReviewWaiting: (waiting) => this.runner?.setReviewWaiting(waiting),
      },
      this.log,
    );
  }

  /** Sends a diagnostic to the host (and the console). */
  readonly log: GuestLog = (level, message) => {
    process.stderr.write(`agentvm-guest ${level}: ${message}\n`);
    this.send({ type: 'log', level, message });
  };

  async start(): Promise<void> {
    // Both before the first `ready`, so every template and snapshot already holds them.
    if (this.config.setClock) await startClockHelper();
    if (this.config.controlPath === null) {
      await ensureGuestNetwork().catch((error: Error) => this.log('error', error.message));
    }
    this.launcher = CommandLauncher.start(this.config.agentUser);
    warmUpParsers();
    await this.agentctl.listen();
    this.transport.start({
      onConnect: () => this.sendReady(),
      onLine: (line) => this.receive(line),
    });
  }

  async close(): Promise<void> {
    this.runner?.cancel(0);
    await this.agentctl.close();
    await this.transport.close();
  }

  /** Numbers an event and sends it; it stays in memory until the host acknowledges it. */
  emit(event: GuestEvent): void {
    this.seq += 1;
    const at = this.clockTrusted ? Date.now() : undefined;
    const line = JSON.stringify({ type: 'event', seq: this.seq, event, at } satisfies GuestMessage);
    const outputChars = event.kind === 'output' ? event.text.length : 0;
    this.unacked.push({ seq: this.seq, line, outputChars });
    this.unackedOutputChars += outputChars;
    this.transport.send(line);
  }

  private send(message: GuestMessage): void {
    this.transport.send(JSON.stringify(message));
  }

  private sendReady(): void {
    this.send({
      type: 'ready',
      version: this.config.version,
      seq: this.seq,
      uptimeMs: uptimeMs(),
      hasTask: this.runner !== null,
    });
  }

  private receive(line: string): void {
    let message: HostMessage;
    try {
      message = hostMessageSchema.parse(JSON.parse(line));
    } catch (error) {
      this.log(
        'warn',
        `ignored a bad line from the host (${line.length} chars): ${String(error).slice(0, 300)}`,
      );
      return;
    }

    this.dispatch(message).catch((error: Error) => {
      this.log('error', `${message.type} failed: ${error.message}`);
    });
  }

  private async dispatch(message: HostMessage): Promise<void> {
    switch (message.type) {
      case 'hello':
        // A hello follows every restore, after which the clock is the snapshot's until a sync.
        this.clockTrusted = false;
        this.replay(message.lastSeq);
        return;
      case 'ack':
        this.acknowledge(message.seq);
        return;
      case 'sync': {
        // A task that arrives with the sync must see the corrected clock, so it waits for this.
        const applied = this.syncing.then(() =>
          syncClock(message.timeMs, message.entropy, this.config.setClock),
        );
        this.syncing = applied.then(
          () => undefined,
          () => undefined,
        );
        const outcome = await applied;
        this.clockTrusted = true;
        this.send({ type: 'synced', clockSkewMs: outcome.clockSkewMs });
        return;
      }
      case 'task':
        await this.startTask(message.task);
        return;
      case 'review-answer':
        if (!this.agentctl.answerReview(message.requestId, message.message)) {
          this.log('warn', `no agentctl review is waiting for ${message.requestId}`);
        }
        return;
      case 'cancel':
        if (!this.runner?.cancel(message.graceMs))
          this.log('warn', 'cancel: no agent command is running');
        return;
      case 'request':
        await this.serve(message.id, message.request);
        return;
    }
  }

  private replay(lastSeq: number): void {
    // Events still queued in the transport would otherwise go out twice, once late.
    this.transport.dropQueued((line) => line.startsWith('{"type":"event"'));
    this.sendReady();
    for (const entry of this.unacked) {
      if (entry.seq > lastSeq) this.transport.send(entry.line);
    }
  }

  private acknowledge(seq: number): void {
    while (this.unacked.length > 0 && this.unacked[0].seq <= seq) {
      this.unackedOutputChars -= (this.unacked.shift() as { outputChars: number }).outputChars;
    }
  }

  private async startTask(task: TaskRunner['task']): Promise<void> {
    await this.syncing;
    if (this.runner) {
      this.log('error', `ignored a second task (${task.agentId}); this VM already runs one`);
      return;
    }

    this.runner = new TaskRunner(
      this.config,
      task,
      {
        emit: (event) => this.emit(event),
        acceptOutput: (chars) => this.unackedOutputChars + chars <= MAX_UNACKED_OUTPUT_CHARS,
        log: this.log,
      },
      this.launcher,
    );
    await this.runner.run();
  }

  private async serve(
    id: number,
    request: Parameters<typeof handleGuestRequest>[0],
  ): Promise<void> {
    const runner = this.runner;
    try {
      const result = await handleGuestRequest(request, {
        workspaceDir: this.config.workspaceDir,
        user: this.config.agentUser,
        baseCommit: runner?.task.baseCommit ?? null,
        env: runner ? runner.commandEnv() : baseEnv(this.config.agentUser),
      });
      this.send({ type: 'response', id, ok: true, result });
    } catch (error) {
      const code =
        error instanceof GuestRequestError
          ? error.code
          : ((error as NodeJS.ErrnoException).code ?? 'GUEST_ERROR');
      this.send({
        type: 'response',
        id,
        ok: false,
        error: { code, message: (error as Error).message },
      });
    }
  }
}

function uptimeMs(): number {
  try {
    return Math.round(Number(fs.readFileSync('/proc/uptime', 'utf8').split(' ')[0]) * 1000);
  } catch {
    return Math.round(process.uptime() * 1000);
  }
}
