import * as vscode from 'vscode';
import type { Agent } from '../../../protocol/api';
import { groupAgents } from '../model/agentGrouping';
import type { AgentStore } from '../model/AgentStore';
import { vmTimeText } from '../model/vmTime';
import { AgentGroupTreeItem } from './AgentGroupTreeItem';
import { AgentTreeItem } from './AgentTreeItem';

type Node = AgentGroupTreeItem | AgentTreeItem;

const elapsedRefreshIntervalMs = 15_000;

/**
 * The Agents tree: agents grouped by state. Empty and unreachable states return no children so
 * the view's welcome content (package.json `viewsWelcome`) explains what to do.
 */
export class AgentsTreeProvider implements vscode.TreeDataProvider<Node>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<Node | undefined>();
  private readonly items = new Map<string, AgentTreeItem>();
  private readonly disposables: vscode.Disposable[] = [this.changed];
  private timer: NodeJS.Timeout | undefined;

  readonly onDidChangeTreeData = this.changed.event;

  constructor(private readonly store: AgentStore) {
    this.disposables.push(store.onDidChange(() => this.changed.fire(undefined)));
  }

  /** Keeps elapsed times and running VMs' VM times fresh while the view is visible. */
  setVisible(visible: boolean): void {
    clearInterval(this.timer);
    this.timer = visible
      ? setInterval(() => this.changed.fire(undefined), elapsedRefreshIntervalMs)
      : undefined;
  }

  getTreeItem(element: Node): vscode.TreeItem {
    return element;
  }

  getChildren(element?: Node): Node[] {
    const now = Date.now();
    if (element instanceof AgentGroupTreeItem) {
      return element.agents.map((agent) => this.remember(this.itemOf(agent, now)));
    }
    if (element) return [];

    if (this.store.status !== 'connected' && this.store.all.length === 0) return [];

    return groupAgents(this.store.all).map(
      ({ group, agents }) => new AgentGroupTreeItem(group, agents),
    );
  }

  getParent(element: Node): Node | undefined {
    if (element instanceof AgentGroupTreeItem) return undefined;

    const groups = groupAgents(this.store.all);
    const found = groups.find(({ agents }) =>
      agents.some((agent) => agent.id === element.agent.id),
    );
    return found ? new AgentGroupTreeItem(found.group, found.agents) : undefined;
  }

  /** The current item of an agent, for `TreeView.reveal`. */
  itemFor(agentId: string): AgentTreeItem | undefined {
    const agent = this.store.get(agentId);
    return agent ? this.itemOf(agent, Date.now()) : this.items.get(agentId);
  }

  private itemOf(agent: Agent, nowMs: number): AgentTreeItem {
    const vmTime = vmTimeText(agent, {
      receivedAtMs: this.store.receivedAt(agent.id) ?? nowMs,
      live: this.store.status === 'connected',
      nowMs,
    });
    return new AgentTreeItem(agent, nowMs, vmTime);
  }

  private remember(item: AgentTreeItem): AgentTreeItem {
    this.items.set(item.agent.id, item);
    return item;
  }

  dispose(): void {
    clearInterval(this.timer);
    for (const disposable of this.disposables) disposable.dispose();
  }
}
