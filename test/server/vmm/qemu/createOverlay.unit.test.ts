import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createOverlay } from '../../../../server/vmm/qemu/prepareVmDirectory';
import { vmPaths } from '../../../../server/vmm/qemu/vmPaths';

describe('createOverlay (unit)', () => {
  let dir: string;
  let qemuImg: string;
  let calls: string;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-overlay-'));
    // The real qemu-img, behind a script that counts its runs.
    calls = path.join(dir, 'calls');
    qemuImg = path.join(dir, 'qemu-img');
    fs.writeFileSync(qemuImg, `#!/bin/sh\necho run >> '${calls}'\nexec qemu-img "$@"\n`, {
      mode: 0o755,
    });
  });

  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const runs = () =>
    fs.existsSync(calls) ? fs.readFileSync(calls, 'utf8').split('\n').length - 1 : 0;
  const backingOf = (overlay: string) =>
    JSON.parse(execFileSync('qemu-img', ['info', '--output=json', overlay], { encoding: 'utf8' }));

  function templateDisk(name: string, size: string): string {
    const disk = path.join(dir, name);
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', disk, size]);
    return disk;
  }

  it('runs qemu-img once per backing disk and gives later clones the same bytes', async () => {
    const disk = templateDisk('template.qcow2', '64M');
    const first = vmPaths(path.join(dir, 'vm-1'));
    const second = vmPaths(path.join(dir, 'vm-2'));
    fs.mkdirSync(first.vmDir);
    fs.mkdirSync(second.vmDir);

    await createOverlay(first, disk, 'qcow2', qemuImg);
    await createOverlay(second, disk, 'qcow2', qemuImg);

    assert.equal(runs(), 1);
    assert.deepEqual(fs.readFileSync(second.overlay), fs.readFileSync(first.overlay));
    const info = backingOf(second.overlay);
    assert.equal(info['backing-filename'], disk);
    assert.equal(info['virtual-size'], 64 * 1024 * 1024);
  });

  it('makes a new overlay when the backing disk was rebuilt at the same path', async () => {
    const disk = templateDisk('rebuilt.qcow2', '64M');
    const first = vmPaths(path.join(dir, 'vm-1'));
    const second = vmPaths(path.join(dir, 'vm-2'));
    fs.mkdirSync(first.vmDir);
    fs.mkdirSync(second.vmDir);
    await createOverlay(first, disk, 'qcow2', qemuImg);

    fs.rmSync(disk);
    templateDisk('rebuilt.qcow2', '128M');
    await createOverlay(second, disk, 'qcow2', qemuImg);

    assert.equal(runs(), 2);
    assert.equal(backingOf(second.overlay)['virtual-size'], 128 * 1024 * 1024);
  });

  it('replaces an overlay left in the VM directory by an earlier start', async () => {
    const disk = templateDisk('template.qcow2', '64M');
    const paths = vmPaths(path.join(dir, 'vm-1'));
    fs.mkdirSync(paths.vmDir);
    await createOverlay(paths, disk, 'qcow2', qemuImg);
    const pristine = fs.readFileSync(paths.overlay);
    fs.appendFileSync(paths.overlay, 'written by a guest');

    await createOverlay(paths, disk, 'qcow2', qemuImg);

    assert.deepEqual(fs.readFileSync(paths.overlay), pristine);
  });
});
