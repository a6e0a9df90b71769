import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import zlib from 'node:zlib';
import type { ImageInputs } from './imageInputs';
import { cpioArchive, type CpioEntry } from './cpioArchive';

/**
 * Write the initramfs for `inputs` to `outputPath`: a static busybox, the virtio modules
 * (decompressed, since busybox insmod cannot read .ko.xz/.ko.zst), the list of modules in load
 * order at /etc/agentvm-modules, and guest/rootfs/initramfs-init.sh as /init. The archive is left
 * uncompressed: under TCG, unpacking gzip in the guest costs more than reading the extra bytes.
 */
export function buildInitramfs(inputs: ImageInputs, outputPath: string): void {
  const { sources, modules } = inputs;
  const entries: CpioEntry[] = [
    ...['bin', 'dev', 'etc', 'lib', 'lib/modules', 'newroot', 'proc', 'sys'].map(
      (dir): CpioEntry => ({ kind: 'directory', path: dir, mode: 0o755 }),
    ),
    // The kernel opens /dev/console for /init before anything can mount devtmpfs.
    { kind: 'charDevice', path: 'dev/console', mode: 0o600, major: 5, minor: 1 },
    { kind: 'file', path: 'bin/busybox', mode: 0o755, data: fs.readFileSync(sources.busyboxPath) },
    { kind: 'symlink', path: 'bin/sh', target: 'busybox' },
    { kind: 'file', path: 'init', mode: 0o755, data: fs.readFileSync(sources.initramfsInitPath) },
    {
      kind: 'file',
      path: 'etc/agentvm-modules',
      mode: 0o644,
      data: Buffer.from(modules.map((module) => module.name).join('\n') + '\n'),
    },
    ...modules.map((module): CpioEntry => ({
      kind: 'file',
      path: `lib/modules/${module.name}.ko`,
      mode: 0o644,
      data: readModule(module.path),
    })),
  ];
  fs.writeFileSync(outputPath, cpioArchive(entries));
}

/** A module's ELF bytes, decompressing .ko.gz / .ko.xz / .ko.zst. */
export function readModule(file: string): Buffer {
  if (file.endsWith('.ko')) return fs.readFileSync(file);
  if (file.endsWith('.ko.gz')) return zlib.gunzipSync(fs.readFileSync(file));
  if (file.endsWith('.ko.xz')) return execFileSync('xz', ['-dc', file], { maxBuffer: 1 << 28 });
  if (file.endsWith('.ko.zst')) return execFileSync('zstd', ['-dc', file], { maxBuffer: 1 << 28 });
  throw new Error(`unknown kernel module format: ${file}`);
}
