import fs from 'node:fs';
import path from 'node:path';

/** A Debian cloud kernel on the host, with the release its modules live under. */
export interface HostKernel {
  path: string;
  /** e.g. `6.1.0-57-cloud-amd64`; modules are under /lib/modules/<release>. */
  release: string;
}

/** The newest `/boot/vmlinuz-*-cloud-amd64`, or undefined when none is installed. */
export function findCloudKernel(bootDir = '/boot'): HostKernel | undefined {
  let names: string[];
  try {
    names = fs.readdirSync(bootDir);
  } catch {
    return undefined;
  }

  const releases = names
    .map((name) => /^vmlinuz-(.+-cloud-amd64)$/.exec(name)?.[1])
    .filter((release): release is string => release !== undefined)
    .sort(compareVersions);
  const newest = releases.at(-1);
  if (!newest) return undefined;

  return { path: path.join(bootDir, `vmlinuz-${newest}`), release: newest };
}

/** Candidates for a statically linked busybox, in the order Debian's packages install them. */
export const busyboxCandidates = ['/bin/busybox', '/usr/bin/busybox'];

/** The first statically linked busybox on the host (from `busybox-static`), if any. */
export function findStaticBusybox(candidates = busyboxCandidates): string | undefined {
  return candidates.find((candidate) => isStaticElf(candidate));
}

/**
 * True when `file` is a 64-bit little-endian ELF executable with no program interpreter. A
 * dynamically linked busybox would need a loader that the initramfs does not contain.
 */
export function isStaticElf(file: string): boolean {
  const header = Buffer.alloc(64 * 1024);
  let length: number;
  try {
    const fd = fs.openSync(file, 'r');
    try {
      length = fs.readSync(fd, header, 0, header.length, 0);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return false;
  }
  if (length < 64 || header.readUInt32BE(0) !== 0x7f454c46) return false;
  if (header[4] !== 2 || header[5] !== 1) return false;

  const programHeaderOffset = Number(header.readBigUInt64LE(0x20));
  const programHeaderSize = header.readUInt16LE(0x36);
  const programHeaderCount = header.readUInt16LE(0x38);
  for (let index = 0; index < programHeaderCount; index++) {
    const at = programHeaderOffset + index * programHeaderSize;
    if (at + 4 > length) return false;

    const PT_INTERP = 3;
    if (header.readUInt32LE(at) === PT_INTERP) return false;
  }
  return true;
}

/** Orders Debian kernel releases like `6.1.0-9` < `6.1.0-57` (numeric runs compare as numbers). */
export function compareVersions(left: string, right: string): number {
  const leftParts = left.split(/(\d+)/);
  const rightParts = right.split(/(\d+)/);
  for (let index = 0; index < Math.max(leftParts.length, rightParts.length); index++) {
    const a = leftParts[index] ?? '';
    const b = rightParts[index] ?? '';
    if (a === b) continue;

    const numeric = index % 2 === 1;
    if (numeric && a !== '' && b !== '') return Number(a) - Number(b);
    return a < b ? -1 : 1;
  }
  return 0;
}
