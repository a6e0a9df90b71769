import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { silentLogger } from '../../../../server/log';
import { QemuDriver } from '../../../../server/vmm/qemu/QemuDriver';
import { isProcessAlive } from '../../../../server/vmm/pidLock';
import { vmPaths } from '../../../../server/vmm/qemu/vmPaths';
import { TemplateManager } from '../../../../server/vmm/templates/TemplateManager';
import { fakeVmProcess } from '../../../helpers/fakeVmProcess';

describe('TemplateManager.removeStale and an interrupted build (unit)', function () {
  this.timeout(30_000);
  let dataDir: string;
  const started: number[] = [];

  beforeEach(() => (dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-stale-'))));
  afterEach(() => {
    for (const pid of started.splice(0)) if (isProcessAlive(pid)) process.kill(pid, 'SIGKILL');
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  /** A pid that belonged to a process that has ended: the broker that was killed. */
  function deadPid(): number {
    return spawnSync(process.execPath, ['-e', '']).pid as number;
  }

  /** The build's QEMU, running from the build directory, its pid written to its pid file. */
  function buildVm(pidFile: string): number {
    const pid = fakeVmProcess(pidFile);
    started.push(pid);
    fs.writeFileSync(pidFile, String(pid));
    return pid;
  }

  it('stops the QEMU of a build whose broker was killed before removing its directory (regression: it ran on, unfindable)', async () => {
    const buildDir = path.join(dataDir, 'templates', `.build-${deadPid()}-0a1b2c3d`);
    fs.mkdirSync(buildDir, { recursive: true });
    const qemu = buildVm(vmPaths(buildDir).pidFile);
    const templates = new TemplateManager({
      dataDir,
      driver: new QemuDriver({ logger: silentLogger }),
      logger: silentLogger,
    });

    const removed = await templates.removeStale('any-image-key');

    assert.deepEqual(removed, [buildDir]);
    assert.equal(fs.existsSync(buildDir), false);
    // SIGKILL is delivered at once, but the process may take a moment to be gone.
    for (let waited = 0; isProcessAlive(qemu) && waited < 5_000; waited += 50) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(isProcessAlive(qemu), false, `pid ${qemu} still runs`);
  });

  it('leaves the build of a live broker alone (regression: the owner pid was read from the suffix, so every build looked abandoned)', async () => {
    const buildDir = path.join(dataDir, 'templates', `.build-${process.ppid}-0a1b2c3d`);
    fs.mkdirSync(buildDir, { recursive: true });
    const qemu = buildVm(vmPaths(buildDir).pidFile);
    const templates = new TemplateManager({
      dataDir,
      driver: new QemuDriver({ logger: silentLogger }),
      logger: silentLogger,
    });

    assert.deepEqual(await templates.removeStale('any-image-key'), []);
    assert.equal(fs.existsSync(buildDir), true);
    assert.equal(isProcessAlive(qemu), true);
  });
});
