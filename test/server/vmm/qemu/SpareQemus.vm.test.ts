import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { silentLogger } from '../../../../server/log';
import { isProcessAlive } from '../../../../server/vmm/pidLock';
import { QemuDriver } from '../../../../server/vmm/qemu/QemuDriver';
import type { QemuVm } from '../../../../server/vmm/qemu/QemuVm';
import { vmPaths } from '../../../../server/vmm/qemu/vmPaths';
import { TemplateManager } from '../../../../server/vmm/templates/TemplateManager';
import type { VmSpec, VmTemplate } from '../../../../server/vmm/VmmDriver';
import { qemuPidsFor } from '../../../helpers/testGuestVm';
import { sharedImage } from '../../../helpers/vmBroker';

/** The guest answers a `sync` with `synced`: it runs, with its control channel working. */
function synced(vm: QemuVm): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no synced within 60 s')), 60_000);
    const subscription = vm.channel.onMessage((message) => {
      if (message.type !== 'synced') return;

      clearTimeout(timer);
      subscription.dispose();
      resolve();
    });
    vm.channel.send({
      type: 'sync',
      timeMs: Date.now(),
      entropy: randomBytes(32).toString('base64'),
    });
  });
}

function pidIn(vmDir: string): number {
  return Number(fs.readFileSync(vmPaths(vmDir).pidFile, 'utf8').trim());
}

describe('spare QEMUs: a clone launched ahead (vm)', function () {
  this.timeout(10 * 60_000);
  let root: string;
  let driver: QemuDriver;
  let templates: TemplateManager;
  let template: VmTemplate;
  let spec: (name: string) => VmSpec;
  const vms: QemuVm[] = [];

  before(async function () {
    this.timeout(20 * 60_000);
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-spares-'));
    const image = await sharedImage();
    driver = new QemuDriver({
      logger: silentLogger,
      env: { ...process.env, AGENTVM_ACCEL: 'tcg' },
    });
    templates = new TemplateManager({ dataDir: root, driver, logger: silentLogger });
    template = await templates.ensure({ image, memoryMiB: 256, vcpus: 1, egress: true });
    spec = (name) => ({
      id: name,
      vmDir: path.join(root, 'vms', name),
      image,
      memoryMiB: 256,
      vcpus: 1,
      bootTimeoutMs: 120_000,
      egress: {
        guestAddress: '10.0.2.100',
        guestPort: 3128,
        socketPath: path.join(root, 'vms', name, 'egress.sock'),
      },
    });
  });

  afterEach(async () => {
    await driver.close();
    await Promise.all(vms.splice(0).map((vm) => vm.stop()));
  });

  after(async () => {
    const vmsDir = path.join(root, 'vms');
    for (const name of fs.existsSync(vmsDir) ? fs.readdirSync(vmsDir) : []) {
      for (const pid of qemuPidsFor(path.join(vmsDir, name))) process.kill(pid, 'SIGKILL');
    }
    await templates.close();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('launches QEMU paused and waiting, and the clone in that directory takes it and runs the guest', async () => {
    const vmSpec = spec('taken');
    assert.equal(await driver.prepareSpare(vmSpec, template), true);
    assert.equal(driver.hasSpare(vmSpec.vmDir), true);
    const sparePid = pidIn(vmSpec.vmDir);
    assert.equal(isProcessAlive(sparePid), true);

    const vm = (await driver.clone(vmSpec, template)) as QemuVm;
    vms.push(vm);
    assert.equal(vm.startedFromSpare, true);
    assert.equal(vm.pid, sparePid, 'the spare QEMU became the VM');
    assert.equal(vm.startupSteps.spawned, undefined, 'no QEMU was launched by the clone');
    assert.equal(driver.hasSpare(vmSpec.vmDir), false);
    await synced(vm);

    // It pauses and resumes like any clone: the spare left nothing different behind.
    const snapshot = await vm.snapshot();
    vms.splice(vms.indexOf(vm), 1);
    const restored = (await driver.restore(vmSpec, snapshot)) as QemuVm;
    vms.push(restored);
    await synced(restored);
  });

  it('ends a spare whose command line is not the clone’s, and clones as usual', async () => {
    const vmSpec = spec('other-relay');
    await driver.prepareSpare(vmSpec, template);
    const sparePid = pidIn(vmSpec.vmDir);

    const otherRelay = {
      ...vmSpec,
      egress: { ...vmSpec.egress!, socketPath: '/tmp/elsewhere.sock' },
    };
    const vm = (await driver.clone(otherRelay, template)) as QemuVm;
    vms.push(vm);
    assert.equal(vm.startedFromSpare, false);
    assert.notEqual(vm.pid, sparePid);
    assert.equal(isProcessAlive(sparePid), false, 'the unfit spare was ended');
    await synced(vm);
  });

  it('ends a spare on stopLeftover, on discardSpare and on close, leaving no QEMU', async () => {
    const [a, b, c] = [spec('left-over'), spec('discarded'), spec('closed')];
    for (const vmSpec of [a, b, c]) assert.equal(await driver.prepareSpare(vmSpec, template), true);
    const pids = [a, b, c].map((vmSpec) => pidIn(vmSpec.vmDir));

    assert.equal(await driver.stopLeftover(a.vmDir), true);
    assert.equal(await driver.discardSpare(b.vmDir), true);
    assert.equal(await driver.discardSpare(b.vmDir), false, 'discarded once');
    await driver.close();

    for (const pid of pids) assert.equal(isProcessAlive(pid), false);
    for (const vmSpec of [a, b, c]) {
      assert.deepEqual(qemuPidsFor(vmSpec.vmDir), []);
      assert.equal(fs.existsSync(vmPaths(vmSpec.vmDir).qmpSocket), false);
    }
  });

  it('prepares no second spare in a directory that has one', async () => {
    const vmSpec = spec('twice');
    assert.equal(await driver.prepareSpare(vmSpec, template), true);
    assert.equal(await driver.prepareSpare(vmSpec, template), false);
    assert.equal(qemuPidsFor(vmSpec.vmDir).length, 1);
  });
});
