import fs from 'node:fs';
import { AgentvmError } from '../../../protocol/errors';

const pollIntervalMs = 250;

/**
 * Run `operation` holding the lock file `lockPath` (it holds the owner's pid), so two processes do
 * not build the same template at once. A lock whose owner died is taken over; waiting longer than
 * `timeoutMs` fails with VM_FAILED.
 */
export async function withTemplateLock<T>(
  lockPath: string,
  timeoutMs: number,
  operation: () => Promise<T>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      fs.writeFileSync(lockPath, String(process.pid), { flag: 'wx' });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }

    // An empty file is a lock being written this instant, not an abandoned one.
    const owner = Number(readOrEmpty(lockPath));
    if (Number.isInteger(owner) && owner > 0 && !isAlive(owner)) {
      fs.rmSync(lockPath, { force: true });
      continue;
    }
    if (Date.now() > deadline) {
      throw new AgentvmError(
        'VM_FAILED',
        `another process (pid ${owner}) has been building the template behind ${lockPath} for too long`,
      );
    }

    await new Promise((resolve) => setTimeout(resolve, pollIntervalMs));
  }

  try {
    return await operation();
  } finally {
    if (readOrEmpty(lockPath) === String(process.pid)) fs.rmSync(lockPath, { force: true });
  }
}

/** Whether process `pid` exists. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readOrEmpty(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    return '';
  }
}
