import * as vscode from 'vscode';
import type { Agent } from '../../../protocol/api';
import type { ComponentLog } from '../log';
import type { AgentStore } from '../model/AgentStore';
import { AGENT_BASE_SCHEME, AGENT_SCHEME } from './agentUri';
import { AgentTerminal } from './AgentTerminal';
import type { GuestApi } from './GuestApi';
import type { WorkspaceChange } from './guestResults';

/** At most this many changed files open as diff editors at once; the rest are in the webview. */
const maxDiffsOpened = 3;

/** How long to wait for VS Code to report the added workspace folder. */
const folderChangeTimeoutMs = 10_000;

/** How long closing a review waits for VS Code to drop the folder, in milliseconds. */
const folderRemovalTimeoutMs = 10_000;

/**
 * The reviewer's view of paused agents: a workspace folder per reviewing agent, a terminal into
 * its VM, and diffs of changed files. When the agent leaves `reviewing` (resumed, cancelled) its
 * folder is removed and its terminal closed, because the files are no longer the reviewer's.
 */
export class ReviewWorkspace implements vscode.Disposable {
  private readonly terminals = new Map<string, vscode.Terminal>();
  private readonly removals = new Map<string, Promise<void>>();
  private readonly subscription: vscode.Disposable;

  constructor(
    store: AgentStore,
    private readonly guest: GuestApi,
    private readonly log: ComponentLog,
  ) {
    this.subscription = store.onDidChangeAgent(({ agent }) => {
      if (agent.state !== 'reviewing') void this.close(agent.id);
    });
  }

  /** The root URI of an agent's workspace. */
  static rootUri(agentId: string): vscode.Uri {
    return vscode.Uri.from({ scheme: AGENT_SCHEME, authority: agentId, path: '/' });
  }

  /** Adds the workspace folder, opens the terminal and the first diffs; returns the changes. */
  async open(agent: Agent): Promise<WorkspaceChange[]> {
    const root = ReviewWorkspace.rootUri(agent.id);
    const folders = vscode.workspace.workspaceFolders ?? [];
    if (!folders.some((folder) => folder.uri.toString() === root.toString())) {
      const changed = new Promise<void>((resolve) => {
        const timer = setTimeout(done, folderChangeTimeoutMs);
        const subscription = vscode.workspace.onDidChangeWorkspaceFolders(done);
        function done() {
          clearTimeout(timer);
          subscription.dispose();
          resolve();
        }
      });
      // Appending (never replacing the first folder) keeps the extension host running.
      const added = vscode.workspace.updateWorkspaceFolders(folders.length, 0, {
        uri: root,
        name: `agent: ${agent.title}`,
      });
      if (added) await changed;
      else this.log.warn(`could not add workspace folder for ${agent.id}`);
    }

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
   * `folderRemovalTimeoutMs` at the latest.
   */
  async close(agentId: string): Promise<void> {
    this.terminals.get(agentId)?.dispose();
    this.terminals.delete(agentId);
    await Promise.all([this.removeFolder(agentId), this.closeEditors(agentId)]);
  }

  /**
   * One removal per folder, shared by every caller: until VS Code confirms it, `workspaceFolders`
   * already shows the folder gone, so a second caller that looked there would return early, and
   * a confirmation of an earlier change can still show it again.
   */
  private removeFolder(agentId: string): Promise<void> {
    const pending = this.removals.get(agentId);
    if (pending) return pending;

    const root = ReviewWorkspace.rootUri(agentId).toString();
    const indexOfFolder = () =>
      (vscode.workspace.workspaceFolders ?? []).findIndex(
        (folder) => folder.uri.toString() === root,
      );
    // Index 0 is never ours to remove: changing the first folder restarts the extension host.
    if (indexOfFolder() <= 0) return Promise.resolve();

    let settled = false;
    const removal = new Promise<void>((resolve) => {
      let requested = false;
      const finish = () => {
        settled = true;
        clearTimeout(timer);
        listener.dispose();
        this.removals.delete(agentId);
        resolve();
      };
      // VS Code refuses an update while another one is unconfirmed; ours is asked again after the
      // next change, and never twice (a repeated index could name another folder by then).
      const request = () => {
        const at = indexOfFolder();
        if (at <= 0) return finish();
        requested = vscode.workspace.updateWorkspaceFolders(at, 1);
        if (requested) this.log.info(`${agentId}: removing the review workspace folder`);
      };
      const timer = setTimeout(finish, folderRemovalTimeoutMs);
      // Inside this event `workspaceFolders` is the state VS Code confirmed.
      const listener = vscode.workspace.onDidChangeWorkspaceFolders(() => {
        if (indexOfFolder() < 0) finish();
        else if (!requested) request();
      });
      request();
    });
    if (settled) return removal;

    this.removals.set(agentId, removal);
    return removal;
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
    for (const terminal of this.terminals.values()) terminal.dispose();
  }
}
