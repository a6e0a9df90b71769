import * as vscode from 'vscode';
import type { Services } from '../services';
import { UserCancelled } from './wrapCommand';

/** agentvm.signIn: asks for the broker token and keeps it in SecretStorage. */
export function signIn(services: Services) {
  return async (tokenArg?: string): Promise<void> => {
    const token =
      tokenArg ??
      (await vscode.window.showInputBox({
        title: `Sign in to the agentvm broker at ${services.connection.url}`,
        prompt: 'Paste the token printed by `agentvm serve` (or from its token file).',
        password: true,
        ignoreFocusOut: true,
      }));
    if (!token) throw new UserCancelled();

    await services.connection.signIn(token.trim());
    const client = await services.connection.getClient();
    const me = await client.whoami();
    void vscode.window.showInformationMessage(`Signed in to agentvm as ${me.user}.`);
  };
}
