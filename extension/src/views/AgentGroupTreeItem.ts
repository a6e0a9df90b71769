import * as vscode from 'vscode';
import type { Agent } from '../../../protocol/api';
import { agentGroupLabels, type AgentGroup } from '../model/agentGrouping';

/** A state group ("Needs review", "Running", ...) in the Agents tree. */
export class AgentGroupTreeItem extends vscode.TreeItem {
  constructor(
    readonly group: AgentGroup,
    readonly agents: Agent[],
  ) {
    super(agentGroupLabels[group], vscode.TreeItemCollapsibleState.Expanded);
    this.id = `group:${group}`;
    this.description = String(agents.length);
    this.contextValue = `group:${group}`;
  }
}
