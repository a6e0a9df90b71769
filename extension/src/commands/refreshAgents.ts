import type { Services } from '../services';

/** agentvm.refresh: reloads the agent list (and reconnects the event stream if it is down). */
export function refreshAgents(services: Services) {
  return async (): Promise<void> => {
    await services.store.refresh();
  };
}
