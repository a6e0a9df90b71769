import fs from 'node:fs';
import path from 'node:path';
import { AgentvmError } from '../../../protocol/errors';
import { isProcessAlive } from './tempDirs';

/** How long a build waits for another process's build of the same images directory. */
export const buildLockTimeoutMs = 20 * 60 * 1000;
const pollIntervalMs = 500;

/**
 * Run `operation` while holding `${imagesRoot}/.build.lock`, so that two brokers or test runs do
 * not build the same image at once; the second waits and then usually finds the image ready. A
 * lock whose owner process has died is taken over.
 */
export async function withBuildLock<T>(
  imagesRoot: string,
  operation: () => Promise<T>,
  onWait?: (ownerPid: number) => void,
): Promise<T> {
  fs.mkdirSync(imagesRoot, { recursive: true });
  const lockPath = path.join(imagesRoot, '.build.lock');
  const deadline = Date.now() + buildLockTimeoutMs;
  let reportedOwner: number | undefined;

  for (;;) {
    try {
      fs.writeFileSync(lockPath, String(process.pid), { flag: 'wx' });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }

    // An empty file is a lock being written right now, not an abandoned one.
    const owner = Number(readOrEmpty(lockPath));
    if (Number.isInteger(owner) && owner > 0 && !isProcessAlive(owner)) {
      fs.rmSync(lockPath, { force: true });
      continue;
    }
    if (Date.now() > deadline) {
      throw new AgentvmError(
        'IMAGE_BUILD_FAILED',
        `Another image build (pid ${owner}) has held ${lockPath} for over ${buildLockTimeoutMs / 60000} minutes.`,
        `Wait for pid ${owner} to finish, or end it and run \`agentvm image build\` again.`,
      );
    }
    if (reportedOwner !== owner) onWait?.(owner);
    reportedOwner = owner;
    await new Promise((resolve) => setTimeout(resolve, pollIntervalMs));
  }

  try {
    return await operation();
  } finally {
    if (readOrEmpty(lockPath) === String(process.pid)) fs.rmSync(lockPath, { force: true });
  }
}

function readOrEmpty(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    return '';
  }
}
