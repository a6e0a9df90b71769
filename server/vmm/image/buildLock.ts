import fs from 'node:fs';
import path from 'node:path';
import { AgentvmError } from '../../../protocol/errors';
import { withPidLock } from '../pidLock';

/** How long a build waits for another process's build of the same images directory. */
export const buildLockTimeoutMs = 20 * 60 * 1000;

/**
 * Run `operation` while holding `${imagesRoot}/.build.lock`, so that two brokers or test runs do
 * not build the same image at once; the second waits and then usually finds the image ready.
 */
export async function withBuildLock<T>(
  imagesRoot: string,
  operation: () => Promise<T>,
  onWait?: (ownerPid: number) => void,
): Promise<T> {
  fs.mkdirSync(imagesRoot, { recursive: true });
  const lockPath = path.join(imagesRoot, '.build.lock');
  return withPidLock(
    lockPath,
    {
      timeoutMs: buildLockTimeoutMs,
      pollIntervalMs: 500,
      onWait,
      timeoutError: (owner) =>
        new AgentvmError(
          'IMAGE_BUILD_FAILED',
          `Another image build (pid ${owner}) has held ${lockPath} for over ${buildLockTimeoutMs / 60000} minutes.`,
          `Wait for pid ${owner} to finish, or end it and run \`agentvm image build\` again.`,
        ),
    },
    operation,
  );
}
