import * as vscode from 'vscode';
import type { Services } from '../services';
import { agentIdOf } from './agentIdOf';

/** agentvm.viewResult: opens the finished agent's commits as one patch document. */
export function viewResult(services: Services) {
  return async (arg?: unknown): Promise<void> => {
    const agentId = await agentIdOf(arg, services, ['done']);
    const client = await services.connection.getClient();
    const result = await client.result(agentId);
    const header = result.commits.map((commit) => `# ${commit.sha.slice(0, 10)} ${commit.subject}`);
    const content = [...header, '', result.patch || '(the agent made no commits)'].join('\n');
    const document = await vscode.workspace.openTextDocument({ content, language: 'diff' });
    await vscode.window.showTextDocument(document, { preview: false });
  };
}
