import * as vscode from 'vscode';
import { AGENT_BASE_SCHEME, AGENT_SCHEME } from '../review/agentUri';
import { AgentFileSystemProvider } from '../review/AgentFileSystemProvider';
import { BaseContentProvider } from '../review/BaseContentProvider';
import type { Services } from '../services';
import { AGENT_PANEL_VIEW_TYPE } from '../webview/AgentPanel';
import { AgentPanelSerializer } from '../webview/AgentPanelSerializer';
import { AgentNotifier } from './AgentNotifier';
import { AgentsTreeProvider } from './AgentsTreeProvider';
import { ReviewStatusBarItem } from './ReviewStatusBarItem';
import { staleStatesMessage } from './staleStatesMessage';

/** What registerViews hands back, for commands and tests. */
export interface Views {
  tree: vscode.TreeView<unknown>;
  provider: AgentsTreeProvider;
  statusBar: ReviewStatusBarItem;
}

/**
 * The single wiring point of views: the Agents tree (live updates start when it first becomes
 * visible), status bar, notifications, the agent panel serializer and the review file system.
 */
export function registerViews(services: Services): Views {
  const { context, store } = services;
  const provider = new AgentsTreeProvider(store);
  const tree = vscode.window.createTreeView('agentvm.agents', {
    treeDataProvider: provider,
    showCollapseAll: false,
  });
  const statusBar = new ReviewStatusBarItem(store);
  const panelServices = {
    extensionUri: context.extensionUri,
    store,
    connection: services.connection,
    guest: services.guest,
    log: services.log.for('Panel'),
  };

  context.subscriptions.push(
    provider,
    tree,
    statusBar,
    new AgentNotifier(store),
    tree.onDidChangeVisibility(({ visible }) => {
      provider.setVisible(visible);
      if (visible) store.start();
    }),
    store.onDidChange(() => {
      tree.badge =
        statusBar.count > 0
          ? { value: statusBar.count, tooltip: 'Agents that need your review' }
          : undefined;
      tree.message = staleStatesMessage(
        store.status,
        store.all.length,
        services.connection.url,
        store.disconnectedAt,
      );
    }),
    vscode.window.registerWebviewPanelSerializer(
      AGENT_PANEL_VIEW_TYPE,
      new AgentPanelSerializer(panelServices),
    ),
    vscode.workspace.registerFileSystemProvider(
      AGENT_SCHEME,
      new AgentFileSystemProvider(services.guest, store, services.log.for('FileSystem')),
      { isCaseSensitive: true },
    ),
    vscode.workspace.registerTextDocumentContentProvider(
      AGENT_BASE_SCHEME,
      new BaseContentProvider(services.guest),
    ),
  );
  if (tree.visible) store.start();

  services.revealAgent = async (agentId: string) => {
    const item = provider.itemFor(agentId);
    if (!item) return;

    await vscode.commands.executeCommand('agentvm.agents.focus');
    await tree.reveal(item, { select: true, focus: false }).then(undefined, () => undefined);
  };

  return { tree: tree as vscode.TreeView<unknown>, provider, statusBar };
}
