import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { packageRoot } from '../../server/config/paths';
import { ChildBroker, freeLoopbackPort } from '../helpers/childBroker';

/** `agentvm serve` run to its end (it is expected to refuse to start). */
function serveOnce(dataDir: string, port: number) {
  const env: NodeJS.ProcessEnv = { ...process.env, AGENTVM_DATA_DIR: dataDir };
  delete env.AGENTVM_URL;
  return spawnSync(
    'node',
    [path.join(packageRoot(), 'dist', 'cli.js'), 'serve', '--port', String(port)],
    {
      env,
      encoding: 'utf8',
      timeout: 60_000,
    },
  );
}

describe('starting a broker next to another one (unit)', function () {
  this.timeout(120_000);
  let broker: ChildBroker;

  beforeEach(async () => {
    broker = new ChildBroker();
    await broker.start();
  });

  afterEach(() => broker.cleanup());

  it('refuses a second broker on the same data directory and leaves the first serving', async () => {
    const second = serveOnce(broker.dataDir, await freeLoopbackPort());

    assert.notEqual(second.status, 0);
    assert.match(second.stderr, /error \[DATA_DIR_IN_USE\]: another agentvm broker \(pid \d+\)/);
    assert.match(second.stderr, /hint: /);
    assert.doesNotMatch(second.stderr, /\n\s+at /, 'no stack trace');
    assert.equal((await broker.client.whoami()).user.length > 0, true, 'the first still answers');
  });

  it('takes the data directory over from a broker that died', async () => {
    await broker.kill('SIGKILL');
    await broker.start();
    assert.equal((await broker.client.whoami()).user.length > 0, true);
  });

  it('names a port that is taken instead of failing with a stack trace', async () => {
    await broker.kill('SIGTERM');
    const blocker = net.createServer();
    const port = await freeLoopbackPort();
    await new Promise<void>((resolve) => blocker.listen(port, '127.0.0.1', resolve));
    try {
      const refused = serveOnce(broker.dataDir, port);
      assert.notEqual(refused.status, 0);
      assert.match(
        refused.stderr,
        new RegExp(`error \\[PORT_IN_USE\\]: 127\\.0\\.0\\.1:${port} is already in use`),
      );
      assert.match(refused.stderr, /hint: .*--port/);
      assert.doesNotMatch(refused.stderr, /\n\s+at /, 'no stack trace');
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });
});
