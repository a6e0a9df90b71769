import * as vscode from 'vscode';
import type { AgentChange, AgentStore } from '../model/AgentStore';
import { readSettings } from '../settings';
import { agentNotice } from './agentNotice';
import { showWithActions } from './showWithActions';

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

    const actions = notice.actions.map((action) => ({ ...action, args: [agent.id] }));
    await showWithActions(notice.severity, notice.message, actions);
  }

  dispose(): void {
    this.subscription.dispose();
  }
}
