import * as vscode from 'vscode';
import type { Services } from '../services';
import { agentIdOf } from './agentIdOf';
import { UserCancelled } from './wrapCommand';

/** agentvm.removeAgent: deletes the agent, its VM and its files after a confirmation. */
export function removeAgent(services: Services) {
  return async (arg?: unknown, confirmed?: boolean): Promise<void> => {
    const agentId = await agentIdOf(arg, services);
    const title = services.store.get(agentId)?.title ?? agentId;
    if (!confirmed) {
      const choice = await vscode.window.showWarningMessage(
        `Remove agent "${title}" with its VM, snapshot and result?`,
        { modal: true },
        'Remove',
      );
      if (choice !== 'Remove') throw new UserCancelled();
    }

    await services.review.close(agentId);
    const client = await services.connection.getClient();
    // The user confirmed above (or the caller did): an agent that has not ended goes too.
    await client.remove(agentId, { force: true });
    await services.store.refresh();
  };
}
