import * as vscode from 'vscode';
import type { Agent } from '../../../protocol/api';
import type { Services } from '../services';
import { agentIdOf } from './agentIdOf';
import { UserCancelled } from './wrapCommand';

/**
 * agentvm.resumeAgent: sends the reviewer's answer (optional) and lets the agent continue with the
 * reviewer's edits in place. Unsaved edits in the agent's workspace are saved first, so the agent
 * sees what the reviewer sees. Callers that already have the answer pass it and skip the prompt.
 */
export function resumeAgent(services: Services) {
  return async (arg?: unknown, answerArg?: string): Promise<Agent> => {
    const agentId = await agentIdOf(arg, services, ['awaiting_review', 'reviewing']);
    const agent = services.store.get(agentId);
    const answer =
      answerArg ??
      (await vscode.window.showInputBox({
        title: `Resume agent "${agent?.title ?? agentId}"`,
        prompt: agent?.review?.message
          ? `The agent asked: ${agent.review.message}`
          : 'Answer for the agent (optional)',
        placeHolder: 'Leave empty to just continue',
        ignoreFocusOut: true,
      }));
    if (answer === undefined) throw new UserCancelled();

    await saveAgentDocuments(agentId);
    const client = await services.connection.getClient();
    const resumed = await client.resume(agentId, answer);
    services.store.upsert(resumed);
    await services.review.close(agentId);
    return resumed;
  };
}

async function saveAgentDocuments(agentId: string): Promise<void> {
  const dirty = vscode.workspace.textDocuments.filter(
    (document) =>
      document.isDirty && document.uri.scheme === 'agentvm' && document.uri.authority === agentId,
  );
  for (const document of dirty) await document.save();
}
