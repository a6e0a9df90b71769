import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DataDirLock } from '../../../server/config/dataDirLock';

describe('DataDirLock (unit)', () => {
  let dataDir: string;
  let parent: ReturnType<typeof spawn> | undefined;

  beforeEach(() => (dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-lock-'))));
  afterEach(() => {
    parent?.kill('SIGKILL');
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  /**
   * The pid of a zombie: a process that has exited but that its parent has not reaped yet, as a
   * broker killed by SIGKILL is until the shell or harness that started it notices.
   */
  async function zombiePid(): Promise<number> {
    // sh starts a child, then becomes `sleep`, which never reaps it. The child exits only after
    // that exec: one that exited before it could be reaped by sh (the test then read no /proc).
    parent = spawn('sh', ['-c', 'sh -c "sleep 0.5" & echo $!; exec sleep 30'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const pid = await new Promise<number>((resolve) =>
      parent!.stdout!.once('data', (chunk: Buffer) => resolve(Number(String(chunk).trim()))),
    );
    for (let waited = 0; waited < 5_000; waited += 20) {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) return pid;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    throw new Error(`pid ${pid} did not become a zombie`);
  }

  it('takes the directory over from a broker that was killed and not yet reaped (regression: DATA_DIR_IN_USE for ≈2 s after a SIGKILL)', async () => {
    fs.writeFileSync(path.join(dataDir, 'broker.pid'), String(await zombiePid()));

    const lock = DataDirLock.acquire(dataDir);

    assert.equal(fs.readFileSync(path.join(dataDir, 'broker.pid'), 'utf8'), String(process.pid));
    lock.release();
  });

  it('refuses while the owner is alive', () => {
    const owner = spawn('sleep', ['30'], { stdio: 'ignore' });
    parent = owner;
    fs.writeFileSync(path.join(dataDir, 'broker.pid'), String(owner.pid));

    assert.throws(() => DataDirLock.acquire(dataDir), /DATA_DIR_IN_USE|another agentvm broker/);
  });
});
