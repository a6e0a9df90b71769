import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  guestEnvironment,
  resolveSecrets,
  substituteSecrets,
} from '../../../../server/policy/secrets/SecretBindings';

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

  it('swaps the placeholder only for a bound host and reports it withheld elsewhere', () => {
    const [binding] = resolveSecrets(
      { K: { source: { env: 'V' }, hosts: ['api.example.com'] } },
      { env: { V: 'the-real-value' } },
    );
    const headers = { authorization: `Bearer ${binding.placeholder}`, 'x-other': 'plain' };

    const bound = substituteSecrets(headers, 'api.example.com', 443, [binding]);
    const unbound = substituteSecrets(headers, 'evil.example.net', 443, [binding]);

    assert.equal(bound.headers.authorization, 'Bearer the-real-value');
    assert.deepEqual(bound.injected, ['K']);
    assert.equal(unbound.headers.authorization, `Bearer ${binding.placeholder}`);
    assert.deepEqual(unbound.withheld, ['K']);
  });

  it('swaps a placeholder inside Basic credentials, as git sends them', () => {
    const [binding] = resolveSecrets(
      { K: { source: { env: 'V' }, hosts: ['git.example.com'] } },
      { env: { V: 'pat-value' } },
    );
    const basic =
      'Basic ' + Buffer.from(`x-access-token:${binding.placeholder}`).toString('base64');

    const { headers } = substituteSecrets({ authorization: basic }, 'git.example.com', 443, [
      binding,
    ]);
    const decoded = Buffer.from(String(headers.authorization).slice(6), 'base64').toString();

    assert.equal(decoded, 'x-access-token:pat-value');
  });
});
