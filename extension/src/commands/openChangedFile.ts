import * as vscode from 'vscode';
import type { Services } from '../services';
import { agentIdOf } from './agentIdOf';
import { UserCancelled } from './wrapCommand';

/** agentvm.openChangedFile: opens one of the reviewing agent's changed files as a diff. */
export function openChangedFile(services: Services) {
  return async (arg?: unknown, pathArg?: string): Promise<void> => {
    const agentId = await agentIdOf(arg, services, ['reviewing']);
    const client = await services.connection.getClient();
    const agent = await client.getAgent(agentId);
    let path = pathArg;
    if (!path) {
      const changes = await services.guest.changes(agentId);
      const picked = await vscode.window.showQuickPick(
        changes.map((change) => ({ label: change.path, description: change.status })),
        { placeHolder: 'Changed file to compare with the base commit' },
      );
      if (!picked) throw new UserCancelled();

      path = picked.label;
    }

    await services.review.openDiff(agent, path);
  };
}
