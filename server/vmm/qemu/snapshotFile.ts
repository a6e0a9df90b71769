import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { AgentvmError } from '../../../protocol/errors';
import { readTextIfPresent } from '../../readTextIfPresent';
import type { SnapshotInfo } from '../VmmDriver';
import { checkMemoryBase } from './memoryBase';
import { requireFileSize } from './requireFileSize';
import { checkMemoryFileSize, verifyMemoryFile } from './SparseMemoryFile';
import {
  checksumAlgorithm,
  checksumFile,
  checksumPattern,
  namingLegacySha256,
} from './stateChecksum';

/**
 * Throw SNAPSHOT_CORRUPT unless the state file (and the memory file, when there is one) has the
 * recorded size and checksum, and the template memory it builds on (if any) is the one it was
 * taken against.
 */
export async function verifySnapshot(snapshot: SnapshotInfo): Promise<void> {
  checkSnapshotSize(snapshot);
  if (snapshot.memory) await verifyMemoryFile(snapshot.memory);
  const algorithm = checksumAlgorithm(snapshot.checksum);
  if ((await checksumFile(snapshot.statePath, algorithm)) !== snapshot.checksum) {
    throw new AgentvmError(
      'SNAPSHOT_CORRUPT',
      `snapshot file ${snapshot.statePath} fails its ${algorithm} check`,
    );
  }
}

/**
 * The cheap part of {@link verifySnapshot}: throw SNAPSHOT_CORRUPT unless the files have their
 * size and the template memory a snapshot builds on is still the one it was taken against.
 */
export function checkSnapshotSize(snapshot: SnapshotInfo): void {
  if (snapshot.memory) checkMemoryFileSize(snapshot.memory);
  if (snapshot.memoryBase) checkMemoryBase(snapshot.memoryBase);
  requireFileSize(snapshot.statePath, snapshot.sizeBytes, 'snapshot file');
}

/**
 * Rename `tempPath` over `finalPath`. The file it replaces keeps a second name until the returned
 * `discard` runs, because freeing a large file's blocks inside the rename held it up (≈40 ms for a
 * 150 MiB snapshot on ext4); the caller frees them once nobody waits.
 */
export function replaceFile(tempPath: string, finalPath: string): { discard(): Promise<void> } {
  const oldPath = `${finalPath}.old`;
  fs.rmSync(oldPath, { force: true });
  let kept = false;
  try {
    fs.linkSync(finalPath, oldPath);
    kept = true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }

  fs.renameSync(tempPath, finalPath);
  return { discard: () => (kept ? fs.promises.rm(oldPath, { force: true }) : Promise.resolve()) };
}

/** fsync a directory so a rename inside it survives a crash. */
export async function fsyncDirectory(dirPath: string): Promise<void> {
  const handle = await fs.promises.open(dirPath, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * A {@link SnapshotInfo} as stored (beside its state file, in the store). Snapshots written before
 * checksums named their algorithm carry a bare `sha256`.
 */
export const snapshotInfoSchema = z.preprocess(
  namingLegacySha256('sha256', 'checksum'),
  z.object({
    statePath: z.string(),
    sizeBytes: z.number().int().nonnegative(),
    checksum: z.string().regex(checksumPattern),
    durationMs: z.number().nonnegative(),
    migrationCapabilities: z.array(z.string()).optional(),
    namedMemoryBackend: z.boolean().optional(),
    memory: z
      .object({
        path: z.string(),
        sizeBytes: z.number().int().positive(),
        checksum: z.string().regex(checksumPattern),
        runs: z.array(z.tuple([z.number().int().nonnegative(), z.number().int().positive()])),
      })
      .optional(),
    memoryBase: z
      .object({
        path: z.string(),
        sizeBytes: z.number().int().positive(),
        version: z.string(),
      })
      .optional(),
  }),
);

/** Where the description of the snapshot in `statePath` is kept: `snapshot.json` beside it. */
export function snapshotSidecarPath(statePath: string): string {
  return path.join(path.dirname(statePath), 'snapshot.json');
}

/**
 * Durably write `snapshot` to its sidecar (temp file, fsync, rename). The caller does this before
 * renaming the state file into place, so a restarted broker that finds `snapshot.state` also finds
 * what it needs to verify and record it, even if the store never did.
 */
export async function writeSnapshotSidecar(snapshot: SnapshotInfo): Promise<void> {
  const finalPath = snapshotSidecarPath(snapshot.statePath);
  const tempPath = `${finalPath}.tmp`;
  try {
    const file = await fs.promises.open(tempPath, 'w', 0o600);
    try {
      await file.writeFile(JSON.stringify(snapshot));
      await file.sync();
    } finally {
      await file.close();
    }
    fs.renameSync(tempPath, finalPath);
  } catch (error) {
    fs.rmSync(tempPath, { force: true });
    throw error;
  }
}

/** The snapshot described by the sidecar in `vmDir`, or undefined when there is none. */
export function readSnapshotSidecar(vmDir: string): SnapshotInfo | undefined {
  const sidecar = path.join(vmDir, 'snapshot.json');
  const text = readTextIfPresent(sidecar);
  if (text === undefined) return undefined;

  try {
    return snapshotInfoSchema.parse(JSON.parse(text));
  } catch {
    throw new AgentvmError('SNAPSHOT_CORRUPT', `snapshot description ${sidecar} is not valid`);
  }
}

/** Where a snapshot keeps its RAM when split from the state: `snapshot.memory` beside it. */
export function snapshotMemoryPath(statePath: string): string {
  return path.join(path.dirname(statePath), 'snapshot.memory');
}

/**
 * Delete a snapshot's state file, memory file and sidecar. A VM restored from them may still map
 * the memory file; unlinked, it stays readable to that VM until it exits.
 */
export function removeSnapshotFiles(statePath: string): void {
  fs.rmSync(statePath, { force: true });
  fs.rmSync(snapshotMemoryPath(statePath), { force: true });
  fs.rmSync(snapshotSidecarPath(statePath), { force: true });
}
