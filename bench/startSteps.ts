import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { dataDir as defaultDataDir } from '../server/config/paths';
import { silentLogger } from '../server/log';
import { GUEST_PROXY_ADDRESS, GUEST_PROXY_PORT } from '../server/policy/egress/guestEgress';
import { ProfileRegistry } from '../server/profiles/ProfileRegistry';
import { ensureImage } from '../server/vmm/image/ensureImage';
import { QemuDriver } from '../server/vmm/qemu/QemuDriver';
import type { QemuVm } from '../server/vmm/qemu/QemuVm';
import { TemplateManager } from '../server/vmm/templates/TemplateManager';
import type { VmSpec } from '../server/vmm/VmmDriver';
import { benchTask, untilMilestones } from './agentTask';

// Where the time of one template clone and one review restore goes, step by step. The template is
// kept in BENCH_TEMPLATE_DIR (when set) so repeated runs skip its build.
const runs = Number(process.env.BENCH_STEP_RUNS ?? 3);
/** How long a spare QEMU waits before its clone: the broker launches one well before it is used. */
const SPARE_SETTLE_MS = 500;
const out = (line: string) => process.stdout.write(line + '\n');

async function main(): Promise<void> {
  const image = await ensureImage({
    dataDir: process.env.AGENTVM_IMAGE_DATA_DIR ?? defaultDataDir(),
  });
  const demo = new ProfileRegistry().get('demo');
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-steps-'));
  const templateRoot = process.env.BENCH_TEMPLATE_DIR ?? root;
  const driver = new QemuDriver({
    logger: silentLogger,
    helloIntervalMs: Number(process.env.BENCH_HELLO_MS ?? 300),
  });
  const templates = new TemplateManager({ dataDir: templateRoot, driver, logger: silentLogger });
  // Nothing listens on the egress socket: the bench's guests never reach out.
  const egress = {
    guestAddress: GUEST_PROXY_ADDRESS,
    guestPort: GUEST_PROXY_PORT,
    socketPath: path.join(root, 'no-egress.sock'),
  };
  const task = await benchTask(root);
  const live = new Set<QemuVm>();
  try {
    const template = await templates.ensure({
      image,
      memoryMiB: demo.memoryMiB,
      vcpus: demo.vcpus,
      egress: true,
    });
    for (let run = 0; run < runs; run++) {
      const spec: VmSpec = {
        id: `steps-${run}`,
        vmDir: path.join(root, `vm-${run}`),
        image,
        memoryMiB: demo.memoryMiB,
        vcpus: demo.vcpus,
        bootTimeoutMs: 60_000,
        egress,
      };
      let startedAt = performance.now();
      let vm = (await driver.clone(spec, template)) as QemuVm;
      live.add(vm);
      const echoAt = performance.now();
      await vm.channel.handshake(0, 10_000);
      const secondHelloMs = Math.round(performance.now() - echoAt);
      const cloned = { secondHelloMs, ...(await untilMilestones(vm, startedAt, task)) };
      out(`clone   ${JSON.stringify({ ...vm.startupSteps, ...cloned })}`);

      const snapshot = await vm.snapshot();
      out(`pause   ${JSON.stringify({ snapshotMs: snapshot.durationMs, ...vm.snapshotSteps })}`);
      live.delete(vm);
      startedAt = performance.now();
      vm = (await driver.restore(spec, snapshot)) as QemuVm;
      live.add(vm);
      const restored = await untilMilestones(vm, startedAt);
      out(
        `restore ${JSON.stringify({ snapshotMs: snapshot.durationMs, ...vm.startupSteps, ...restored })}`,
      );
      await vm.stop();
      live.delete(vm);

      // The same clone once more, its QEMU launched ahead (a spare, as the broker keeps one).
      const spareSpec = {
        ...spec,
        id: `steps-spare-${run}`,
        vmDir: path.join(root, `spare-${run}`),
      };
      if (!(await driver.prepareSpare(spareSpec, template))) throw new Error('no spare QEMU');
      await new Promise((resolve) => setTimeout(resolve, SPARE_SETTLE_MS));
      startedAt = performance.now();
      vm = (await driver.clone(spareSpec, template)) as QemuVm;
      live.add(vm);
      const fromSpare = await untilMilestones(vm, startedAt, task);
      out(`spare   ${JSON.stringify({ ...vm.startupSteps, ...fromSpare })}`);
      await vm.stop();
      live.delete(vm);
    }
  } finally {
    await driver.close();
    for (const vm of live) await vm.stop().catch(() => undefined);
    await templates.close();
    fs.rmSync(root, { recursive: true, force: true });
  }
}

main().catch((error: Error) => {
  process.stderr.write(`startSteps failed: ${error.stack ?? error.message}\n`);
  process.exitCode = 1;
});
