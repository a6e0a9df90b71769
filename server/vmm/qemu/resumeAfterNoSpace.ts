import type { Logger } from '../../log';
import type { QmpClient } from './QmpClient';

/** First wait before trying to resume a guest stopped for lack of disk space, in milliseconds. */
const FIRST_TRY_MS = 1_000;
/** Longest wait between tries; each failed try doubles the wait up to this. */
const LONGEST_WAIT_MS = 10_000;

/**
 * Resumes a guest that QEMU stopped because a write to its disk found the host's file system full.
 *
 * Why: with QEMU's default error policy (`werror=enospc`) a guest write that meets ENOSPC stops the
 * whole VM (status `io-error`, event BLOCK_IO_ERROR with `nospace`) so that the guest does not see
 * an I/O error, and QEMU never resumes it by itself: the agent would hang after space was freed.
 * So, after each such stop, this tries `cont` after a wait that doubles up to 10 s. A try while the
 * disk is still full just stops the VM again (the write is retried); a VM paused on purpose (a
 * snapshot, a review) is never touched, since only status `io-error` is resumed.
 */
export function resumeAfterNoSpace(
  qmp: QmpClient,
  logger: Logger,
  vmId: string,
  timing = { firstTryMs: FIRST_TRY_MS, longestWaitMs: LONGEST_WAIT_MS },
): { dispose(): void } {
  let timer: NodeJS.Timeout | undefined;
  let waitMs = timing.firstTryMs;
  let disposed = false;

  const tryResume = async () => {
    timer = undefined;
    try {
      const { status } = await qmp.execute<{ status: string }>('query-status');
      if (status !== 'io-error') {
        waitMs = timing.firstTryMs;
        return;
      }

      logger.info('vm.resume_after_no_space', { vmId, waitedMs: waitMs });
      waitMs = Math.min(waitMs * 2, timing.longestWaitMs);
      await qmp.execute('cont');
    } catch {
      // The monitor went away (the VM ended, or the broker detached from it): nothing to resume.
    }
  };

  const subscription = qmp.onEvent((event) => {
    if (disposed || event.event !== 'BLOCK_IO_ERROR' || event.data?.nospace !== true) return;
    if (event.data?.action !== 'stop' || timer) return;

    logger.warn('vm.stopped_no_space', { vmId, device: event.data?.device, retryInMs: waitMs });
    timer = setTimeout(() => void tryResume(), waitMs);
    timer.unref();
  });

  return {
    dispose: () => {
      disposed = true;
      subscription.dispose();
      clearTimeout(timer);
    },
  };
}
