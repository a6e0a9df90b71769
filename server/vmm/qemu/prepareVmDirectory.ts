import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { promisify } from 'node:util';
import { AgentvmError } from '../../../protocol/errors';
import { isProcessAlive } from '../pidLock';
import { processArgs } from './QemuProcess';
import type { VmPaths } from './vmPaths';

const execFileAsync = promisify(execFile);

/**
 * Make the VM directory and its socket directory, and clear sockets and the pid file left by a
 * QEMU that ended. INVALID_STATE when a QEMU still runs for this directory.
 */
export function prepareVmDirectory(paths: VmPaths): void {
  // Starting over a live VM would unlink its sockets and orphan it.
  const runningPid = leftoverQemuPid(paths);
  if (runningPid !== undefined) {
    throw new AgentvmError(
      'INVALID_STATE',
      `a QEMU (pid ${runningPid}) still runs for ${paths.vmDir}; stop it or attach to it`,
    );
  }

  fs.mkdirSync(paths.vmDir, { recursive: true });
  fs.mkdirSync(paths.socketDir, { recursive: true, mode: 0o700 });
  for (const stale of [
    paths.qmpSocket,
    paths.controlSocket,
    paths.migrationSocket,
    paths.pidFile,
  ]) {
    fs.rmSync(stale, { force: true });
  }
}

/** The pid of a QEMU still running for this VM directory (its command line names the pid file). */
export function leftoverQemuPid(paths: VmPaths): number | undefined {
  const pid = Number(readIfExists(paths.pidFile));
  const running = pid > 0 && isProcessAlive(pid) && processArgs(pid)?.includes(paths.pidFile);
  return running ? pid : undefined;
}

/**
 * What `qemu-img create` wrote for each backing disk, by the disk's path and identity. An empty
 * overlay depends only on its backing file, so every clone of a template can get the same bytes:
 * writing them takes a fraction of a millisecond, the `qemu-img` process ≈8 ms of each clone's start.
 */
const emptyOverlays = new Map<string, Buffer>();
/** Templates and images a broker uses at once are few; the oldest entry goes past this many. */
const MAX_EMPTY_OVERLAYS = 16;

/** A fresh qcow2 overlay on `backingPath`: the image's rootfs, or a template's frozen disk. */
export async function createOverlay(
  paths: VmPaths,
  backingPath: string,
  backingFormat: 'raw' | 'qcow2',
  qemuImgBinary = 'qemu-img',
): Promise<void> {
  let backing: fs.Stats;
  try {
    backing = fs.statSync(backingPath);
  } catch {
    const code = backingFormat === 'raw' ? 'IMAGE_MISSING' : 'VM_FAILED';
    throw new AgentvmError(code, `backing disk ${backingPath} does not exist`);
  }

  fs.rmSync(paths.overlay, { force: true });
  // A backing file rebuilt at the same path has another inode or time, so it gets a new overlay.
  const key = [backingFormat, backingPath, backing.ino, backing.size, backing.mtimeMs].join('\0');
  const known = emptyOverlays.get(key);
  if (known) {
    fs.writeFileSync(paths.overlay, known, { flag: 'wx' });
    return;
  }

  const args = [
    'create',
    '-q',
    '-f',
    'qcow2',
    '-F',
    backingFormat,
    '-b',
    backingPath,
    paths.overlay,
  ];
  try {
    await execFileAsync(qemuImgBinary, args);
  } catch (error) {
    throw new AgentvmError(
      'VM_FAILED',
      `qemu-img could not create ${paths.overlay}: ${(error as Error).message}`,
    );
  }

  if (emptyOverlays.size >= MAX_EMPTY_OVERLAYS) {
    emptyOverlays.delete(emptyOverlays.keys().next().value as string);
  }
  emptyOverlays.set(key, fs.readFileSync(paths.overlay));
}

function readIfExists(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    return '';
  }
}
