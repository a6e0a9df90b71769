import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { silentLogger } from '../../../../server/log';
import { QemuDriver } from '../../../../server/vmm/qemu/QemuDriver';
import { isProcessAlive } from '../../../../server/vmm/pidLock';
import { vmPaths } from '../../../../server/vmm/qemu/vmPaths';

describe('QemuDriver.stopLeftover (unit)', function () {
  this.timeout(30_000);
  let dir: string;
  const started: number[] = [];

  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-leftover-'))));
  afterEach(() => {
    for (const pid of started.splice(0)) if (isProcessAlive(pid)) process.kill(pid, 'SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** A long-running process whose command line names `pidFile`, as a QEMU of that VM does. */
  function fakeVmProcess(pidFile: string): number {
    const child = spawn(
      process.execPath,
      ['-e', 'setTimeout(() => {}, 60_000)', '--', '-pidfile', pidFile],
      { stdio: 'ignore', detached: true },
    );
    child.unref();
    started.push(child.pid as number);
    return child.pid as number;
  }

  it('ends the process that runs for the VM directory, and only that one', async () => {
    const vmDir = path.join(dir, 'agent');
    const paths = vmPaths(vmDir);
    fs.mkdirSync(vmDir);
    const leftover = fakeVmProcess(paths.pidFile);
    fs.writeFileSync(paths.pidFile, String(leftover));
    // A live process whose command line does not name this pid file is not this VM's.
    const stranger = fakeVmProcess(path.join(dir, 'other', 'qemu.pid'));
    const strangerDir = path.join(dir, 'stranger');
    fs.mkdirSync(strangerDir);
    fs.writeFileSync(vmPaths(strangerDir).pidFile, String(stranger));

    const driver = new QemuDriver({ logger: silentLogger });
    assert.equal(await driver.stopLeftover(strangerDir), false);
    assert.equal(isProcessAlive(stranger), true);
    assert.equal(await driver.stopLeftover(vmDir), true);
    assert.equal(isProcessAlive(leftover), false);
    assert.equal(await driver.stopLeftover(vmDir), false, 'nothing is left the second time');
  });
});
