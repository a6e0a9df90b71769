import * as vscode from 'vscode';
import type { Agent } from '../../../protocol/api';
import type { ComponentLog } from '../log';
import type { AgentStore } from '../model/AgentStore';
import { AGENT_BASE_SCHEME, AGENT_SCHEME } from './agentUri';
import { AgentTerminal } from './AgentTerminal';
import type { GuestApi } from './GuestApi';
import type { WorkspaceChange } from './guestResults';
import { WorkspaceFolderQueue } from './WorkspaceFolderQueue';

/** At most this many changed files open as diff editors at once; the rest are in the webview. */
const maxDiffsOpened = 3;

/** How long one workspace folder change waits for VS Code's confirmation, in milliseconds. */
const folderChangeTimeoutMs = 10_000;

/**
 * The reviewer's view of paused agents: a workspace folder per reviewing agent, a terminal into
 * its VM, and diffs of changed files. When the agent leaves `reviewing` (resumed, cancelled) its
 * folder is removed and its terminal closed, because the files are no longer the reviewer's.
 */
export class ReviewWorkspace implements vscode.Disposable {
  private readonly terminals = new Map<string, vscode.Terminal>();
  private readonly folders: WorkspaceFolderQueue<vscode.Uri>;
  private readonly subscription: vscode.Disposable;

  constructor(
    store: AgentStore,
    private readonly guest: GuestApi,
    private readonly log: ComponentLog,
  ) {
    this.folders = new WorkspaceFolderQueue(vscode.workspace, log, {
      timeoutMs: folderChangeTimeoutMs,
      warn: (message) => void vscode.window.showWarningMessage(message),
    });
    this.subscription = store.onDidChangeAgent(({ agent }) => {
      if (agent.state !== 'reviewing') void this.close(agent.id);
    });
  }

  /** The root URI of an agent's workspace. */
  static rootUri(agentId: string): vscode.Uri {
    return vscode.Uri.from({ scheme: AGENT_SCHEME, authority: agentId, path: '/' });
  }

  /**
   * Adds the workspace folder (once every folder change asked for earlier is confirmed), opens the
   * terminal and the first diffs; returns the changes.
   */
  async open(agent: Agent): Promise<WorkspaceChange[]> {
    // Appending (never replacing the first folder) keeps the extension host running.
    await this.folders.add(ReviewWorkspace.rootUri(agent.id), `agent: ${agent.title}`);

    this.openTerminal(agent);
    const changes = await this.guest.changes(agent.id);
    this.log.info(`${agent.id}: ${changes.length} changed file(s)`);
    for (const change of changes.slice(0, maxDiffsOpened)) await this.openDiff(agent, change.path);

    return changes;
  }

  /** Opens one file as a diff against the agent's base commit. */
  async openDiff(agent: Agent, relativePath: string): Promise<void> {
    const path = '/' + relativePath.replace(/^\/+/, '');
    const right = vscode.Uri.from({ scheme: AGENT_SCHEME, authority: agent.id, path });
    const left = vscode.Uri.from({
      scheme: AGENT_BASE_SCHEME,
      authority: agent.id,
      path,
      query: agent.repo.baseCommit,
    });
    const title = `${relativePath} (base ↔ agent ${agent.id})`;
    await vscode.commands.executeCommand('vscode.diff', left, right, title, { preview: false });
  }

  openTerminal(agent: Agent): vscode.Terminal {
    const existing = this.terminals.get(agent.id);
    if (existing && existing.exitStatus === undefined) {
      existing.show(true);
      return existing;
    }

    const terminal = vscode.window.createTerminal({
      name: `agentvm: ${agent.title}`,
      pty: new AgentTerminal(agent.id, this.guest, this.log),
    });
    this.terminals.set(agent.id, terminal);
    terminal.show(true);
    return terminal;
  }

  /**
   * Removes the agent's folder, closes its editors and its terminal. Resolves once VS Code has
   * confirmed the folder gone (it applies the removal asynchronously), or after
   * `folderChangeTimeoutMs` at the latest.
   */
  async close(agentId: string): Promise<void> {
    this.terminals.get(agentId)?.dispose();
    this.terminals.delete(agentId);
    await Promise.all([
      this.folders.remove(ReviewWorkspace.rootUri(agentId)),
      this.closeEditors(agentId),
    ]);
  }

  private async closeEditors(agentId: string): Promise<void> {
    const tabs = vscode.window.tabGroups.all.flatMap((group) => group.tabs);
    const ofAgent = tabs.filter((tab) => {
      const input = tab.input;
      const uris =
        input instanceof vscode.TabInputText
          ? [input.uri]
          : input instanceof vscode.TabInputTextDiff
            ? [input.original, input.modified]
            : [];
      return uris.some(
        (uri) =>
          (uri.scheme === AGENT_SCHEME || uri.scheme === AGENT_BASE_SCHEME) &&
          uri.authority === agentId,
      );
    });
    if (ofAgent.length > 0) await vscode.window.tabGroups.close(ofAgent, true);
  }

  dispose(): void {
    this.subscription.dispose();
    this.folders.dispose();
    for (const terminal of this.terminals.values()) terminal.dispose();
  }
}
