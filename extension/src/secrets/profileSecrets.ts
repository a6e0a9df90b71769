import type { Profile } from '../../../protocol/api';
import type { SecretSource } from '../../../protocol/policy';

/**
 * Where the extension keeps a profile's `{ vscode: key }` secret in SecretStorage. The prefix keeps
 * profile keys apart from the extension's own entries (broker tokens), so no profile can name one
 * of those and have it sent to the hosts its secret is bound to.
 */
export const secretStorageKey = (key: string) => `agentvm.secret:${key}`;

/** What the extension needs of vscode.SecretStorage. */
export interface SecretStore {
  get(key: string): Thenable<string | undefined>;
  store(key: string, value: string): Thenable<void>;
}

/** The `{ vscode }` keys a profile reads its secrets (and its GitHub token) from, each once. */
export function vscodeSecretKeys(profile: Profile): string[] {
  const sources: SecretSource[] = Object.values(profile.secrets ?? {}).map(
    (secret) => secret.source,
  );
  if (profile.github) sources.push(profile.github.token);
  const keys = sources.flatMap((source) => ('vscode' in source ? [source.vscode] : []));
  return [...new Set(keys)];
}

/**
 * The values to send with a delegation, keyed as the profile names them. A key with nothing
 * stored is asked for (`ask` resolves undefined when the user cancels, which `collect` passes on
 * as undefined) and stored for the next delegation.
 */
export async function collectVscodeSecrets(
  keys: readonly string[],
  store: SecretStore,
  ask: (key: string) => Promise<string | undefined>,
): Promise<Record<string, string> | undefined> {
  const values: Record<string, string> = {};
  for (const key of keys) {
    let value = await store.get(secretStorageKey(key));
    if (!value) {
      value = await ask(key);
      if (!value) return undefined;

      await store.store(secretStorageKey(key), value);
    }
    values[key] = value;
  }

  return values;
}
