import * as vscode from 'vscode';
import type { Agent } from '../../../protocol/api';
import { AgentvmError } from '../../../protocol/errors';
import { inertText } from '../model/inertText';
import { AGENT_SCHEME } from '../review/agentUri';
import type { Services } from '../services';
import { agentIdOf } from './agentIdOf';
import { UserCancelled } from './wrapCommand';

/**
 * agentvm.resumeAgent: sends the reviewer's answer (optional) and lets the agent continue with the
 * reviewer's edits in place. Unsaved edits in the agent's workspace are saved first, so the agent
 * sees what the reviewer sees; when one cannot be saved the agent is not resumed. Callers that
 * already have the answer pass it and skip the prompt.
 */
export function resumeAgent(services: Services) {
  return async (arg?: unknown, answerArg?: string): Promise<Agent> => {
    const agentId = await agentIdOf(arg, services, ['awaiting_review', 'reviewing']);
    const agent = services.store.get(agentId);
    const answer =
      answerArg ??
      (await vscode.window.showInputBox({
        title: `Resume agent "${inertText(agent?.title ?? agentId)}"`,
        // The prompt turns [label](command:…) into a link that runs the command: the agent's
        // words are made inert.
        prompt: agent?.review?.message
          ? `The agent asked: ${inertText(agent.review.message)}`
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

/** Saves the agent's unsaved documents into its VM; throws, resuming nothing, when one fails. */
async function saveAgentDocuments(agentId: string): Promise<void> {
  const dirty = vscode.workspace.textDocuments.filter(
    (document) =>
      document.isDirty &&
      document.uri.scheme === AGENT_SCHEME &&
      document.uri.authority === agentId,
  );
  const unsaved: string[] = [];
  for (const document of dirty) {
    if (!(await document.save())) unsaved.push(document.uri.path.replace(/^\/+/, ''));
  }
  if (unsaved.length === 0) return;

  throw new AgentvmError(
    'GUEST_ERROR',
    `could not save ${unsaved.join(', ')} into agent ${agentId}'s VM, so the agent was not resumed (your edits are still in the editor)`,
    'Save the file again to see why (the editor says), fix or undo the edit, then resume.',
  );
}
