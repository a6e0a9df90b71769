import * as vscode from 'vscode';
import type { AgentChange, AgentStore } from '../model/AgentStore';
import { readSettings } from '../settings';
import { agentNotice } from './agentNotice';

/**
 * Notifications when an agent asks for review, finishes or fails, each with the action that fits.
 * Only transitions seen live are announced, not agents that were already in that state on load.
 */
export class AgentNotifier implements vscode.Disposable {
  private readonly subscription: vscode.Disposable;

  constructor(store: AgentStore) {
    this.subscription = store.onDidChangeAgent((change) => void this.notify(change));
  }

  private async notify({ agent, previous }: AgentChange): Promise<void> {
    const notice = agentNotice(agent, previous, readSettings());
    if (!notice) return;

    const show =
      notice.severity === 'error'
        ? vscode.window.showErrorMessage
        : vscode.window.showInformationMessage;
    const choice = await show(notice.message, ...notice.actions.map((action) => action.title));
    const action = notice.actions.find((candidate) => candidate.title === choice);
    if (action) await vscode.commands.executeCommand(action.command, agent.id);
  }

  dispose(): void {
    this.subscription.dispose();
  }
}
