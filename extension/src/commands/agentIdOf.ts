import { UserCancelled } from './wrapCommand';
import type { Services } from '../services';
import * as vscode from 'vscode';
import { stateLabel } from '../model/agentPresentation';
import type { AgentState } from '../../../protocol/api';

/**
 * The agent a command acts on: the id passed by a caller (tree item, webview, notification,
 * test), or one the user picks among agents in the allowed states.
 */
export async function agentIdOf(
  arg: unknown,
  services: Services,
  allowed?: readonly AgentState[],
): Promise<string> {
  if (typeof arg === 'string') return arg;
  if (arg && typeof arg === 'object' && 'agent' in arg) {
    const agent = (arg as { agent: { id: unknown } }).agent;
    if (typeof agent.id === 'string') return agent.id;
  }

  const candidates = services.store.all.filter(
    (agent) => !allowed || allowed.includes(agent.state),
  );
  const picked = await vscode.window.showQuickPick(
    candidates.map((agent) => ({
      label: agent.title,
      description: `${stateLabel(agent.state)} · ${agent.id}`,
      id: agent.id,
    })),
    { placeHolder: candidates.length ? 'Choose an agent' : 'No agent in a state that allows this' },
  );
  if (!picked) throw new UserCancelled();

  return picked.id;
}
