import type { Services } from '../services';
import { agentIdOf } from './agentIdOf';

/** agentvm.openTerminal: a terminal that runs commands inside the reviewing agent's VM. */
export function openTerminal(services: Services) {
  return async (arg?: unknown): Promise<void> => {
    const agentId = await agentIdOf(arg, services, ['reviewing']);
    const client = await services.connection.getClient();
    services.review.openTerminal(await client.getAgent(agentId));
  };
}
