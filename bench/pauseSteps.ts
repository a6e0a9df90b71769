import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { dataDir as defaultDataDir } from '../server/config/paths';
import { silentLogger } from '../server/log';
import { GUEST_PROXY_ADDRESS, GUEST_PROXY_PORT } from '../server/policy/egress/guestEgress';
import { ensureImage } from '../server/vmm/image/ensureImage';
import { QemuDriver } from '../server/vmm/qemu/QemuDriver';
import type { QemuVm } from '../server/vmm/qemu/QemuVm';
import type { VmSpec } from '../server/vmm/VmmDriver';
import { untilMilestones } from './agentTask';

// Where the time of a pause for review and of the resume after it goes, step by step: one guest
// of BENCH_PAUSE_MIB MiB (512 by default) is cold-booted once, then paused and resumed
// BENCH_PAUSE_RUNS times (3 by default).
const runs = Number(process.env.BENCH_PAUSE_RUNS ?? 3);
const memoryMiB = Number(process.env.BENCH_PAUSE_MIB ?? 512);
const out = (line: string) => process.stdout.write(line + '\n');

async function main(): Promise<void> {
  const image = await ensureImage({
    dataDir: process.env.AGENTVM_IMAGE_DATA_DIR ?? defaultDataDir(),
  });
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-pause-'));
  const driver = new QemuDriver({ logger: silentLogger });
  // Nothing listens on the egress socket: the bench's guests never reach out.
  const egress = {
    guestAddress: GUEST_PROXY_ADDRESS,
    guestPort: GUEST_PROXY_PORT,
    socketPath: path.join(root, 'no-egress.sock'),
  };
  const spec: VmSpec = {
    id: 'pause-steps',
    vmDir: path.join(root, 'vm'),
    image,
    memoryMiB,
    vcpus: 1,
    bootTimeoutMs: 120_000,
    egress,
  };
  let vm: QemuVm | undefined;
  try {
    vm = await driver.boot(spec);
    await untilMilestones(vm, performance.now());
    for (let run = 0; run < runs; run++) {
      const pausedAt = performance.now();
      const snapshot = await vm.snapshot();
      const pauseMs = Math.round(performance.now() - pausedAt);
      const streamMiB = Math.round(snapshot.sizeBytes / 2 ** 20);
      out(`pause   ${JSON.stringify({ pauseMs, streamMiB, ...vm.snapshotSteps })}`);
      vm = undefined;

      const startedAt = performance.now();
      vm = await driver.restore(spec, snapshot);
      const restored = await untilMilestones(vm, startedAt);
      out(`resume  ${JSON.stringify({ ...vm.startupSteps, ...restored })}`);
    }
  } finally {
    await vm?.stop().catch(() => undefined);
    fs.rmSync(root, { recursive: true, force: true });
  }
}

main().catch((error: Error) => {
  process.stderr.write(`pauseSteps failed: ${error.stack ?? error.message}\n`);
  process.exitCode = 1;
});
