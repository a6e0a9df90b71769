import fs from 'node:fs';
import path from 'node:path';
import { AgentvmError } from '../../../protocol/errors';
import type { SnapshotMemoryBase } from '../VmmDriver';

/**
 * The file a VM's RAM maps copy-on-write, described as a snapshot's base (see
 * SnapshotInfo.memoryBase), when it can be one: it lies outside the VM's directory (a template's
 * memory, never a snapshot file of the VM's own, which is replaced or removed after a restore) and
 * it is the very file QEMU process `pid` maps, not another one put at its path since. Undefined
 * otherwise: the snapshot then keeps all of the RAM.
 */
export function mappedMemoryBase(
  pid: number,
  file: string | undefined,
  vmDir: string,
): SnapshotMemoryBase | undefined {
  if (!file || !path.isAbsolute(file)) return undefined;
  if (!path.relative(path.resolve(vmDir), file).startsWith('..')) return undefined;

  let stat: fs.BigIntStats | undefined;
  let maps: string;
  try {
    stat = fs.statSync(file, { bigint: true, throwIfNoEntry: false });
    maps = fs.readFileSync(`/proc/${pid}/maps`, 'utf8');
  } catch {
    return undefined;
  }
  if (!stat) return undefined;

  const mapped = maps.split('\n').some((line) => {
    // address perms offset dev inode path; a replaced or removed file ends in " (deleted)".
    const fields = line.split(/\s+/);
    return fields[4] === String(stat.ino) && line.endsWith(` ${file}`);
  });
  return mapped
    ? { path: file, sizeBytes: Number(stat.size), version: versionOf(stat) }
    : undefined;
}

/** Throw SNAPSHOT_CORRUPT unless `base` is still the file the snapshot was taken against. */
export function checkMemoryBase(base: SnapshotMemoryBase): void {
  const stat = fs.statSync(base.path, { bigint: true, throwIfNoEntry: false });
  if (!stat) {
    throw new AgentvmError(
      'SNAPSHOT_CORRUPT',
      `the template memory ${base.path} this snapshot builds on is gone`,
    );
  }
  if (Number(stat.size) !== base.sizeBytes || versionOf(stat) !== base.version) {
    throw new AgentvmError(
      'SNAPSHOT_CORRUPT',
      `the template memory ${base.path} changed after this snapshot was taken against it (rebuilt or replaced)`,
    );
  }
}

/**
 * The file's modification time: a template's memory is written only while the template is built,
 * so a rebuilt or replaced one has another. Kept across a copy that keeps times (`cp -a`), unlike
 * the inode.
 */
function versionOf(stat: fs.BigIntStats): string {
  return `mtime:${stat.mtimeNs}`;
}
