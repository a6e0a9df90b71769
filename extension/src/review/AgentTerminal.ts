import * as vscode from 'vscode';
import type { ComponentLog } from '../log';
import type { GuestApi } from './GuestApi';
import { ReviewShell } from './ReviewShell';

/**
 * A terminal onto a reviewing agent's VM (see {@link ReviewShell} for what it does with input).
 * There is no interactive shell (no PTY in the guest API), so full-screen programs do not work.
 */
export class AgentTerminal implements vscode.Pseudoterminal {
  private readonly writeEmitter = new vscode.EventEmitter<string>();
  private readonly closeEmitter = new vscode.EventEmitter<number | void>();
  private readonly shell: ReviewShell;

  readonly onDidWrite = this.writeEmitter.event;
  readonly onDidClose = this.closeEmitter.event;

  constructor(agentId: string, guest: GuestApi, log: ComponentLog) {
    this.shell = new ReviewShell(
      agentId,
      guest,
      {
        write: (text) => this.writeEmitter.fire(text),
        close: (code) => this.closeEmitter.fire(code),
      },
      log,
    );
  }

  open(): void {
    this.shell.open();
  }

  close(): void {
    this.shell.close();
    this.writeEmitter.dispose();
    this.closeEmitter.dispose();
  }

  handleInput(data: string): void {
    this.shell.input(data);
  }
}
