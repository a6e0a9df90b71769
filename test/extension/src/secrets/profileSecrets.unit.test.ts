import assert from 'node:assert/strict';
import { profileSchema } from '../../../../protocol/api';
import {
  collectVscodeSecrets,
  secretStorageKey,
  vscodeSecretKeys,
  type SecretStore,
} from '../../../../extension/src/secrets/profileSecrets';

const profile = (extra: Record<string, unknown>) =>
  profileSchema.parse({ name: 'p', command: 'true', ...extra });

/** SecretStorage in memory, recording what was stored. */
function memoryStore(
  initial: Record<string, string> = {},
): SecretStore & { entries: Map<string, string> } {
  const entries = new Map(Object.entries(initial));
  return {
    entries,
    get: async (key) => entries.get(key),
    store: async (key, value) => void entries.set(key, value),
  };
}

describe('profile secrets from VS Code (unit)', () => {
  it('lists each { vscode } key of the secrets and the GitHub token once, and no other source', () => {
    const keys = vscodeSecretKeys(
      profile({
        secrets: {
          NPM: { source: { vscode: 'npm' }, hosts: ['registry.example'] },
          AGAIN: { source: { vscode: 'npm' }, hosts: ['mirror.example'] },
          FROM_ENV: { source: { env: 'SOME_VAR' }, hosts: ['x.example'] },
          FROM_FILE: { source: { file: 'token.txt' }, hosts: ['y.example'] },
        },
        github: { scopes: ['issues:read'], token: { vscode: 'gh' } },
      }),
    );
    assert.deepEqual(keys, ['npm', 'gh']);
    assert.deepEqual(vscodeSecretKeys(profile({})), []);
  });

  it('sends stored values, asks for missing ones and keeps them for the next time', async () => {
    const store = memoryStore({ [secretStorageKey('npm')]: 'stored-npm' });
    const asked: string[] = [];
    const values = await collectVscodeSecrets(['npm', 'gh'], store, async (key) => {
      asked.push(key);
      return `typed-${key}`;
    });

    assert.deepEqual(values, { npm: 'stored-npm', gh: 'typed-gh' });
    assert.deepEqual(asked, ['gh']);
    assert.equal(store.entries.get(secretStorageKey('gh')), 'typed-gh');
  });

  it('gives nothing when the user cancels a prompt, and stores nothing for it', async () => {
    const store = memoryStore();
    const values = await collectVscodeSecrets(['gh'], store, async () => undefined);
    assert.equal(values, undefined);
    assert.equal(store.entries.size, 0);
  });

  it("keeps profile keys apart from the extension's own entries", () => {
    assert.notEqual(
      secretStorageKey('agentvm.token:http://127.0.0.1:7878'),
      'agentvm.token:http://127.0.0.1:7878',
    );
    assert.match(secretStorageKey('npm'), /^agentvm\.secret:/);
  });
});
