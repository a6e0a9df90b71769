import { randomUUID } from 'node:crypto';
import { AgentvmError } from '../../../protocol/errors';
import type { ComponentLog } from '../log';
import type { GuestApi } from './GuestApi';
import { LineEditor, toTerminalText } from './LineEditor';

/** Longest a command entered in the review terminal may run, in milliseconds. */
export const REVIEW_COMMAND_TIMEOUT_MS = 120_000;

/** What the shell needs of its terminal. */
export interface ShellTerminal {
  write(text: string): void;
  close(code: number): void;
}

/**
 * The review terminal's line discipline, apart from VS Code: each entered line runs to completion
 * in the agent's workspace with the guest's `exec` op and its output is printed. Lines typed while
 * a command runs are echoed and run after it, in order (type-ahead); Ctrl+C while a command runs
 * sends it SIGINT and drops the lines typed ahead, as a terminal does.
 */
export class ReviewShell {
  private readonly editor = new LineEditor();
  private readonly pending: string[] = [];
  /** The `execId` of the command running now, if any. */
  private running: string | undefined;
  private draining = false;
  private closed = false;

  constructor(
    private readonly agentId: string,
    private readonly guest: Pick<GuestApi, 'exec' | 'interrupt'>,
    private readonly terminal: ShellTerminal,
    private readonly log: Pick<ComponentLog, 'warn'>,
  ) {}

  open(): void {
    this.terminal.write(
      `agentvm: commands run inside agent ${this.agentId}'s VM, in its workspace. Ctrl+C stops the running one.\r\n`,
    );
    this.prompt();
  }

  close(): void {
    this.closed = true;
    this.pending.length = 0;
  }

  input(data: string): void {
    const result = this.editor.input(data);
    this.terminal.write(result.echo);
    if (result.interrupted) {
      if (this.running === undefined) {
        this.prompt();
      } else {
        this.pending.length = 0;
        this.interrupt(this.running);
      }
    }
    this.pending.push(...result.lines);
    void this.drain();
  }

  private interrupt(execId: string): void {
    this.guest.interrupt(this.agentId, execId).catch((error: unknown) => {
      this.log.warn(`interrupting a command in ${this.agentId} failed: ${describe(error)}`);
    });
  }

  /** Runs the pending lines one after the other; one drain at a time. */
  private async drain(): Promise<void> {
    if (this.draining) return;

    this.draining = true;
    try {
      for (let line = this.pending.shift(); line !== undefined; line = this.pending.shift()) {
        if (this.closed) return;

        await this.run(line);
      }
    } finally {
      this.draining = false;
    }
  }

  private async run(line: string): Promise<void> {
    const command = line.trim();
    if (command === 'exit') {
      this.closed = true;
      this.terminal.close(0);
      return;
    }
    if (!command) {
      this.prompt();
      return;
    }

    const execId = randomUUID();
    this.running = execId;
    try {
      const result = await this.guest.exec(
        this.agentId,
        command,
        REVIEW_COMMAND_TIMEOUT_MS,
        undefined,
        execId,
      );
      this.terminal.write(toTerminalText(result.stdout));
      if (result.stderr) this.terminal.write(`\x1b[31m${toTerminalText(result.stderr)}\x1b[0m`);
      if (result.timedOut) {
        const seconds = REVIEW_COMMAND_TIMEOUT_MS / 1000;
        this.terminal.write(`\x1b[2m[timed out after ${seconds} s]\x1b[0m\r\n`);
      } else if (result.code !== 0) {
        this.terminal.write(`\x1b[2m[exit ${result.code ?? result.signal}]\x1b[0m\r\n`);
      }
    } catch (error) {
      const message = describe(error);
      this.log.warn(`exec in ${this.agentId} failed: ${message}`);
      this.terminal.write(`\x1b[31m${toTerminalText(message)}\x1b[0m\r\n`);
    } finally {
      this.running = undefined;
      if (!this.closed) this.prompt();
    }
  }

  private prompt(): void {
    this.terminal.write('\x1b[1magentvm$\x1b[0m ');
  }
}

function describe(error: unknown): string {
  return error instanceof AgentvmError ? `${error.message} (${error.code})` : String(error);
}
