import fs from 'node:fs';
import type { AgentvmError } from '../../protocol/errors';

export interface PidLockOptions {
  /** Give up waiting for another owner after this long, in milliseconds. */
  timeoutMs: number;
  pollIntervalMs: number;
  /** Called once per new owner we find ourselves waiting for. */
  onWait?: (ownerPid: number) => void;
  /** The error to throw when `timeoutMs` passes while `ownerPid` still holds the lock. */
  timeoutError: (ownerPid: number) => AgentvmError;
}

/**
 * Runs `operation` while holding the lock file `lockPath`, which contains the owner's pid, so two
 * processes (brokers, test runs, CLI builds) never build the same artefact at once. A lock whose
 * owner process has died is taken over; an empty file is a lock being written this instant.
 */
export async function withPidLock<T>(
  lockPath: string,
  options: PidLockOptions,
  operation: () => Promise<T>,
): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  let reportedOwner: number | undefined;

  for (;;) {
    try {
      fs.writeFileSync(lockPath, String(process.pid), { flag: 'wx' });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }

    const owner = Number(readOrEmpty(lockPath));
    if (Number.isInteger(owner) && owner > 0 && !isProcessAlive(owner)) {
      fs.rmSync(lockPath, { force: true });
      continue;
    }
    if (Date.now() > deadline) throw options.timeoutError(owner);

    if (reportedOwner !== owner) options.onWait?.(owner);
    reportedOwner = owner;
    await new Promise((resolve) => setTimeout(resolve, options.pollIntervalMs));
  }

  try {
    return await operation();
  } finally {
    if (readOrEmpty(lockPath) === String(process.pid)) fs.rmSync(lockPath, { force: true });
  }
}

/**
 * True while `pid` exists (EPERM: it exists but belongs to someone else) and is not a zombie: a
 * broker killed a moment ago stays one until its parent reaps it, and holds nothing any more.
 */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }

  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

function readOrEmpty(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    return '';
  }
}
