import fs from 'node:fs';

const QCOW2_MAGIC = 0x514649fb;

/**
 * The backing file name recorded in a qcow2 header, or `undefined` when the file is not qcow2 or
 * has no backing file. Reads the header only (magic at 0, backing offset at 8, its length at 16).
 */
export function qcow2BackingFile(file: string): string | undefined {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return undefined;
  }

  try {
    const header = Buffer.alloc(20);
    if (fs.readSync(fd, header, 0, 20, 0) < 20 || header.readUInt32BE(0) !== QCOW2_MAGIC) {
      return undefined;
    }

    const offset = Number(header.readBigUInt64BE(8));
    const length = header.readUInt32BE(16);
    if (offset === 0 || length === 0 || length > 4096) return undefined;

    const name = Buffer.alloc(length);
    fs.readSync(fd, name, 0, length, offset);
    return name.toString('utf8');
  } finally {
    fs.closeSync(fd);
  }
}
