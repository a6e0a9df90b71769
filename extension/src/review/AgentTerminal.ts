import * as vscode from 'vscode';
import { AgentvmError } from '../../../protocol/errors';
import type { ComponentLog } from '../log';
import type { GuestApi } from './GuestApi';
import { LineEditor, toTerminalText } from './LineEditor';

const commandTimeoutMs = 120_000;

/**
 * A terminal onto a reviewing agent's VM: each entered line runs to completion with the guest's
 * `exec` op in the workspace, and its output is printed. There is no interactive shell (no PTY in
 * the guest API), so full-screen programs do not work.
 */
export class AgentTerminal implements vscode.Pseudoterminal {
  private readonly writeEmitter = new vscode.EventEmitter<string>();
  private readonly closeEmitter = new vscode.EventEmitter<number | void>();
  private readonly editor = new LineEditor();
  private queue: Promise<void> = Promise.resolve();
  private busy = false;

  readonly onDidWrite = this.writeEmitter.event;
  readonly onDidClose = this.closeEmitter.event;

  constructor(
    private readonly agentId: string,
    private readonly guest: GuestApi,
    private readonly log: ComponentLog,
  ) {}

  open(): void {
    this.writeEmitter.fire(
      `agentvm: commands run inside agent ${this.agentId}'s VM, in its workspace.\r\n`,
    );
    this.prompt();
  }

  close(): void {
    this.writeEmitter.dispose();
    this.closeEmitter.dispose();
  }

  handleInput(data: string): void {
    if (this.busy) return;

    const result = this.editor.input(data);
    this.writeEmitter.fire(result.echo);
    if (result.interrupted) this.prompt();
    for (const line of result.lines) this.queue = this.queue.then(() => this.run(line));
  }

  private async run(line: string): Promise<void> {
    const command = line.trim();
    if (command === 'exit') {
      this.closeEmitter.fire(0);
      return;
    }
    if (!command) {
      this.prompt();
      return;
    }

    this.busy = true;
    try {
      const result = await this.guest.exec(this.agentId, command, commandTimeoutMs);
      this.writeEmitter.fire(toTerminalText(result.stdout));
      if (result.stderr) this.writeEmitter.fire(`\x1b[31m${toTerminalText(result.stderr)}\x1b[0m`);
      if (result.timedOut)
        this.writeEmitter.fire(`\x1b[2m[timed out after ${commandTimeoutMs / 1000} s]\x1b[0m\r\n`);
      else if (result.code !== 0)
        this.writeEmitter.fire(`\x1b[2m[exit ${result.code ?? result.signal}]\x1b[0m\r\n`);
    } catch (error) {
      const message =
        error instanceof AgentvmError ? `${error.message} (${error.code})` : String(error);
      this.log.warn(`exec in ${this.agentId} failed: ${message}`);
      this.writeEmitter.fire(`\x1b[31m${toTerminalText(message)}\x1b[0m\r\n`);
    } finally {
      this.busy = false;
      this.prompt();
    }
  }

  private prompt(): void {
    this.writeEmitter.fire('\x1b[1magentvm$\x1b[0m ');
  }
}
