import * as vscode from 'vscode';
import { needsReview } from '../model/agentGrouping';
import type { AgentStore } from '../model/AgentStore';

/**
 * Status bar item counting the agents the Agents tree lists under "Needs review" (from pausing to
 * reviewing); hidden at zero.
 */
export class ReviewStatusBarItem implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem(
    'agentvm.reviewCount',
    vscode.StatusBarAlignment.Left,
    50,
  );
  private readonly subscription: vscode.Disposable;

  constructor(private readonly store: AgentStore) {
    this.item.name = 'agentvm: agents that need review';
    this.item.command = 'agentvm.agents.focus';
    this.subscription = store.onDidChange(() => this.update());
    this.update();
  }

  /** The number shown, for tests. */
  get count(): number {
    return this.store.all.filter(needsReview).length;
  }

  private update(): void {
    const count = this.count;
    if (count === 0) {
      this.item.hide();
      return;
    }

    this.item.text = `$(comment-discussion) ${count}`;
    const stale =
      this.store.status === 'connected' ? '' : ' (last known: not connected to the broker)';
    const agents = count === 1 ? '1 agent needs' : `${count} agents need`;
    this.item.tooltip = `${agents} your review${stale}`;
    this.item.backgroundColor = new vscode.ThemeColor('statusBarItem.warningBackground');
    this.item.show();
  }

  dispose(): void {
    this.subscription.dispose();
    this.item.dispose();
  }
}
