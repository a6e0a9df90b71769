import { AgentvmError } from '../../../protocol/errors';
import { isProcessAlive, withPidLock } from '../pidLock';

/**
 * Run `operation` holding the lock file `lockPath`, so two processes do not build the same
 * template at once; waiting longer than `timeoutMs` fails with VM_FAILED.
 */
export function withTemplateLock<T>(
  lockPath: string,
  timeoutMs: number,
  operation: () => Promise<T>,
): Promise<T> {
  return withPidLock(
    lockPath,
    {
      timeoutMs,
      pollIntervalMs: 250,
      timeoutError: (owner) =>
        new AgentvmError(
          'VM_FAILED',
          `another process (pid ${owner}) has been building the template behind ${lockPath} for too long`,
        ),
    },
    operation,
  );
}

/** Whether process `pid` exists. */
export const isAlive = isProcessAlive;
