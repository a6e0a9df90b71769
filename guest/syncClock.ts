import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { runProcess } from './runProcess';

/** What a `sync` did. */
export interface SyncOutcome {
  /** Host time minus guest time before the correction, in milliseconds. */
  clockSkewMs: number;
  /** Whether the system clock was set (needs root, and is off outside a VM). */
  clockSet: boolean;
}

/**
 * Applies the broker's `sync` after boot or restore: sets the system clock to `timeMs` and mixes
 * `entropy` into the kernel pool, so clones of one snapshot neither share randomness nor a stale
 * clock.
 */
export async function syncClock(
  timeMs: number,
  entropyBase64: string,
  setClock: boolean,
): Promise<SyncOutcome> {
  const receivedAt = performance.now();
  const clockSkewMs = timeMs - Date.now();

  const entropy = Buffer.from(entropyBase64, 'base64');
  if (entropy.length > 0) fs.writeFileSync('/dev/urandom', entropy);

  if (!setClock) return { clockSkewMs, clockSet: false };

  let failure = '';

  // Count the time spent since the message arrived, so writing entropy does not set the clock back.
  const targetMs = timeMs + (performance.now() - receivedAt);
  // coreutils date takes fractional seconds; busybox date only whole ones.
  for (const stamp of [(targetMs / 1000).toFixed(3), Math.round(targetMs / 1000).toString()]) {
    const result = await runProcess('date', ['-u', '-s', `@${stamp}`], {
      cwd: '/',
      user: null,
      env: { PATH: process.env.PATH || '/usr/bin:/bin' },
    });
    if (result.code === 0) return { clockSkewMs, clockSet: true };

    failure = result.stderr.toString('utf8').trim();
  }

  throw new Error(`date -s failed: ${failure}`);
}
