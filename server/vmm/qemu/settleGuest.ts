import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import type { Vm } from '../VmmDriver';

/** Linux reports process CPU time in USER_HZ ticks, 100 per second on every architecture we run. */
const TICK_MS = 10;

export interface SettleOptions {
  /** Give up waiting (and snapshot anyway) after this long, in milliseconds. */
  timeoutMs?: number;
  /** Length of one CPU-usage sample, in milliseconds. */
  windowMs?: number;
  /** A window in which QEMU used at most this share of one CPU counts as idle. */
  idleShare?: number;
  /** Consecutive idle windows needed. */
  idleWindows?: number;
}

export interface SettleOutcome {
  /** Whether the guest went idle before the timeout. */
  idle: boolean;
  durationMs: number;
}

/**
 * Get a freshly booted guest to a quiet state before its template snapshot: run one `sync`, so the
 * guest agent's sync path (and its clock helper) has run once and is compiled in the snapshot, then
 * wait until QEMU's CPU use shows the guest idle. Work still running at snapshot time (the rest of
 * boot, lazy compilation) would otherwise be redone by every clone right after it starts.
 */
export async function settleGuest(vm: Vm, options: SettleOptions = {}): Promise<SettleOutcome> {
  const startedAt = performance.now();
  const deadline = Date.now() + (options.timeoutMs ?? 20_000);
  const windowMs = options.windowMs ?? 300;
  const idleTicks = Math.floor((windowMs * (options.idleShare ?? 0.1)) / TICK_MS);
  const needed = options.idleWindows ?? 2;

  await syncOnce(vm, Math.max(deadline - Date.now(), 1));

  let quiet = 0;
  let before = cpuTicks(vm.pid);
  while (quiet < needed && Date.now() + windowMs <= deadline && before !== undefined) {
    await new Promise((resolve) => setTimeout(resolve, windowMs));
    const after = cpuTicks(vm.pid);
    if (after === undefined) break;

    quiet = after - before <= idleTicks ? quiet + 1 : 0;
    before = after;
  }

  return { idle: quiet >= needed, durationMs: Math.round(performance.now() - startedAt) };
}

function syncOnce(vm: Vm, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const finish = () => {
      clearTimeout(timer);
      subscription.dispose();
      resolve();
    };
    // A guest that does not answer is still snapshotted; its clones sync again anyway.
    const timer = setTimeout(finish, timeoutMs);
    const subscription = vm.channel.onMessage((message) => {
      if (message.type === 'synced') finish();
    });
    vm.channel.send({
      type: 'sync',
      timeMs: Date.now(),
      entropy: randomBytes(64).toString('base64'),
    });
  });
}

/** utime + stime of a process, in ticks; undefined once it is gone. */
function cpuTicks(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15 of stat(5), counted from the state field, which is field 3.
    return Number(fields[14 - 3]) + Number(fields[15 - 3]);
  } catch {
    return undefined;
  }
}
