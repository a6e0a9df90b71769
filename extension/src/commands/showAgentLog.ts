import * as vscode from 'vscode';
import type { Services } from '../services';
import { agentIdOf } from './agentIdOf';

/** agentvm.showAgentLog: opens the agent's timeline and serial console log as a document. */
export function showAgentLog(services: Services) {
  return async (arg?: unknown): Promise<void> => {
    const agentId = await agentIdOf(arg, services);
    const client = await services.connection.getClient();
    const [events, console] = await Promise.all([
      client.events(agentId),
      client
        .consoleLog(agentId)
        .catch((error: Error) => `(console log unavailable: ${error.message})`),
    ]);
    const timeline = events
      .map(
        (event) => `${new Date(event.at).toISOString()} ${event.kind.padEnd(8)} ${event.message}`,
      )
      .join('\n');
    const content = `# agent ${agentId}: timeline\n${timeline}\n\n# serial console\n${console}`;
    const document = await vscode.workspace.openTextDocument({ content, language: 'log' });
    await vscode.window.showTextDocument(document, { preview: false });
  };
}
