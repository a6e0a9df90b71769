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
import type { QemuVm } from '../server/vmm/qemu/QemuVm';
import type { GuestImage, Vm, VmSpec } from '../server/vmm/VmmDriver';
import type { GuestTask } from '../protocol/control';
import { benchTask, untilMilestones } from './agentTask';
import { reviewCycles, reviewingTask, type ReviewCycle } from './reviewCycles';
import { describeMs, median, memoryKiB } from './stats';

// Counts are bounded and can be lowered on a slow machine; every VM is stopped in `finally`.
const coldRuns = Number(process.env.BENCH_COLD_RUNS ?? 3);
const cloneRuns = Number(process.env.BENCH_CLONE_RUNS ?? 5);
/** How long a spare QEMU waits before its clone: the broker launches one well before it is used. */
const SPARE_SETTLE_MS = 500;
const snapshotRuns = Number(process.env.BENCH_SNAPSHOT_RUNS ?? 3);
const idleClones = Number(process.env.BENCH_IDLE_CLONES ?? 20);
/** Starting the idle clones stops early (and says so) once this much time has passed. */
const idleBudgetMs = Number(process.env.BENCH_IDLE_BUDGET_MS ?? 180_000);
const memorySizesMiB = [256, 512, 1024];

const out = (line: string) => process.stdout.write(line + '\n');

interface StartFigures {
  vm: Vm;
  /** The guest agent answered `hello`. */
  readyMs: number;
  /** Clock and entropy applied. */
  syncedMs: number;
  /** The agent command started (only when a task was sent). */
  runningMs?: number;
}

/**
 * Start a VM, then do what the broker does: `sync` (and with a task, `task`) right after `ready`;
 * wait for `synced` and the agent command running.
 */
async function started(start: () => Promise<Vm>, task?: GuestTask): Promise<StartFigures> {
  const startedAt = performance.now();
  const vm = await start();
  const readyMs = performance.now() - startedAt;
  const milestones = await untilMilestones(vm, startedAt, task);
  return { vm, readyMs, syncedMs: milestones.synced, runningMs: milestones.running };
}

/** `step median` for every start step the QEMU driver recorded (see QemuVm.startupSteps). */
function describeSteps(vms: Vm[]): string {
  return describeStepRecords(vms.map((vm) => (vm as QemuVm).startupSteps ?? {}));
}

/** `step median` for each step name of the first record. */
function describeStepRecords(all: Record<string, number>[]): string {
  const names = Object.keys(all[0] ?? {});
  return names
    .map((name) => `${name} ${Math.round(median(all.map((steps) => steps[name] ?? NaN)))}`)
    .join(', ');
}

