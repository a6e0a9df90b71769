import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { silentLogger } from '../../../../server/log';
import { QemuDriver } from '../../../../server/vmm/qemu/QemuDriver';
import { isProcessAlive } from '../../../../server/vmm/pidLock';
import { vmPaths } from '../../../../server/vmm/qemu/vmPaths';
import { fakeVmProcess } from '../../../helpers/fakeVmProcess';

describe('QemuDriver.stopLeftover (unit)', function () {
  this.timeout(30_000);
  let dir: string;
  const started: number[] = [];

  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-leftover-'))));
  afterEach(() => {
    for (const pid of started.splice(0)) if (isProcessAlive(pid)) process.kill(pid, 'SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  function startVmProcess(pidFile: string): number {
    const pid = fakeVmProcess(pidFile);
    started.push(pid);
    return pid;
  }

  it('ends the process that runs for the VM directory, and only that one', async () => {
    const vmDir = path.join(dir, 'agent');
    const paths = vmPaths(vmDir);
    fs.mkdirSync(vmDir);
    const leftover = startVmProcess(paths.pidFile);
    fs.writeFileSync(paths.pidFile, String(leftover));
    // A live process whose command line does not name this pid file is not this VM's.
    const stranger = startVmProcess(path.join(dir, 'other', 'qemu.pid'));
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
