import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { MigrationSink } from '../../server/vmm/qemu/MigrationSink';

/**
 * Issue 6, fault 3 without a VM: the snapshot writer on a filesystem that fills up. Regression: the
 * writer closed a descriptor its stream had already closed, and the EBADF thrown from the 'error'
 * handler was uncaught, which ends a broker process.
 */
describe('snapshot writer on a full disk (unit)', () => {
  let dir: string;
  let mounted = false;
  const uncaught: Error[] = [];
  const onUncaught = (error: Error) => uncaught.push(error);
  let mochaHandlers: NodeJS.UncaughtExceptionListener[] = [];

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-full-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'agentvm-full', dir]);
    mounted = true;
  });

  after(() => {
    if (mounted) execFileSync('umount', [dir]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  beforeEach(() => {
    // Catch what would kill a broker instead of letting mocha report it against the next test.
    mochaHandlers = process.listeners('uncaughtException');
    process.removeAllListeners('uncaughtException');
    process.on('uncaughtException', onUncaught);
  });

  afterEach(() => {
    process.removeListener('uncaughtException', onUncaught);
    for (const handler of mochaHandlers) process.on('uncaughtException', handler);
  });

  it('rejects with ENOSPC, remembers why, and throws nothing uncaught', async () => {
    const file = path.join(dir, 'snapshot.state.tmp');
    const sink = await MigrationSink.listen(
      path.join(os.tmpdir(), `agentvm-sink-${process.pid}.sock`),
      file,
    );
    const client = net.connect(sink.socketPath);
    client.on('error', () => undefined);
    const chunk = Buffer.alloc(64 * 1024, 0x5a);
    for (let index = 0; index < 64 && !client.destroyed; index++) {
      client.write(chunk);
    }
    client.end();

    await assert.rejects(sink.written(), /ENOSPC/);
    sink.close();
    // Give the stream's own close (and anything it throws) a chance to run.
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.match(sink.failure?.message ?? '', /ENOSPC/);
    assert.deepEqual(
      uncaught.map((error) => error.message),
      [],
    );
  });
});
