import fs from 'node:fs';

/** The last `lines` non-empty lines of a log file (the serial console), or [] if unreadable. */
export function consoleTail(filePath: string, lines = 20): string[] {
  let fd: number;
  try {
    fd = fs.openSync(filePath, 'r');
  } catch {
    return [];
  }

  try {
    const size = fs.fstatSync(fd).size;
    const length = Math.min(size, 64 * 1024);
    const buffer = Buffer.alloc(length);
    fs.readSync(fd, buffer, 0, length, size - length);
    return buffer
      .toString('utf8')
      .split(/\r?\n/)
      .map((line) => line.replace(/\r/g, ''))
      .filter((line) => line.trim() !== '')
      .slice(-lines);
  } finally {
    fs.closeSync(fd);
  }
}
