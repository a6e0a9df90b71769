import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/**
 * A fresh temporary directory inside `parent`, named `.tmp-<label>-<pid>-<random>` so that a later
 * run can tell whether the build that made it is still alive. Being inside `parent` keeps the final
 * rename on one file system, which is what makes it atomic.
 */
export function makeTempDir(parent: string, label: string): string {
  fs.mkdirSync(parent, { recursive: true });
  const name = `.tmp-${label}-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  const dir = path.join(parent, name);
  fs.mkdirSync(dir);
  return dir;
}

/** Remove `.tmp-*` directories in `parent` left by builds whose process has ended. */
export function removeStaleTempDirs(parent: string): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(parent);
  } catch {
    return [];
  }

  const removed: string[] = [];
  for (const name of names) {
    const match = /^\.tmp-.+-(\d+)-[0-9a-f]+$/.exec(name);
    if (!match || isProcessAlive(Number(match[1]))) continue;

    removeTree(path.join(parent, name));
    removed.push(name);
  }
  return removed;
}

/** True when a process with this pid exists (signal 0 checks without delivering anything). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * `rm -rf` that first detaches anything mounted below `dir`. debootstrap mounts /proc and /sys
 * inside its target while it runs; if it is killed, those mounts stay, and a plain recursive
 * delete would walk into the host's /proc and /sys.
 */
export function removeTree(dir: string): void {
  const prefix = path.resolve(dir) + '/';
  let mounts: string[] = [];
  try {
    mounts = fs
      .readFileSync('/proc/mounts', 'utf8')
      .split('\n')
      .map((line) => line.split(' ')[1]?.replace(/\\040/g, ' '))
      .filter(
        (mountPoint): mountPoint is string =>
          mountPoint !== undefined && mountPoint.startsWith(prefix),
      );
  } catch {
    // Without /proc/mounts there is nothing we could unmount either.
  }

  // Deepest first, so nested mounts come off before their parents.
  for (const mountPoint of mounts.sort((a, b) => b.length - a.length)) {
    const result = spawnSync('umount', ['-l', mountPoint], { stdio: 'ignore' });
    if (result.status !== 0) {
      throw new Error(`cannot remove ${dir}: ${mountPoint} is mounted and umount failed`);
    }
  }
  fs.rmSync(dir, { recursive: true, force: true });
}
