import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { guestEnvironment, resolveSecrets } from '../../../../server/policy/secrets/SecretBindings';

describe('SecretBindings (unit)', () => {
  let dir: string;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-secrets-'));
  });

  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('reads values from the environment, files and values the extension provided', () => {
    fs.writeFileSync(path.join(dir, 'npm.txt'), 'npm-real-value\n');
    const bindings = resolveSecrets(
      {
        API_KEY: { source: { env: 'HOST_API_KEY' }, hosts: ['api.example.com'] },
        NPM_TOKEN: { source: { file: 'npm.txt' }, hosts: ['registry.npmjs.org'] },
        VS: { source: { vscode: 'agentvm.key' }, hosts: ['x.example.com'], guestEnv: 'VS_KEY' },
      },
      {
        env: { HOST_API_KEY: 'env-real-value' },
        baseDir: dir,
        provided: { 'agentvm.key': 'vs-real-value' },
      },
    );

    assert.deepEqual(
      bindings.map((binding) => binding.value),
      ['env-real-value', 'npm-real-value', 'vs-real-value'],
    );
    assert.deepEqual(Object.keys(guestEnvironment(bindings)), ['API_KEY', 'NPM_TOKEN', 'VS_KEY']);
  });

  it('gives the guest a placeholder that does not contain the value', () => {
    const [binding] = resolveSecrets(
      { K: { source: { env: 'V' }, hosts: ['a.example'] } },
      { env: { V: 'value-123456' } },
    );

    assert.match(binding.placeholder, /^agentvm-secret-K-[0-9a-f]{32}$/);
    assert.equal(guestEnvironment([binding]).K, binding.placeholder);
    assert.ok(!binding.placeholder.includes('value-123456'));
  });

  it('binds a secret to the Authorization header over TLS unless the profile says otherwise', () => {
    const [plain, named] = resolveSecrets(
      {
        A: { source: { env: 'V' }, hosts: ['a.example'] },
        B: {
          source: { env: 'V' },
          hosts: ['b.example'],
          headers: ['X-Api-Key', 'Cookie'],
          allowPlainHttp: true,
        },
      },
      { env: { V: 'value-123456' } },
    );

    assert.deepEqual([plain.headers, plain.allowPlainHttp], [['authorization'], false]);
    assert.deepEqual([named.headers, named.allowPlainHttp], [['x-api-key', 'cookie'], true]);
  });

  it('names the missing source but not any value when a secret cannot be read', () => {
    assert.throws(
      () =>
        resolveSecrets(
          { K: { source: { env: 'NOT_SET_ANYWHERE' }, hosts: ['a.example'] } },
          { env: {} },
        ),
      /secret K: environment variable NOT_SET_ANYWHERE is missing/,
    );
  });
});
