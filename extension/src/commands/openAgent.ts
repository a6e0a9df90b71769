import type { Services } from '../services';
import { AgentPanel } from '../webview/AgentPanel';
import { agentIdOf } from './agentIdOf';

/** agentvm.openAgent: shows the agent's panel (timeline, review request, actions). */
export function openAgent(services: Services) {
  return async (arg?: unknown): Promise<void> => {
    const agentId = await agentIdOf(arg, services);
    services.store.start();
    AgentPanel.show(agentId, {
      extensionUri: services.context.extensionUri,
      store: services.store,
      connection: services.connection,
      guest: services.guest,
      log: services.log.for('Panel'),
    });
  };
}
