import * as vscode from 'vscode';
import type { Agent } from '../../../protocol/api';
import type { ComponentLog } from '../log';
import type { AgentStore } from '../model/AgentStore';
import { inertText } from '../model/inertText';
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
 * its VM, and diffs of changed files. When the agent leaves `reviewing` (resumed, cancelled, here
 * or elsewhere) or is removed, its folder is removed, its terminal and editors closed, because the
 * files are no longer the reviewer's. Editors with unsaved edits stay open, with a warning: the
 * VM no longer takes them, and closing them would ask to save where no save can succeed.
 */
export class ReviewWorkspace implements vscode.Disposable {
  private readonly terminals = new Map<string, vscode.Terminal>();
  private readonly folders: WorkspaceFolderQueue<vscode.Uri>;
  private readonly subscriptions: vscode.Disposable[];
  /** Titles of agents reviewed in this window, for messages after the agent is gone. */
  private readonly titles = new Map<string, string>();
  /** Agents whose left-over unsaved edits were already pointed out. */
  private readonly warnedUnsaved = new Set<string>();

  constructor(
    store: AgentStore,
    private readonly guest: GuestApi,
    private readonly log: ComponentLog,
  ) {
    this.folders = new WorkspaceFolderQueue(vscode.workspace, log, {
      timeoutMs: folderChangeTimeoutMs,
      warn: (message) => void vscode.window.showWarningMessage(message),
    });
    this.subscriptions = [
      store.onDidChangeAgent(({ agent, previous }) => {
        // A review that just ended, or one that ended while this window did not watch (an agent
        // seen for the first time, as after a reload), may have left a folder and editors.
        const reviewEnded = previous === undefined || previous.state === 'reviewing';
        if (agent.state !== 'reviewing' && reviewEnded) void this.close(agent.id);
      }),
      store.onDidRemoveAgent((agentId) => void this.close(agentId)),
    ];
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
    this.titles.set(agent.id, agent.title);
    this.warnedUnsaved.delete(agent.id);
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
   * Removes the agent's folder, closes its terminal and its editors but those with unsaved edits.
   * Resolves once VS Code has confirmed the folder gone (it applies the removal asynchronously),
   * or after `folderChangeTimeoutMs` at the latest.
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
    const ofAgent = tabs.filter((tab) => tabUris(tab).some((uri) => isOfAgent(uri, agentId)));
    const unsaved = ofAgent.filter((tab) => tab.isDirty);
    const saved = ofAgent.filter((tab) => !tab.isDirty);
    if (unsaved.length > 0) this.warnUnsaved(agentId, unsaved);
    if (saved.length > 0) await vscode.window.tabGroups.close(saved, true);
  }

  private warnUnsaved(agentId: string, tabs: vscode.Tab[]): void {
    if (this.warnedUnsaved.has(agentId)) return;

    this.warnedUnsaved.add(agentId);
    const files = [
      ...new Set(
        tabs.flatMap((tab) =>
          tabUris(tab)
            .filter((uri) => uri.scheme === AGENT_SCHEME && uri.authority === agentId)
            .map((uri) => uri.path.replace(/^\/+/, '')),
        ),
      ),
    ];
    const title = this.titles.get(agentId) ?? agentId;
    this.log.warn(`${agentId}: review ended with unsaved edits in ${files.join(', ')}`);
    void vscode.window.showWarningMessage(
      inertText(
        `Agent "${title}" is no longer paused for review (resumed, cancelled or removed outside this window), so your unsaved edits to ${files.join(', ')} did not reach its VM. They stay open here: use "Save As…" to keep them.`,
      ),
    );
  }

  dispose(): void {
    for (const subscription of this.subscriptions) subscription.dispose();
    this.folders.dispose();
    for (const terminal of this.terminals.values()) terminal.dispose();
  }
}

function tabUris(tab: vscode.Tab): vscode.Uri[] {
  const input = tab.input;
  if (input instanceof vscode.TabInputText) return [input.uri];
  if (input instanceof vscode.TabInputTextDiff) return [input.original, input.modified];

  return [];
}

function isOfAgent(uri: vscode.Uri, agentId: string): boolean {
  return (
    (uri.scheme === AGENT_SCHEME || uri.scheme === AGENT_BASE_SCHEME) && uri.authority === agentId
  );
}
