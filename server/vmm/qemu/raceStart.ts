import { AgentvmError } from '../../../protocol/errors';
import { consoleTail } from './consoleTail';
import type { QemuProcess } from './QemuProcess';
import type { VmPaths } from './vmPaths';

/**
 * Settle with `promise`, unless QEMU exits first (VM_FAILED), the deadline passes
 * (VM_BOOT_TIMEOUT) or `signal` is aborted (rejects with its reason, see {@link abortReason});
 * the first two errors carry the last console lines.
 */
export async function raceStart<T>(
  promise: Promise<T>,
  what: string,
  qemu: QemuProcess,
  deadline: number,
  paths: VmPaths,
  signal?: AbortSignal,
): Promise<T> {
  promise.catch(() => undefined);
  if (signal?.aborted) throw abortReason(signal);

  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), Math.max(deadline - Date.now(), 0));
  });
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<'aborted'>((resolve) => {
    onAbort = () => resolve('aborted');
    signal?.addEventListener('abort', onAbort, { once: true });
  });

  let outcome: { value: T } | 'exited' | 'timeout' | 'aborted';
  try {
    outcome = await Promise.race([
      promise.then((value) => ({ value })),
      qemu.exited.then(() => 'exited' as const),
      timedOut,
      aborted,
    ]);
  } catch (error) {
    if (signal?.aborted) throw abortReason(signal);

    // A step often fails because QEMU just died (its sockets close first): say so, not ECONNRESET.
    if (await qemu.waitForExit(200)) throw exitedError(what, qemu, paths);
    const late = error instanceof AgentvmError && error.code === 'VM_BOOT_TIMEOUT';
    if (late || Date.now() >= deadline) throw timeoutError(what, paths);
    throw error;
  } finally {
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener('abort', onAbort);
  }

  if (typeof outcome === 'object') return outcome.value;
  if (outcome === 'aborted' && signal) throw abortReason(signal);
  throw outcome === 'exited' ? exitedError(what, qemu, paths) : timeoutError(what, paths);
}

/** What a cancelled start rejects with: the signal's reason when it is an Error. */
export function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason : new Error(`the start was cancelled: ${String(reason)}`);
}

function exitedError(what: string, qemu: QemuProcess, paths: VmPaths): AgentvmError {
  const reason = qemu.spawnError ? `could not start: ${qemu.spawnError.message}` : 'exited';
  return new AgentvmError(
    'VM_FAILED',
    `QEMU ${reason} while ${what}.\n` +
      `QEMU output:\n${consoleTail(paths.qemuLog, 10).join('\n')}\n` +
      `Last console lines:\n${consoleTail(paths.consoleLog).join('\n')}`,
  );
}

function timeoutError(what: string, paths: VmPaths): AgentvmError {
  return new AgentvmError(
    'VM_BOOT_TIMEOUT',
    `the VM was not ready in time (still ${what}).\nLast console lines:\n${consoleTail(paths.consoleLog).join('\n')}`,
  );
}
