import * as vscode from 'vscode';
import type { Agent } from '../../../protocol/api';
import {
  agentContextValue,
  agentDescription,
  stateIcons,
  stateLabel,
} from '../model/agentPresentation';

/** One agent in the Agents tree; clicking it opens the agent's panel. */
export class AgentTreeItem extends vscode.TreeItem {
  constructor(
    readonly agent: Agent,
    nowMs: number,
  ) {
    super(agent.title, vscode.TreeItemCollapsibleState.None);
    this.id = `agent:${agent.id}`;
    this.description = agentDescription(agent, nowMs);
    this.contextValue = agentContextValue(agent);
    const { icon, color } = stateIcons[agent.state];
    this.iconPath = new vscode.ThemeIcon(icon, color ? new vscode.ThemeColor(color) : undefined);
    this.tooltip = tooltipFor(agent);
    this.command = { command: 'agentvm.openAgent', title: 'Open', arguments: [agent.id] };
  }
}

function tooltipFor(agent: Agent): vscode.MarkdownString {
  const lines = [
    `**${escape(agent.title)}**`,
    '',
    `State: ${stateLabel(agent.state)}${agent.stateReason ? ` (${escape(agent.stateReason)})` : ''}`,
    `Profile: ${escape(agent.profile)} · id \`${agent.id}\``,
    `Base: \`${agent.repo.baseCommit.slice(0, 12)}\` on ${escape(agent.repo.branch)}`,
  ];
  if (agent.review) lines.push('', `Review request: ${escape(agent.review.message)}`);
  if (agent.lastProgress) lines.push('', `Progress: ${escape(agent.lastProgress)}`);

  return new vscode.MarkdownString(lines.join('  \n'));
}

function escape(text: string): string {
  return text.replace(/[\\`*_{}[\]()#+\-.!|<>]/g, '\\$&');
}
