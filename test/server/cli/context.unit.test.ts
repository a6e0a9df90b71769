import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { AgentvmError } from '../../../protocol/errors';
import {
  action,
  brokerTarget,
  brokerUnreachableHint,
  brokerUrl,
  defaultBrokerUrl,
  parseWholeNumber,
} from '../../../server/cli/context';
import { exitCodeFor } from '../../../server/cli/exitCodes';
import { startImagelessBroker, type ImagelessBroker } from '../../helpers/imagelessBroker';
import { runCli } from './runCli';

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

  it('takes 127.0.0.1 on AGENTVM_PORT when AGENTVM_URL and --url are unset, as `agentvm serve` listens (regression: AGENTVM_PORT=7979 agentvm ls went to 7878)', () => {
    assert.equal(brokerUrl({}, { AGENTVM_PORT: '7979' }), 'http://127.0.0.1:7979');
    assert.equal(
      brokerUrl({}, { AGENTVM_PORT: '7979', AGENTVM_URL: 'http://127.0.0.1:9000' }),
      'http://127.0.0.1:9000',
    );
    assert.equal(
      brokerUrl({ url: 'http://127.0.0.1:9001' }, { AGENTVM_PORT: '7979' }),
      'http://127.0.0.1:9001',
    );
    assert.equal(brokerUrl({}, { AGENTVM_PORT: '' }), defaultBrokerUrl);
  });

  it('refuses an AGENTVM_PORT that is not a port as bad input, naming it', () => {
    for (const bad of ['x', '0', '70000', '79.5']) {
      const error = thrown(() => brokerUrl({}, { AGENTVM_PORT: bad }));
      assert.equal(error.code, 'VALIDATION_FAILED');
      assert.match(error.message, new RegExp(`^AGENTVM_PORT "${bad.replace('.', '\\.')}"`));
      assert.match(error.hint, /AGENTVM_PORT=7878/);
    }
  });

  it('says in the BROKER_UNREACHABLE hint which address it tried, what chose it and the serve command for it', () => {
    assert.equal(
      brokerUnreachableHint(brokerTarget({}, { AGENTVM_PORT: '7979' })),
      'Nothing answered at http://127.0.0.1:7979 (from AGENTVM_PORT): start a broker there with `agentvm serve --port 7979`, or point the CLI at a running broker with --url or AGENTVM_URL.',
    );
    assert.match(
      brokerUnreachableHint(brokerTarget({}, {})),
      /^Nothing answered at http:\/\/127\.0\.0\.1:7878 \(the default; .*\): start a broker there with `agentvm serve`,/,
    );
    assert.match(
      brokerUnreachableHint(brokerTarget({ url: 'http://[::1]:9000/' }, {})),
      /\(from --url\): start a broker there with `agentvm serve --host ::1 --port 9000`/,
    );
    assert.match(
      brokerUnreachableHint(brokerTarget({}, { AGENTVM_URL: 'https://broker.test/agentvm' })),
      /^Nothing answered at https:\/\/broker\.test\/agentvm \(from AGENTVM_URL\): check that a broker runs there/,
    );
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

describe('agentvm with no broker on AGENTVM_PORT (unit)', () => {
  it('asks 127.0.0.1 on AGENTVM_PORT and says how to start a broker there (regression: it asked 7878)', async () => {
    const port = await closedPort();

    const run = await runCli(['ls'], {
      AGENTVM_PORT: String(port),
      AGENTVM_URL: undefined,
      AGENTVM_TOKEN: 'avm_unused',
    });

    assert.equal(run.exitCode, 4, run.stderr);
    assert.match(
      run.stderr,
      new RegExp(`^error \\[BROKER_UNREACHABLE\\]: broker at http://127\\.0\\.0\\.1:${port} `, 'm'),
    );
    assert.match(
      run.stderr,
      new RegExp(
        `^ {2}hint: Nothing answered at http://127\\.0\\.0\\.1:${port} \\(from AGENTVM_PORT\\): start a broker there with \`agentvm serve --port ${port}\``,
        'm',
      ),
    );
  });
});

describe('agentvm with a broker that hangs up mid-request (unit)', () => {
  let server: net.Server;
  let port: number;
  /** Whether the server resets the connections it accepts, or has stopped listening. */
  let listening: boolean;

  beforeEach(async () => {
    // Accepts the connection, reads the request and resets it: a broker dying as it handles it.
    server = net.createServer((socket) => {
      socket.on('error', () => undefined);
      socket.once('data', () => socket.resetAndDestroy());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as net.AddressInfo).port;
    listening = true;
  });

  afterEach(async () => {
    if (listening) await new Promise((resolve) => server.close(resolve));
  });

  const run = (args: string[]) =>
    runCli(args, {
      AGENTVM_PORT: String(port),
      AGENTVM_URL: undefined,
      AGENTVM_TOKEN: 'avm_unused',
    });

  it('says the broker closed the connection and the request may have taken effect, not that nothing answered (regression: "Nothing answered at URL")', async () => {
    const cancel = await run(['cancel', 'a1']);

    assert.equal(cancel.exitCode, 7, cancel.stderr);
    assert.equal(
      cancel.stderr.split('\n')[0],
      `error [BROKER_CONNECTION_LOST]: the broker at http://127.0.0.1:${port} closed the connection before answering POST /v1/agents/a1/cancel (ECONNRESET), so it may or may not have acted on it`,
    );
    assert.match(
      cancel.stderr,
      new RegExp(
        `^ {2}hint: The broker at http://127\\.0\\.0\\.1:${port} may have stopped or crashed while it handled the request\\. Once a broker answers there \\(\`agentvm serve --port ${port}\` starts it again\\), see with \`agentvm ls\` whether a change took effect before you run the command again`,
        'm',
      ),
    );
    assert.doesNotMatch(cancel.stderr, /Nothing answered/);
  });

  it('still says nothing answered once nothing listens there', async () => {
    await new Promise((resolve) => server.close(resolve));
    listening = false;

    const listed = await run(['ls']);

    assert.equal(listed.exitCode, 4, listed.stderr);
    assert.match(
      listed.stderr,
      /^error \[BROKER_UNREACHABLE\]: broker at .* refused the connection/m,
    );
    assert.match(listed.stderr, /^ {2}hint: Nothing answered at /m);
  });

  it('gives the error as one line of JSON with --json', async () => {
    const listed = await run(['ls', '--json']);

    assert.equal(listed.exitCode, 7, listed.stderr);
    const body = JSON.parse(listed.stderr) as { error: { code: string; hint: string } };
    assert.equal(body.error.code, 'BROKER_CONNECTION_LOST');
    assert.match(body.error.hint, /see with `agentvm ls` whether a change took effect/);
  });
});

/** A loopback port nothing listens on (it was free a moment ago). */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('agentvm with a token its broker does not know (unit)', function () {
  this.timeout(30_000);
  let harness: ImagelessBroker;
  let otherDataDir: string;

  before(async () => {
    harness = await startImagelessBroker();
    otherDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-otherdata-'));
    fs.writeFileSync(path.join(otherDataDir, 'token'), 'avm_of_another_broker\n');
  });

  after(async () => {
    await harness?.stop();
    if (otherDataDir) fs.rmSync(otherDataDir, { recursive: true, force: true });
  });

  it('names the token file it read and says to give the broker its data directory (regression: a broker started with --data-dir X, then `agentvm ls` without it, read the default token and the hint named neither)', async () => {
    const run = await runCli(['ls'], {
      AGENTVM_URL: harness.url,
      AGENTVM_PORT: undefined,
      AGENTVM_TOKEN: undefined,
      AGENTVM_DATA_DIR: otherDataDir,
    });

    assert.equal(run.exitCode, 6, run.stderr);
    assert.match(run.stderr, /^error \[UNAUTHORIZED\]: /m);
    const hint = /^ {2}hint: (.*)$/m.exec(run.stderr)?.[1] ?? '';
    assert.ok(hint.includes(path.join(otherDataDir, 'token')), hint);
    assert.ok(hint.includes(harness.url), hint);
    assert.match(hint, /--data-dir DIR or AGENTVM_DATA_DIR/);
  });

  it('says to give the data directory of a running broker when there is no token file to read', async () => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-notoken-'));
    try {
      const run = await runCli(['ls'], {
        AGENTVM_URL: harness.url,
        AGENTVM_PORT: undefined,
        AGENTVM_TOKEN: undefined,
        AGENTVM_DATA_DIR: empty,
      });

      assert.equal(run.exitCode, 6, run.stderr);
      assert.match(run.stderr, /^error \[UNAUTHORIZED\]: no broker token: /m);
      assert.match(run.stderr, /^ {2}hint: .*--data-dir DIR or AGENTVM_DATA_DIR/m);
    } finally {
      fs.rmSync(empty, { recursive: true, force: true });
    }
  });

  it('says the token came from AGENTVM_TOKEN when it did', async () => {
    const run = await runCli(['ls'], {
      AGENTVM_URL: harness.url,
      AGENTVM_PORT: undefined,
      AGENTVM_TOKEN: 'avm_stale',
      AGENTVM_DATA_DIR: harness.dataDir,
    });

    assert.equal(run.exitCode, 6, run.stderr);
    const hint = /^ {2}hint: (.*)$/m.exec(run.stderr)?.[1] ?? '';
    assert.match(hint, /AGENTVM_TOKEN/);
    assert.match(hint, /unset it/);
  });
});
