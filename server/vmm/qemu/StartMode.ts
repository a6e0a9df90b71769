import type { SnapshotInfo, VmTemplate } from '../VmmDriver';
import type { QemuLaunchPlan } from './buildQemuArgs';

/** The migration capability that keeps shared (file-backed) RAM out of a snapshot. */
export const IGNORE_SHARED = 'x-ignore-shared';

/**
 * Where a VM comes from: a cold boot on a fresh overlay (with `templateMemory`, RAM in that shared
 * file, for a template), a snapshot on the existing overlay, or a template on a fresh overlay.
 */
export type StartMode =
  | { kind: 'boot'; templateMemory?: string }
  | { kind: 'restore'; snapshot: SnapshotInfo }
  | { kind: 'clone'; template: VmTemplate };

/** The snapshot a start loads: a review snapshot, a template's device state, or none. */
export function incomingSnapshot(mode: StartMode): SnapshotInfo | undefined {
  if (mode.kind === 'restore') return mode.snapshot;
  if (mode.kind === 'clone') return mode.template.snapshot;
  return undefined;
}

/**
 * The migration capabilities the VM runs with: those its incoming snapshot was saved with, or
 * `x-ignore-shared` for a template being built (its RAM file is the template's memory).
 */
export function migrationCapabilities(mode: StartMode): string[] {
  const incoming = incomingSnapshot(mode);
  if (incoming) return incoming.migrationCapabilities ?? [];

  return mode.kind === 'boot' && mode.templateMemory ? [IGNORE_SHARED] : [];
}

/**
 * How guest RAM is backed. A template shares its file so clones can map it; a clone maps it
 * privately, so its writes stay its own, and so does a VM restored from a clone's snapshot, which
 * carries the pages that differ from that file (SnapshotInfo.memoryBase). A clone's review snapshot holds all of its RAM (private
 * RAM is not "shared", so `x-ignore-shared` skips none of it); the driver writes that RAM to a file
 * of its own, which the restore maps privately in the same way. Snapshots from before that
 * (RAM inside the state stream) restore into anonymous RAM that carries the same backend name.
 */
export function memoryPlan(mode: StartMode): Pick<QemuLaunchPlan, 'memoryFile' | 'namedRam'> {
  if (mode.kind === 'boot' && mode.templateMemory) {
    return { memoryFile: { path: mode.templateMemory, share: true } };
  }
  if (mode.kind === 'clone')
    return { memoryFile: { path: mode.template.memoryPath, share: false } };
  if (mode.kind === 'restore' && mode.snapshot.memoryBase)
    return { memoryFile: { path: mode.snapshot.memoryBase.path, share: false } };
  if (mode.kind === 'restore' && mode.snapshot.memory)
    return { memoryFile: { path: mode.snapshot.memory.path, share: false } };
  if (mode.kind === 'restore' && mode.snapshot.namedMemoryBackend) return { namedRam: true };
  return {};
}
