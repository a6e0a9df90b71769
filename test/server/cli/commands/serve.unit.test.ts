import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { AgentvmError } from '../../../../protocol/errors';
import { checkListenAddress, guestImageWarning } from '../../../../server/cli/commands/serve';
import { exitCodeFor } from '../../../../server/cli/exitCodes';
import { runCli } from '../runCli';

describe('agentvm serve checks (unit)', () => {
  it('refuses --host 999.1.1.1 as bad input (exit 2) instead of a getaddrinfo stack', async () => {
    await assert.rejects(checkListenAddress('999.1.1.1'), (error: unknown) => {
      assert.ok(error instanceof AgentvmError);
      assert.equal(error.code, 'VALIDATION_FAILED');
      assert.equal(exitCodeFor(error.code), 2);
      assert.match(error.message, /--host "999\.1\.1\.1"/);
      assert.match(error.hint, /127\.0\.0\.1/);
      return true;
    });
  });

  it('refuses a host name that does not resolve', async () => {
    await assert.rejects(checkListenAddress('no-such-host.invalid'), /no such host name/);
  });

  it('accepts loopback', async () => {
    await checkListenAddress('127.0.0.1');
  });

  it('warns that delegations fail with IMAGE_MISSING until `agentvm image build` runs', () => {
    const warning = guestImageWarning(() => {
      throw new AgentvmError('IMAGE_MISSING', 'No guest image has been built in /d/images.');
    });
    assert.equal(
      warning,
      'warning: No guest image has been built in /d/images: delegations will fail with IMAGE_MISSING until `agentvm image build` runs',
    );
    assert.equal(
      guestImageWarning(() => ({})),
      undefined,
    );
  });
});

describe('agentvm serve with a bad AGENTVM_PORT (unit)', () => {
  it('names AGENTVM_PORT, not --port, when the bad port came from there, and writes nothing (regression: AGENTVM_PORT=abc agentvm serve said --port "abc")', async () => {
    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-serve-envport-'));
    const dataDir = path.join(scratch, 'data');
    try {
      const run = await runCli(['serve'], { AGENTVM_DATA_DIR: dataDir, AGENTVM_PORT: 'abc' });

      assert.equal(run.exitCode, 2, run.stderr);
      assert.match(
        run.stderr,
        /^error \[VALIDATION_FAILED\]: AGENTVM_PORT must be a whole number/m,
      );
      assert.match(run.stderr, /^ {2}hint: .*AGENTVM_PORT=7878.*--port/m);
      assert.equal(fs.existsSync(dataDir), false);
    } finally {
      fs.rmSync(scratch, { recursive: true, force: true });
    }
  });
});

describe('agentvm serve on a port that is taken (unit)', function () {
  this.timeout(20_000);
  let blocker: net.Server;
  let port: number;
  let scratch: string;

  beforeEach(async () => {
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-serve-port-'));
    blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    port = (blocker.address() as net.AddressInfo).port;
  });

  afterEach(async () => {
    await new Promise((resolve) => blocker.close(resolve));
    fs.rmSync(scratch, { recursive: true, force: true });
  });

  /** Every entry under `dir` with its mode, size and modification time. */
  function listing(dir: string): string[] {
    return fs
      .readdirSync(dir, { recursive: true, encoding: 'utf8' })
      .sort()
      .map((name) => {
        const stat = fs.statSync(path.join(dir, name));
        return `${name} ${stat.mode.toString(8)} ${stat.size} ${stat.mtimeMs}`;
      });
  }

  function assertPortInUse(run: { exitCode: number; stdout: string; stderr: string }): void {
    assert.equal(run.exitCode, 1, run.stderr);
    assert.equal(run.stdout, '');
    assert.equal(
      run.stderr.split('\n')[0],
      `error [PORT_IN_USE]: 127.0.0.1:${port} is already in use`,
    );
    assert.match(run.stderr, /^ {2}hint: .*--port N.*AGENTVM_PORT=N/m);
    assert.equal(run.stderr.trimEnd().split('\n').length, 2, 'one error, one hint');
  }

  it('fails with PORT_IN_USE and creates no data directory (regression: broker.db, token and broker.pid were written first)', async () => {
    const dataDir = path.join(scratch, 'new-data-dir');

    const run = await runCli(['serve', '--port', String(port)], { AGENTVM_DATA_DIR: dataDir });

    if (fs.existsSync(dataDir)) assert.fail(`${dataDir} was created: ${fs.readdirSync(dataDir)}`);
    assertPortInUse(run);
  });

  it('leaves an existing data directory as it was, its mode included, with the port from AGENTVM_PORT', async () => {
    const dataDir = path.join(scratch, 'data');
    fs.mkdirSync(path.join(dataDir, 'images'), { recursive: true, mode: 0o755 });
    fs.chmodSync(dataDir, 0o755);
    fs.writeFileSync(path.join(dataDir, 'images', 'note.txt'), 'kept');
    const before = listing(dataDir);
    const modeBefore = fs.statSync(dataDir).mode;

    const run = await runCli(['serve'], { AGENTVM_DATA_DIR: dataDir, AGENTVM_PORT: String(port) });

    assert.deepEqual(listing(dataDir), before);
    assert.equal(fs.statSync(dataDir).mode, modeBefore);
    assertPortInUse(run);
  });
});
