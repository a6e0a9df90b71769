import fs from 'node:fs';
import path from 'node:path';
import type { GuestImage, VmSpec } from '../../server/vmm/VmmDriver';
import { processArgs } from '../../server/vmm/qemu/QemuProcess';
import { vmPaths } from '../../server/vmm/qemu/vmPaths';

/** A VmSpec for the test guest: TCG-sized (256 MiB, one vCPU). */
export function testGuestSpec(vmDir: string, image: GuestImage, bootTimeoutMs = 60_000): VmSpec {
  return { id: path.basename(vmDir), vmDir, image, memoryMiB: 256, vcpus: 1, bootTimeoutMs };
}

/** Pids of QEMU processes started for `vmDir` (their command line names its pid file). */
export function qemuPidsFor(vmDir: string): number[] {
  const pidFile = vmPaths(vmDir).pidFile;
  return fs
    .readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .filter((pid) => processArgs(pid)?.includes(pidFile) === true);
}
