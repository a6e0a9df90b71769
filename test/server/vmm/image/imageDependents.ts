import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** A qcow2 overlay at `file` on top of `backing`, made the way the driver makes them. */
export function writeOverlay(file: string, backing: string, format: 'raw' | 'qcow2'): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', backing, '-F', format, file]);
  return file;
}

/**
 * A template directory `<root>/templates/<name>` built on image `imageKey`: its disk an overlay on
 * `backing` (the image's root filesystem) and a manifest naming the image. Returns its disk.
 */
export function writeTemplate(
  root: string,
  name: string,
  imageKey: string,
  backing: string,
): string {
  const dir = path.join(root, 'templates', name);
  const disk = writeOverlay(path.join(dir, 'overlay.qcow2'), backing, 'raw');
  fs.writeFileSync(
    path.join(dir, 'manifest.json'),
    JSON.stringify({
      key: name,
      inputs: {
        builderVersion: 1,
        imageKey,
        memoryMiB: 512,
        vcpus: 1,
        egress: true,
        accel: 'tcg',
        qemuVersion: 'QEMU emulator version 7.2',
      },
      memoryFile: 'memory.ram',
      diskFile: 'overlay.qcow2',
      stateFile: 'snapshot.state',
      stateSizeBytes: 1,
      stateChecksum: `sha256:${'0'.repeat(64)}`,
      migrationCapabilities: [],
      builtAt: 1,
      buildMs: 1,
    }),
  );
  return disk;
}
