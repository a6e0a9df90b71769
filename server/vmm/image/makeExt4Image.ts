import fs from 'node:fs';
import path from 'node:path';
import { runCommand } from './runCommand';

const blockBytes = 4096;
const mebibyte = 1024 * 1024;

/** The guest's working space beyond the installed system: room for clones, builds, node_modules. */
export const defaultFreeSpaceBytes = 1536 * mebibyte;

/** What {@link makeExt4Image} made. */
export interface Ext4ImageResult {
  /** Apparent size of the (sparse) image file, in bytes. */
  sizeBytes: number;
  /** Bytes the tree occupies, rounded up to whole blocks. */
  contentBytes: number;
  /** Wall-clock time of the mke2fs run, in milliseconds. */
  mke2fsMs: number;
}

/**
 * Turn `sourceDir` into an ext4 image at `outputPath` with `mke2fs -d`, mounting nothing. The file
 * is sparse: its apparent size holds the tree plus `freeBytes`, but only written blocks use disk.
 * Inode tables and the journal are initialised here (lazy_*_init=0), otherwise every guest would
 * spend its first minutes of TCG time zeroing them in the background, into its own overlay.
 */
export async function makeExt4Image(
  sourceDir: string,
  outputPath: string,
  freeBytes = defaultFreeSpaceBytes,
  onLine?: (line: string) => void,
): Promise<Ext4ImageResult> {
  const contentBytes = treeBytes(sourceDir);
  // ext4 keeps about 1.6% for inode tables (one 256-byte inode per 16 KiB) plus a 64 MiB journal.
  const wanted = (contentBytes * 1.05 + freeBytes + 64 * mebibyte) / 0.98;
  const sizeBytes = Math.ceil(wanted / mebibyte) * mebibyte;

  fs.rmSync(outputPath, { force: true });
  const file = fs.openSync(outputPath, 'w');
  try {
    fs.ftruncateSync(file, sizeBytes);
  } finally {
    fs.closeSync(file);
  }

  const startedAt = performance.now();
  await runCommand(
    'mke2fs',
    [
      '-q',
      '-F',
      '-t',
      'ext4',
      '-L',
      'agentvm-root',
      // No blocks reserved for root: the agent user should get all the free space it was promised.
      '-m',
      '0',
      '-E',
      'lazy_itable_init=0,lazy_journal_init=0',
      '-d',
      sourceDir,
      outputPath,
    ],
    { onLine },
  );
  return { sizeBytes, contentBytes, mke2fsMs: Math.round(performance.now() - startedAt) };
}

/** Bytes a tree needs on disk: each inode once (hard links are shared), in whole blocks. */
export function treeBytes(root: string): number {
  const seen = new Set<string>();
  let total = 0;
  const pending = [root];

  while (pending.length > 0) {
    const dir = pending.pop() as string;
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      const stat = fs.lstatSync(full);
      const id = `${stat.dev}:${stat.ino}`;
      if (seen.has(id)) continue;

      seen.add(id);
      total += Math.max(1, Math.ceil(stat.size / blockBytes)) * blockBytes;
      if (entry.isDirectory()) pending.push(full);
    }
  }
  return total;
}
