import * as vscode from 'vscode';
import type { AgentChange, AgentStore } from '../model/AgentStore';
import { readSettings } from '../settings';

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
    if (!previous || previous.state === agent.state) return;

    const settings = readSettings();
    if (agent.state === 'awaiting_review' && settings.notifyReviewRequested) {
      const message = `Agent "${agent.title}" asks for review: ${agent.review?.message ?? ''}`;
      const choice = await vscode.window.showInformationMessage(
        message,
        'Review',
        'Resume',
        'Open',
      );
      if (choice === 'Review')
        await vscode.commands.executeCommand('agentvm.reviewAgent', agent.id);
      if (choice === 'Resume')
        await vscode.commands.executeCommand('agentvm.resumeAgent', agent.id);
      if (choice === 'Open') await vscode.commands.executeCommand('agentvm.openAgent', agent.id);
      return;
    }

    if (agent.state === 'done' && settings.notifyDone) {
      const choice = await vscode.window.showInformationMessage(
        `Agent "${agent.title}" is done.`,
        'Open result',
        'Apply as branch',
        'Open pull request',
      );
      if (choice === 'Open result')
        await vscode.commands.executeCommand('agentvm.viewResult', agent.id);
      if (choice === 'Apply as branch')
        await vscode.commands.executeCommand('agentvm.applyResult', agent.id);
      if (choice === 'Open pull request')
        await vscode.commands.executeCommand('agentvm.openPullRequest', agent.id);
      return;
    }

    if (agent.state === 'failed' && settings.notifyFailed) {
      const reason = agent.stateReason ? `: ${agent.stateReason}` : '.';
      const choice = await vscode.window.showErrorMessage(
        `Agent "${agent.title}" failed${reason}`,
        'Show log',
      );
      if (choice === 'Show log')
        await vscode.commands.executeCommand('agentvm.showAgentLog', agent.id);
    }
  }

  dispose(): void {
    this.subscription.dispose();
  }
}
