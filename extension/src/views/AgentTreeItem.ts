import * as vscode from 'vscode';
import type { Agent } from '../../../protocol/api';
import {
  agentContextValue,
  agentDescription,
  stateIcons,
  stateLabel,
} from '../model/agentPresentation';

/**
 * One agent in the Agents tree; clicking it opens the agent's panel. `vmTime` is its VM time as
 * `vmTimeText` words it, undefined when the broker does not report it.
 */
export class AgentTreeItem extends vscode.TreeItem {
  constructor(
    readonly agent: Agent,
    nowMs: number,
    vmTime?: string,
  ) {
    super(agent.title, vscode.TreeItemCollapsibleState.None);
    this.id = `agent:${agent.id}`;
    this.description = agentDescription(agent, nowMs);
    this.contextValue = agentContextValue(agent);
    const { icon, color } = stateIcons[agent.state];
    this.iconPath = new vscode.ThemeIcon(icon, color ? new vscode.ThemeColor(color) : undefined);
    this.tooltip = new vscode.MarkdownString(agentTooltipLines(agent, vmTime).join('  \n'));
    this.command = { command: 'agentvm.openAgent', title: 'Open', arguments: [agent.id] };
  }
}

/** The lines of an agent's tooltip, in Markdown with the agent's own text escaped. */
export function agentTooltipLines(agent: Agent, vmTime: string | undefined): string[] {
  const lines = [
    `**${escape(agent.title)}**`,
    '',
    `State: ${stateLabel(agent.state)}${agent.stateReason ? ` (${escape(agent.stateReason)})` : ''}`,
    ...(vmTime === undefined ? [] : [`VM time: ${escape(vmTime)}`]),
    `Profile: ${escape(agent.profile)} · id \`${agent.id}\``,
    `Base: \`${agent.repo.baseCommit.slice(0, 12)}\` on ${escape(agent.repo.branch)}`,
  ];
  if (agent.review) lines.push('', `Review request: ${escape(agent.review.message)}`);
  if (agent.lastProgress) lines.push('', `Progress: ${escape(agent.lastProgress)}`);

  return lines;
}

function escape(text: string): string {
  return text.replace(/[\\`*_{}[\]()#+\-.!|<>]/g, '\\$&');
}
