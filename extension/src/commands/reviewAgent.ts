import * as vscode from 'vscode';
import type { Services } from '../services';
import type { WorkspaceChange } from '../review/guestResults';
import { agentIdOf } from './agentIdOf';

/**
 * agentvm.reviewAgent: restores the paused agent's snapshot (unless already restored) and opens
 * its workspace as a folder, a terminal into the VM and diffs of the changed files.
 */
export function reviewAgent(services: Services) {
  return async (arg?: unknown): Promise<WorkspaceChange[]> => {
    const agentId = await agentIdOf(arg, services, ['awaiting_review', 'reviewing']);
    const client = await services.connection.getClient();
    const agent = await vscode.window.withProgress(
      {
        location: vscode.ProgressLocation.Notification,
        title: 'agentvm: restoring the agent for review…',
      },
      async () => {
        const current = await client.getAgent(agentId);
        return current.state === 'reviewing' ? current : client.review(agentId);
      },
    );
    services.store.upsert(agent);
    return services.review.open(agent);
  };
}
