/** One member of a cpio archive. Paths are relative (`bin/busybox`), without a leading slash. */
export type CpioEntry =
  | { kind: 'directory'; path: string; mode: number }
  | { kind: 'file'; path: string; mode: number; data: Buffer }
  | { kind: 'symlink'; path: string; target: string }
  | { kind: 'charDevice'; path: string; mode: number; major: number; minor: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

/**
 * Write an uncompressed `newc` cpio archive, the format the kernel unpacks as an initramfs. Every
 * member is owned by root with mtime 0, so equal inputs give byte-identical archives, and device
 * nodes need no root privileges to create.
 */
export function cpioArchive(entries: CpioEntry[]): Buffer {
  const chunks: Buffer[] = [];
  let inode = 1;
  let offset = 0;

  const push = (chunk: Buffer) => {
    chunks.push(chunk);
    offset += chunk.length;
    const padding = (4 - (offset % 4)) % 4;
    if (padding > 0) {
      chunks.push(Buffer.alloc(padding));
      offset += padding;
    }
  };

  const member = (name: string, mode: number, data: Buffer, rdev = { major: 0, minor: 0 }) => {
    const fields = [
      inode++,
      mode,
      0, // uid
      0, // gid
      (mode & S_IFDIR) === S_IFDIR ? 2 : 1,
      0, // mtime
      data.length,
      0, // dev major
      0, // dev minor
      rdev.major,
      rdev.minor,
      Buffer.byteLength(name) + 1,
      0, // checksum, unused by newc
    ];
    const header = '070701' + fields.map((field) => field.toString(16).padStart(8, '0')).join('');
    push(Buffer.concat([Buffer.from(header, 'ascii'), Buffer.from(name + '\0', 'utf8')]));
    if (data.length > 0) push(data);
  };

  for (const entry of entries) {
    if (entry.kind === 'directory') member(entry.path, S_IFDIR | entry.mode, Buffer.alloc(0));
    else if (entry.kind === 'file') member(entry.path, S_IFREG | entry.mode, entry.data);
    else if (entry.kind === 'symlink')
      member(entry.path, S_IFLNK | 0o777, Buffer.from(entry.target));
    else member(entry.path, S_IFCHR | entry.mode, Buffer.alloc(0), entry);
  }
  inode = 0;
  member('TRAILER!!!', 0, Buffer.alloc(0));
  return Buffer.concat(chunks);
}
