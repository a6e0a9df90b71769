import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { dataDir as defaultDataDir } from '../server/config/paths';
import { silentLogger } from '../server/log';
import { GUEST_PROXY_ADDRESS, GUEST_PROXY_PORT } from '../server/policy/egress/guestEgress';
import { ProfileRegistry } from '../server/profiles/ProfileRegistry';
import { detectAccelerator } from '../server/vmm/accelerator';
import { ensureImage } from '../server/vmm/image/ensureImage';
import { QemuDriver } from '../server/vmm/qemu/QemuDriver';
import { TemplateManager } from '../server/vmm/templates/TemplateManager';
import type { GuestImage, Vm, VmSpec } from '../server/vmm/VmmDriver';
import { describeMs, median, memoryKiB } from './stats';

// Counts are bounded and can be lowered on a slow machine; every VM is stopped in `finally`.
const coldRuns = Number(process.env.BENCH_COLD_RUNS ?? 3);
const cloneRuns = Number(process.env.BENCH_CLONE_RUNS ?? 5);
const snapshotRuns = Number(process.env.BENCH_SNAPSHOT_RUNS ?? 3);
const idleClones = Number(process.env.BENCH_IDLE_CLONES ?? 8);
const memorySizesMiB = [256, 512, 1024];

const out = (line: string) => process.stdout.write(line + '\n');

/** Until the guest agent answered `hello` (`ready`) and applied a `sync` (`synced`). */
async function untilSynced(start: () => Promise<Vm>): Promise<{ vm: Vm; readyMs: number; syncedMs: number }> {
  const startedAt = performance.now();
  const vm = await start();
  const readyMs = performance.now() - startedAt;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no `synced` within 30 s')), 30_000);
    const subscription = vm.channel.onMessage((message) => {
      if (message.type !== 'synced') return;

      clearTimeout(timer);
      subscription.dispose();
      resolve();
    });
    vm.channel.send({ type: 'sync', timeMs: Date.now(), entropy: randomBytes(64).toString('base64') });
  });
  return { vm, readyMs, syncedMs: performance.now() - startedAt };
}

async function main(): Promise<void> {
  const image: GuestImage = await ensureImage({ dataDir: process.env.AGENTVM_IMAGE_DATA_DIR ?? defaultDataDir() });
  const demo = new ProfileRegistry().get('demo');
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-bench-'));
  const driver = new QemuDriver({ logger: silentLogger });
  const templates = new TemplateManager({ dataDir: root, driver, logger: silentLogger });
  const live = new Set<Vm>();
  const egress = { guestAddress: GUEST_PROXY_ADDRESS, guestPort: GUEST_PROXY_PORT, hostPort: 9 };
  let serial = 0;
  const spec = (memoryMiB: number): VmSpec => {
    serial++;
    return { id: `bench-${serial}`, vmDir: path.join(root, 'agents', `bench-${serial}`), image, memoryMiB, vcpus: demo.vcpus, bootTimeoutMs: 180_000, egress };
  };
  const track = async (start: () => Promise<Vm>) => {
    const result = await untilSynced(start);
    live.add(result.vm);
    return result;
  };
  const stop = async (vm: Vm) => {
    await vm.stop();
    live.delete(vm);
  };

  out(`agentvm bench: demo profile (${demo.memoryMiB} MiB, ${demo.vcpus} vCPU), accel ${detectAccelerator().accel}, ${os.cpus().length} × ${os.cpus()[0]?.model}, ${Math.round(os.totalmem() / 2 ** 30)} GiB RAM`);
  try {
    // 1. Cold boot vs template clone, to the guest agent ready and synced.
    const cold = [] as Array<{ readyMs: number; syncedMs: number }>;
    for (let run = 0; run < coldRuns; run++) {
      const result = await track(() => driver.boot(spec(demo.memoryMiB)));
      cold.push(result);
      await stop(result.vm);
    }

    const shape = { image, memoryMiB: demo.memoryMiB, vcpus: demo.vcpus, egress: true };
    const buildStartedAt = performance.now();
    const template = await templates.ensure(shape);
    const buildMs = performance.now() - buildStartedAt;
    const clones = [] as Array<{ readyMs: number; syncedMs: number }>;
    for (let run = 0; run < cloneRuns; run++) {
      const result = await track(() => driver.clone!(spec(demo.memoryMiB), template));
      clones.push(result);
      await stop(result.vm);
    }

    out('');
    out('start to agent ready (hello answered, then clock and entropy applied)');
    out(`  cold boot          ready ${describeMs(cold.map((r) => r.readyMs))}; synced ${describeMs(cold.map((r) => r.syncedMs))}`);
    out(`  template clone     ready ${describeMs(clones.map((r) => r.readyMs))}; synced ${describeMs(clones.map((r) => r.syncedMs))}`);
    const ratio = median(cold.map((r) => r.syncedMs)) / median(clones.map((r) => r.syncedMs));
    out(`  ratio (medians, synced)  ${ratio.toFixed(1)}× faster from the template; template build took ${Math.round(buildMs)} ms once`);

    // 2. Pause for review (snapshot) and resume (restore) against guest memory size.
    out('');
    out('pause for review (snapshot: stop, save, end QEMU) and resume (restore to ready + synced), cold-booted guests');
    for (const memoryMiB of memorySizesMiB) {
      const vmSpec = spec(memoryMiB);
      let vm = (await track(() => driver.boot(vmSpec))).vm;
      const snapshots: number[] = [];
      const restores: number[] = [];
      const sizes: number[] = [];
      for (let run = 0; run < snapshotRuns; run++) {
        const startedAt = performance.now();
        const info = await vm.snapshot();
        snapshots.push(performance.now() - startedAt);
        sizes.push(info.sizeBytes);
        live.delete(vm);
        const restored = await track(() => driver.restore(vmSpec, info));
        restores.push(restored.syncedMs);
        vm = restored.vm;
      }
      await stop(vm);
      const megabytes = (median(sizes) / 2 ** 20).toFixed(0);
      out(`  ${String(memoryMiB).padStart(4)} MiB  snapshot ${describeMs(snapshots)}, ${megabytes} MiB stream; resume ${describeMs(restores)}`);
    }

    // 3. Resident memory of idle clones.
    const idle: Vm[] = [];
    for (let index = 0; index < idleClones; index++) {
      idle.push((await track(() => driver.clone!(spec(demo.memoryMiB), template))).vm);
    }
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    const usage = idle.map((vm) => memoryKiB(vm.pid));
    const rssMiB = usage.reduce((sum, u) => sum + u.rssKiB, 0) / 1024;
    const pssMiB = usage.reduce((sum, u) => sum + u.pssKiB, 0) / 1024;
    const budgetMiB = idleClones * demo.memoryMiB;
    out('');
    out(`${idleClones} idle clones of the ${demo.memoryMiB} MiB template (5 s after start)`);
    out(`  RSS total ${Math.round(rssMiB)} MiB (${Math.round(rssMiB / idleClones)} per clone), PSS total ${Math.round(pssMiB)} MiB; N × guest size ${budgetMiB} MiB → PSS is ${((100 * pssMiB) / budgetMiB).toFixed(0)}%`);
    for (const vm of idle) await stop(vm);
  } finally {
    for (const vm of live) await vm.stop().catch(() => undefined);
    await templates.close();
    fs.rmSync(root, { recursive: true, force: true });
  }
}

main().catch((error: Error) => {
  process.stderr.write(`bench failed: ${error.stack ?? error.message}\n`);
  process.exitCode = 1;
});