async function main(): Promise<void> {
  const image: GuestImage = await ensureImage({
    dataDir: process.env.AGENTVM_IMAGE_DATA_DIR ?? defaultDataDir(),
  });
  const demo = new ProfileRegistry().get('demo');
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-bench-'));
  const driver = new QemuDriver({ logger: silentLogger });
  const templates = new TemplateManager({ dataDir: root, driver, logger: silentLogger });
  const live = new Set<Vm>();
  // Nothing listens on the egress socket: the bench's guests never reach out.
  const egress = {
    guestAddress: GUEST_PROXY_ADDRESS,
    guestPort: GUEST_PROXY_PORT,
    socketPath: path.join(root, 'no-egress.sock'),
  };
  let serial = 0;
  const spec = (memoryMiB: number): VmSpec => {
    serial++;
    return {
      id: `bench-${serial}`,
      vmDir: path.join(root, 'agents', `bench-${serial}`),
      image,
      memoryMiB,
      vcpus: demo.vcpus,
      bootTimeoutMs: 180_000,
      egress,
    };
  };
  const task = await benchTask(root);
  const track = async (start: () => Promise<Vm>, withTask = false) => {
    const result = await started(start, withTask ? task : undefined);
    live.add(result.vm);
    return result;
  };
  const stop = async (vm: Vm) => {
    await vm.stop();
    live.delete(vm);
  };

  out(
    `agentvm bench: demo profile (${demo.memoryMiB} MiB, ${demo.vcpus} vCPU), accel ${detectAccelerator().accel}, ${os.cpus().length} × ${os.cpus()[0]?.model}, ${Math.round(os.totalmem() / 2 ** 30)} GiB RAM`,
  );
  try {
    // 1. Cold boot vs template clone, to the guest agent ready, synced and the agent command running.
    const cold = [] as StartFigures[];
    for (let run = 0; run < coldRuns; run++) {
      const result = await track(() => driver.boot(spec(demo.memoryMiB)), true);
      cold.push(result);
      await stop(result.vm);
    }

    const shape = { image, memoryMiB: demo.memoryMiB, vcpus: demo.vcpus, egress: true };
    const buildStartedAt = performance.now();
    const template = await templates.ensure(shape);
    const buildMs = performance.now() - buildStartedAt;
    const clones = [] as StartFigures[];
    for (let run = 0; run < cloneRuns; run++) {
      const result = await track(() => driver.clone!(spec(demo.memoryMiB), template), true);
      clones.push(result);
      await stop(result.vm);
    }
    // The same clones with their QEMU launched ahead, as the broker does for the next agent of a
    // template (a spare, server/vmm/qemu/SpareQemus.ts): the template is still restored on demand.
    const spareClones = [] as StartFigures[];
    for (let run = 0; run < cloneRuns; run++) {
      const cloneSpec = spec(demo.memoryMiB);
      if (!(await driver.prepareSpare(cloneSpec, template))) throw new Error('no spare QEMU');
      await new Promise((resolve) => setTimeout(resolve, SPARE_SETTLE_MS));
      const result = await track(() => driver.clone!(cloneSpec, template), true);
      spareClones.push(result);
      await stop(result.vm);
    }

    const figures = (runs: StartFigures[]) =>
      `ready ${describeMs(runs.map((r) => r.readyMs))}; synced ${describeMs(runs.map((r) => r.syncedMs))}; command running ${describeMs(runs.map((r) => r.runningMs ?? NaN))}`;
    out('');
    out('start to agent ready (hello answered), clock and entropy applied, agent command running');
    out(`  cold boot          ${figures(cold)}`);
    out(`  template clone     ${figures(clones)}`);
    out(`  clone steps (median ms since start): ${describeSteps(clones.map((r) => r.vm))}`);
    out(`  clone, QEMU launched ahead (spare): ${figures(spareClones)}`);
    out(`  its steps (median ms since start): ${describeSteps(spareClones.map((r) => r.vm))}`);
    for (const endpoint of ['readyMs', 'syncedMs', 'runningMs'] as const) {
      const coldMedian = median(cold.map((r) => r[endpoint] ?? NaN));
      const ratio = coldMedian / median(clones.map((r) => r[endpoint] ?? NaN));
      const spareRatio = coldMedian / median(spareClones.map((r) => r[endpoint] ?? NaN));
      out(
        `  ratio (medians, ${endpoint.replace('Ms', '')})  ${ratio.toFixed(1)}× faster from the template, ${spareRatio.toFixed(1)}× with a spare QEMU`,
      );
    }
    out(`  template build took ${Math.round(buildMs)} ms once`);

    // 2. Pause for review (snapshot) and resume (restore) against guest memory size.
    out('');
    out(
      'pause for review (snapshot: stop, save, end QEMU) and resume (restore until clock and entropy applied): cold-booted guests, then a template clone',
    );
    /** Snapshot and restore one guest `snapshotRuns` times in a row and print the figures. */
    const pauseAndResume = async (label: string, vmSpec: VmSpec, first: Vm) => {
      let vm = first;
      const snapshots: number[] = [];
      const restores: number[] = [];
      const sizes: number[] = [];
      const pauseSteps: Record<string, number>[] = [];
      const restoredVms: Vm[] = [];
      for (let run = 0; run < snapshotRuns; run++) {
        const startedAt = performance.now();
        const info = await vm.snapshot();
        snapshots.push(performance.now() - startedAt);
        pauseSteps.push({ ...(vm as QemuVm).snapshotSteps });
        sizes.push(info.sizeBytes);
        live.delete(vm);
        const restored = await track(() => driver.restore(vmSpec, info));
        restoredVms.push(restored.vm);
        restores.push(restored.syncedMs);
        vm = restored.vm;
      }
      await stop(vm);
      const megabytes = (median(sizes) / 2 ** 20).toFixed(0);
      out(
        `  ${label}  snapshot ${describeMs(snapshots)}, ${megabytes} MiB stream; resume ${describeMs(restores)}`,
      );
      out(`            pause steps (median ms since start): ${describeStepRecords(pauseSteps)}`);
      out(`            resume steps (median ms since start): ${describeSteps(restoredVms)}`);
    };
    for (const memoryMiB of memorySizesMiB) {
      const vmSpec = spec(memoryMiB);
      const booted = (await track(() => driver.boot(vmSpec))).vm;
      await pauseAndResume(`${String(memoryMiB).padStart(4)} MiB`, vmSpec, booted);
    }
    // Agents run in a template clone and pause where they ask for review: the snapshot is taken on
    // the `review` event, while `agentctl review` blocks in the guest. The first snapshot saves RAM
    // that was a private mapping of the template file; restored, it is ordinary anonymous memory.
    const cloneSpec = spec(demo.memoryMiB);
    const clone = await driver.clone!(cloneSpec, template);
    live.add(clone);
    const cycles = await reviewCycles(
      driver,
      cloneSpec,
      clone,
      reviewingTask(task, snapshotRuns),
      snapshotRuns,
      (next, previous) => {
        live.delete(previous);
        if (next) live.add(next);
      },
    );
    await stop(cycles[cycles.length - 1]!.vm);
    const each = (pick: (cycle: ReviewCycle) => number) =>
      cycles.map((cycle) => Math.round(pick(cycle))).join(' / ');
    const stateKiB = (median(cycles.map((c) => c.stateBytes)) / 1024).toFixed(0);
    const memoryBytes = median(cycles.map((c) => c.memoryBytes));
    // A clone's snapshot carries only the pages that differ from its template, inside the state.
    const ram =
      memoryBytes > 0
        ? `${(memoryBytes / 2 ** 20).toFixed(0)} MiB of RAM pages apart`
        : 'RAM: only the pages changed since the template, inside the state';
    out(
      `  ${demo.memoryMiB} MiB clone, paused by agentctl review, ${cycles.length} cycles (ms, in order): pause ${each((c) => c.pauseMs)} (${stateKiB} KiB state; ${ram}); resume to synced ${each((c) => c.syncedMs)}; to the agent running again after the answer ${each((c) => c.runningAgainMs)}`,
    );
    out(
      `            resume medians: synced ${describeMs(cycles.map((c) => c.syncedMs))}; agent running again ${describeMs(cycles.map((c) => c.runningAgainMs))}`,
    );

    // 3. Resident memory of idle clones.
    const idle: Vm[] = [];
    const idleStartedAt = performance.now();
    while (idle.length < idleClones && performance.now() - idleStartedAt < idleBudgetMs) {
      idle.push((await track(() => driver.clone!(spec(demo.memoryMiB), template))).vm);
    }
    if (idle.length === 0) return;

    await new Promise((resolve) => setTimeout(resolve, 5_000));
    const usage = idle.map((vm) => memoryKiB(vm.pid));
    const rssMiB = usage.reduce((sum, u) => sum + u.rssKiB, 0) / 1024;
    const pssMiB = usage.reduce((sum, u) => sum + u.pssKiB, 0) / 1024;
    const budgetMiB = idle.length * demo.memoryMiB;
    out('');
    const cut =
      idle.length < idleClones
        ? ` (of ${idleClones} asked; the ${idleBudgetMs} ms budget ran out)`
        : '';
    out(
      `${idle.length} idle clones${cut} of the ${demo.memoryMiB} MiB template (5 s after the last start)`,
    );
    out(
      `  RSS total ${Math.round(rssMiB)} MiB (${Math.round(rssMiB / idle.length)} per clone), PSS total ${Math.round(pssMiB)} MiB; N × guest size ${budgetMiB} MiB → PSS is ${((100 * pssMiB) / budgetMiB).toFixed(0)}%`,
    );
    for (const vm of idle) await stop(vm);
  } finally {
    await driver.close();
    for (const vm of live) await vm.stop().catch(() => undefined);
    await templates.close();
    fs.rmSync(root, { recursive: true, force: true });
  }
}

main().catch((error: Error) => {
  process.stderr.write(`bench failed: ${error.stack ?? error.message}\n`);
  process.exitCode = 1;
});
