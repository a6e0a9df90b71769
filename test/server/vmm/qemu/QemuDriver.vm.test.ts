import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { AgentvmError } from '../../../../protocol/errors';
import { consoleTail } from '../../../../server/vmm/qemu/consoleTail';
import { QemuDriver } from '../../../../server/vmm/qemu/QemuDriver';
import { isProcessAlive } from '../../../../server/vmm/pidLock';
import type { QemuVm } from '../../../../server/vmm/qemu/QemuVm';
import { checksumFile } from '../../../../server/vmm/qemu/stateChecksum';
import { vmPaths } from '../../../../server/vmm/qemu/vmPaths';
import type { GuestImage } from '../../../../server/vmm/VmmDriver';
import { buildTestGuest } from '../../../helpers/testGuest';
import { qemuPidsFor, testGuestSpec } from '../../../helpers/testGuestVm';

const execFileAsync = promisify(execFile);

/** What the test guest answers to any request: state that lives only in guest memory. */
interface GuestState {
  token: string;
  hellos: number;
}

describe('QemuDriver (vm)', function () {
  this.timeout(180_000);

  const env = { ...process.env, AGENTVM_ACCEL: 'tcg' };
  const figures: Record<string, number> = {};
  let root: string;
  let answering: GuestImage;
  let silent: GuestImage;
  let vms: QemuVm[] = [];
  let dirs: string[] = [];

  const newDir = (name: string) => {
    const dir = path.join(root, name);
    dirs.push(dir);
    return dir;
  };
  const track = (vm: QemuVm) => {
    vms.push(vm);
    return vm;
  };

  before(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-qemu-'));
    answering = buildTestGuest('answering');
    silent = buildTestGuest('silent');
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed') {
      for (const dir of dirs) {
        console.error(`VM dir: ${dir}\n${consoleTail(path.join(dir, 'console.log')).join('\n')}`);
      }
    }

    await Promise.all(vms.map((vm) => vm.stop()));
    for (const dir of dirs) for (const pid of qemuPidsFor(dir)) process.kill(pid, 'SIGKILL');
    vms = [];
    dirs = [];
  });

  after(() => {
    fs.rmSync(root, { recursive: true, force: true });
    console.log(`      figures: ${JSON.stringify(figures)}`);
  });

  it('boots to ready over the control channel, with sockets moved out of a long VM dir', async () => {
    const vmDir = newDir(`boot-${'x'.repeat(120)}`);
    const vm = track(await new QemuDriver({ env }).boot(testGuestSpec(vmDir, answering)));
    figures.bootToReadyMs = vm.startupMs;

    assert.equal(vm.accel, 'tcg');
    assert.equal(vm.ready.version, 'testguest');
    assert.ok(vm.ready.uptimeMs > 0);
    assert.notEqual(vmPaths(vmDir).socketDir, vmDir);
    const state = (await vm.channel.request({ op: 'changes' })) as GuestState;
    assert.match(state.token, /^[0-9a-f]{16}$/);

    await vm.stop();
    const exit = await vm.exited;
    assert.equal(isProcessAlive(vm.pid), false);
    assert.ok(exit.consoleTail.some((line) => line.includes('testguest: control port')));
    assert.equal(fs.existsSync(vmPaths(vmDir).socketDir), false);
  });

  it('pauses the vCPUs so the guest answers only after resume', async () => {
    const vm = track(await new QemuDriver({ env }).boot(testGuestSpec(newDir('pause'), answering)));

    await vm.pause();
    let answered = false;
    const request = vm.channel.request({ op: 'changes' }, 30_000).then((result) => {
      answered = true;
      return result;
    });
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    assert.equal(answered, false, 'a paused guest answered');

    await vm.resume();
    assert.ok(((await request) as GuestState).token);
  });

  it('snapshots into a checksummed file, ends QEMU, and restores the guest memory', async () => {
    const vmDir = newDir('snapshot');
    const spec = testGuestSpec(vmDir, answering);
    const driver = new QemuDriver({ env });
    const vm = track(await driver.boot(spec));
    const before = (await vm.channel.request({ op: 'changes' })) as GuestState;

    const snapshot = await vm.snapshot();
    figures.snapshotBytes = snapshot.sizeBytes;
    figures.snapshotMs = snapshot.durationMs;

    await vm.exited;
    assert.equal(isProcessAlive(vm.pid), false);
    assert.deepEqual(qemuPidsFor(vmDir), []);
    assert.equal(snapshot.statePath, path.join(vmDir, 'snapshot.state'));
    assert.equal(fs.statSync(snapshot.statePath).size, snapshot.sizeBytes);
    assert.equal(await checksumFile(snapshot.statePath), snapshot.checksum);
    assert.equal(fs.existsSync(`${snapshot.statePath}.tmp`), false);

    const restored = track(await driver.restore({ ...spec, lastSeq: 0 }, snapshot));
    figures.restoreToReadyMs = restored.startupMs;
    const after = (await restored.channel.request({ op: 'changes' })) as GuestState;

    assert.equal(after.token, before.token, 'the guest memory did not come back');
    assert.ok(after.hellos > before.hellos, 'the hello counter did not continue');
    assert.ok(restored.ready.uptimeMs >= vm.ready.uptimeMs, 'the guest uptime went backwards');
    assert.ok(
      consoleTail(path.join(vmDir, 'console.log'), 100).some((line) =>
        line.includes('modules loaded'),
      ),
    );
  });

  it('reports SNAPSHOT_FAILED when the snapshot misses its deadline, leaving the VM paused and alive', async () => {
    const vmDir = newDir('snapshot-fails');
    const driver = new QemuDriver({ env, migrationTimeoutMs: 1 });
    const vm = track(await driver.boot(testGuestSpec(vmDir, answering)));

    await assert.rejects(vm.snapshot(), (error: AgentvmError) => {
      assert.equal(error.code, 'SNAPSHOT_FAILED');
      return true;
    });

    assert.ok(isProcessAlive(vm.pid));
    assert.equal(fs.existsSync(path.join(vmDir, 'snapshot.state.tmp')), false);
    assert.equal(fs.existsSync(path.join(vmDir, 'snapshot.state')), false);
    await vm.resume();
    assert.ok(((await vm.channel.request({ op: 'changes' })) as GuestState).token);
  });

  it('refuses a truncated snapshot with SNAPSHOT_CORRUPT and starts no QEMU', async () => {
    const vmDir = newDir('corrupt');
    const spec = testGuestSpec(vmDir, answering);
    const driver = new QemuDriver({ env });
    const snapshot = await track(await driver.boot(spec)).snapshot();

    fs.truncateSync(snapshot.statePath, Math.floor(snapshot.sizeBytes / 2));

    await assert.rejects(driver.restore(spec, snapshot), (error: AgentvmError) => {
      assert.equal(error.code, 'SNAPSHOT_CORRUPT');
      return true;
    });
    assert.deepEqual(qemuPidsFor(vmDir), []);
  });

  it('fails with VM_BOOT_TIMEOUT and the console lines when the guest never answers, leaving no QEMU', async () => {
    const vmDir = newDir('silent');
    const driver = new QemuDriver({ env });

    await assert.rejects(
      driver.boot(testGuestSpec(vmDir, silent, 15_000)),
      (error: AgentvmError) => {
        assert.equal(error.code, 'VM_BOOT_TIMEOUT');
        assert.match(error.message, /testguest: silent mode, never answering/);
        return true;
      },
    );
    assert.deepEqual(qemuPidsFor(vmDir), []);
  });

  it('gives up a boot waiting for ready as soon as its signal is aborted, leaving no QEMU', async () => {
    const vmDir = newDir('cancelled');
    const abort = new AbortController();
    const reason = new Error('the broker is stopping');
    const booting = new QemuDriver({ env }).boot(testGuestSpec(vmDir, silent, 120_000), {
      signal: abort.signal,
    });
    booting.catch(() => undefined);
    const paths = vmPaths(vmDir);
    // The guest never answers: wait (bounded) until QEMU runs and its control socket exists.
    for (let attempt = 0; attempt < 1_500; attempt++) {
      if (qemuPidsFor(vmDir).length > 0 && fs.existsSync(paths.controlSocket)) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.equal(qemuPidsFor(vmDir).length, 1, 'QEMU was started');

    const abortedAt = performance.now();
    abort.abort(reason);

    await assert.rejects(booting, (error: Error) => error === reason);
    figures.cancelledBootSettleMs = Math.round(performance.now() - abortedAt);
    assert.deepEqual(qemuPidsFor(vmDir), []);
    assert.equal(fs.existsSync(paths.qmpSocket), false, 'its sockets were removed');
  });

  it('fails with VM_FAILED and QEMU output when QEMU exits during boot', async () => {
    const vmDir = newDir('no-kernel');
    const image = { ...answering, kernelPath: path.join(root, 'missing-vmlinuz') };

    await assert.rejects(
      new QemuDriver({ env }).boot(testGuestSpec(vmDir, image)),
      (error: AgentvmError) => {
        assert.equal(error.code, 'VM_FAILED');
        assert.match(error.message, /missing-vmlinuz/);
        return true;
      },
    );
    assert.deepEqual(qemuPidsFor(vmDir), []);
  });

  it('attaches from a second broker to a VM that outlived the broker that booted it', async () => {
    const vmDir = newDir('attach');
    const spec = testGuestSpec(vmDir, answering);
    const helper = path.join(__dirname, '../../../helpers/testGuestBoot.ts');
    const { stdout } = await execFileAsync(
      process.execPath,
      ['--require', 'tsx/cjs', helper, JSON.stringify(spec)],
      {
        env,
        timeout: 120_000,
      },
    );
    const { pid } = JSON.parse(stdout) as { pid: number };
    assert.ok(isProcessAlive(pid), 'QEMU died with the broker that started it');

    const driver = new QemuDriver({ env });
    await assert.rejects(
      driver.attach(spec, process.pid),
      (error: AgentvmError) => error.code === 'VM_FAILED',
    );
    const vm = track(await driver.attach(spec, pid));
    assert.equal(vm.pid, pid);
    assert.equal(vm.accel, 'tcg');
    assert.ok(((await vm.channel.request({ op: 'changes' })) as GuestState).token);
    await assert.rejects(
      driver.boot(spec),
      (error: AgentvmError) => error.code === 'INVALID_STATE',
    );

    await vm.stop();
    await vm.exited;
    assert.equal(isProcessAlive(pid), false);
  });
});
