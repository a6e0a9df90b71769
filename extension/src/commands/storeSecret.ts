import * as vscode from 'vscode';
import type { Services } from '../services';
import { secretStorageKey } from '../secrets/profileSecrets';
import { UserCancelled } from './wrapCommand';

/**
 * agentvm.storeSecret: keeps the value of a profile's `{ "vscode": KEY }` secret in VS Code's
 * SecretStorage, to be sent to the broker when delegating with that profile (never into the VM).
 * An empty value forgets the key. Callers that already have both skip the prompts.
 */
export function storeSecret(services: Services) {
  return async (keyArg?: string, valueArg?: string): Promise<void> => {
    const key =
      keyArg ??
      (await vscode.window.showInputBox({
        title: 'agentvm: store a secret for agents',
        prompt: 'The key a profile names in a secret source { "vscode": "<key>" }',
        placeHolder: 'e.g. NPM_TOKEN',
        ignoreFocusOut: true,
        validateInput: (value) => (value.trim() ? undefined : 'Name the key'),
      }));
    if (!key?.trim()) throw new UserCancelled();

    const value =
      valueArg ??
      (await vscode.window.showInputBox({
        title: `agentvm: value of secret "${key.trim()}"`,
        prompt:
          'Sent to the broker when you delegate; the VM only ever sees a placeholder. Empty forgets it.',
        password: true,
        ignoreFocusOut: true,
      }));
    if (value === undefined) throw new UserCancelled();

    const storageKey = secretStorageKey(key.trim());
    if (value === '') {
      await services.context.secrets.delete(storageKey);
      void vscode.window.showInformationMessage(`agentvm: forgot secret "${key.trim()}".`);
      return;
    }

    await services.context.secrets.store(storageKey, value);
    void vscode.window.showInformationMessage(`agentvm: stored secret "${key.trim()}".`);
  };
}
