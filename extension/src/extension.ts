import * as vscode from 'vscode';
import { BrokerConnection } from './broker/BrokerConnection';
import { BrokerStarter } from './broker/BrokerStarter';
import { registerCommands } from './commands/registerCommands';
import { askIssueTask } from './delegate/askIssueTask';
import { activeIssuePicker } from './github/pickIssue';
import { Log } from './log';
import { AgentStore } from './model/AgentStore';
import { GuestApi } from './review/GuestApi';
import { ReviewWorkspace } from './review/ReviewWorkspace';
import type { Services } from './services';
import { registerViews, type Views } from './views/registerViews';
import { AgentPanel } from './webview/AgentPanel';

/** What `activate` returns: the extension's parts, for tests running in the extension host. */
export interface ExtensionApi {
  services: Services;
  views: Views;
  panels: typeof AgentPanel;
  github: {
    /** The "GitHub issue" source of Delegate: pick or name an issue, read it as the task. */
    askIssueTask(repoPath: string): Promise<{ text: string; title: string }>;
    /** The GitHub issue picker on screen, if any. */
    activeIssuePicker: typeof activeIssuePicker;
  };
}

export function activate(context: vscode.ExtensionContext): ExtensionApi {
  const log = new Log();
  const starter = new BrokerStarter(
    context.extensionPath,
    context.globalStorageUri.fsPath,
    log.for('Broker'),
  );
  const connection = new BrokerConnection(context.secrets, starter, log.for('Connection'));
  const store = new AgentStore(connection, log.for('Store'));
  const guest = new GuestApi(connection);
  const review = new ReviewWorkspace(store, guest, log.for('Review'));
  context.subscriptions.push(log, connection, store, review, {
    dispose: () => AgentPanel.disposeAll(),
  });

  const services: Services = {
    context,
    log,
    connection,
    starter,
    store,
    guest,
    review,
    revealAgent: async () => undefined,
  };
  void vscode.commands.executeCommand('setContext', 'agentvm.brokerStatus', 'idle');
  const views = registerViews(services);
  registerCommands(services);
  log.for('Extension').info(`activated; broker ${connection.url}`);

  const github = {
    askIssueTask: (repoPath: string) => askIssueTask(repoPath, log.for('GitHub')),
    activeIssuePicker,
  };
  return { services, views, panels: AgentPanel, github };
}

export function deactivate(): void {
  // Everything is owned by context.subscriptions.
}
