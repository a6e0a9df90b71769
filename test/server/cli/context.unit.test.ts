import assert from 'node:assert/strict';
import { AgentvmError } from '../../../protocol/errors';
import { action, brokerUrl, defaultBrokerUrl, parseWholeNumber } from '../../../server/cli/context';
import { exitCodeFor } from '../../../server/cli/exitCodes';

function thrown(run: () => unknown): AgentvmError {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof AgentvmError, String(error));
    return error;
  }
  assert.fail('expected an error');
}

describe('CLI options (unit)', () => {
  it('refuses --url notaurl as bad input (exit 2), not as an unreachable broker', () => {
    const error = thrown(() => brokerUrl({ url: 'notaurl' }, {}));
    assert.equal(error.code, 'VALIDATION_FAILED');
    assert.equal(exitCodeFor(error.code), 2);
    assert.match(error.message, /--url "notaurl"/);
    assert.match(error.hint, /http:\/\//);
  });

  it('names AGENTVM_URL when the bad URL comes from there', () => {
    const error = thrown(() => brokerUrl({}, { AGENTVM_URL: 'localhost:7878' }));
    assert.match(error.message, /AGENTVM_URL "localhost:7878"/);
  });

  it('takes http(s) URLs from --url, AGENTVM_URL or the default', () => {
    assert.equal(brokerUrl({ url: 'http://10.0.0.2:9000' }, {}), 'http://10.0.0.2:9000');
    assert.equal(brokerUrl({}, { AGENTVM_URL: 'https://broker.test' }), 'https://broker.test');
    assert.equal(brokerUrl({}, {}), defaultBrokerUrl);
  });

  it('names the option of a bad number (audit --limit x says --limit)', () => {
    const error = thrown(() => parseWholeNumber('x', '--limit', { min: 1, example: 100 }));
    assert.equal(error.code, 'VALIDATION_FAILED');
    assert.match(error.message, /^--limit must be a whole number/);
    assert.doesNotMatch(error.message, /query parameter/);
    for (const bad of ['', '1.5', '-3', '0', '1e3']) {
      assert.throws(() => parseWholeNumber(bad, '--limit', { min: 1, example: 100 }));
    }
    assert.equal(parseWholeNumber('25', '--limit', { min: 1, example: 100 }), 25);
    assert.throws(() => parseWholeNumber('70000', '--port', { min: 0, max: 65535, example: 1 }));
  });

  it('maps BAD_USAGE to exit 2', () => {
    assert.equal(exitCodeFor('BAD_USAGE'), 2);
  });
});

describe('CLI action errors (unit)', () => {
  let stderr: string;
  const write = process.stderr.write.bind(process.stderr);

  beforeEach(() => {
    stderr = '';
    process.stderr.write = ((chunk: string) => {
      stderr += chunk;
      return true;
    }) as typeof process.stderr.write;
  });

  afterEach(() => {
    process.stderr.write = write;
    process.exitCode = undefined;
  });

  it('reports a full disk met by a command that writes the store itself as DISK_FULL, not INTERNAL', async () => {
    await action(async () => {
      throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
    })();

    process.stderr.write = write;
    assert.match(stderr, /^error \[DISK_FULL\]: the broker cannot write .*broker\.db/m);
    assert.match(stderr, /hint: Free space/);
    assert.doesNotMatch(stderr, /INTERNAL|at /);
    assert.equal(process.exitCode, 1);
  });
});
