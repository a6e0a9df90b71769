import * as vscode from 'vscode';
import type { Services } from '../services';
import { agentIdOf } from './agentIdOf';
import { UserCancelled } from './wrapCommand';

/** agentvm.cancelAgent: stops a running or paused agent after a confirmation. */
export function cancelAgent(services: Services) {
  return async (arg?: unknown, confirmed?: boolean): Promise<void> => {
    const agentId = await agentIdOf(arg, services);
    const title = services.store.get(agentId)?.title ?? agentId;
    if (!confirmed) {
      const choice = await vscode.window.showWarningMessage(
        `Cancel agent "${title}"? Its VM is stopped; work not yet exported is lost.`,
        { modal: true },
        'Cancel agent',
      );
      if (choice !== 'Cancel agent') throw new UserCancelled();
    }

    const client = await services.connection.getClient();
    services.store.upsert(await client.cancel(agentId));
  };
}
