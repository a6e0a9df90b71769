import assert from 'node:assert/strict';
import { redactKnownValues, redactSecrets } from '../../../server/policy/redactSecrets';

describe('redactSecrets (unit)', () => {
  it('replaces known secret values anywhere in nested strings', () => {
    const out = redactSecrets({ message: 'sent s3cr3t-value to host', list: ['x s3cr3t-value'] }, [
      's3cr3t-value',
    ]);

    assert.deepEqual(out, { message: 'sent [redacted] to host', list: ['x [redacted]'] });
  });

  it('blanks values under credential-like keys', () => {
    const out = redactSecrets({
      headers: { Authorization: 'anything', accept: 'json' },
      apiKey: 'k',
    }) as Record<string, any>;

    assert.equal(out.headers.Authorization, '[redacted]');
    assert.equal(out.headers.accept, 'json');
    assert.equal(out.apiKey, '[redacted]');
  });

  it('keeps secret names in the fields that list them, but not values found there', () => {
    const out = redactSecrets(
      {
        secrets: ['NPM_TOKEN', 'GITHUB_TOKEN'],
        injected: ['MODEL_API_KEY'],
        withheld: ['NU2_SECRET'],
        withheldReasons: { NU2_SECRET: 'not over TLS', NPM_TOKEN: 'saw s3cr3t-value here' },
        token: 'still blanked',
      },
      ['s3cr3t-value'],
    );

    assert.deepEqual(out, {
      secrets: ['NPM_TOKEN', 'GITHUB_TOKEN'],
      injected: ['MODEL_API_KEY'],
      withheld: ['NU2_SECRET'],
      withheldReasons: { NU2_SECRET: 'not over TLS', NPM_TOKEN: 'saw [redacted] here' },
      token: '[redacted]',
    });
  });

  it('masks token-shaped strings and placeholders without knowing them', () => {
    const placeholder = 'agentvm-secret-NPM_TOKEN-' + 'a'.repeat(32);
    const text = `ghp_${'A'.repeat(36)} and Bearer abcdefgh12345 and ${placeholder}`;

    const out = redactSecrets(text) as string;

    assert.equal(
      out,
      'ghp_[redacted] and Bearer [redacted] and agentvm-secret-NPM_TOKEN-[redacted]',
    );
  });

  it('passes numbers, booleans and null through unchanged', () => {
    assert.deepEqual(redactSecrets({ n: 1, b: true, z: null }), { n: 1, b: true, z: null });
  });

  it('replaces only known values when asked to, keeping keys, placeholders and token-like text', () => {
    const placeholder = 'agentvm-secret-K-' + 'a'.repeat(32);
    const event = {
      message: `Bearer my-secret-value and ${placeholder}`,
      data: { authorization: 'not known', nested: ['my-secret-value'], n: 3 },
    };

    assert.deepEqual(redactKnownValues(event, ['my-secret-value']), {
      message: `Bearer [redacted] and ${placeholder}`,
      data: { authorization: 'not known', nested: ['[redacted]'], n: 3 },
    });
  });
});
