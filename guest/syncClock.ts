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

  // Count the time spent since the message arrived, so writing entropy does not set the clock back.
  const targetMs = timeMs + (performance.now() - receivedAt);
  const reseeded = await reseedAndSetClock(targetMs);
  if (reseeded.ok) return { clockSkewMs, clockSet: true };

  let failure = reseeded.error;
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

  throw new Error(`setting the clock failed: ${failure}`);
}

/**
 * Writing to /dev/urandom mixes bytes into the input pool but, on Linux 5.18 and later, does not
 * reseed the generator that reads are served from: two clones of one snapshot would go on
 * producing the same bytes. RNDRESEEDCRNG forces that reseed. Node cannot issue an ioctl, so perl
 * (perl-base is part of every Debian root filesystem) does it, and sets the clock with
 * settimeofday in the same short-lived process.
 */
async function reseedAndSetClock(targetMs: number): Promise<{ ok: true } | { ok: false; error: string }> {
  const seconds = Math.floor(targetMs / 1000);
  const micros = Math.round((targetMs - seconds * 1000) * 1000);
  const script = [
    'open(my $r, "<", "/dev/urandom") or die "open /dev/urandom: $!\\n";',
    'ioctl($r, 0x5207, 0) or die "RNDRESEEDCRNG: $!\\n";',
    'syscall(164, pack("q!q!", $ARGV[0], $ARGV[1]), 0) == 0 or die "settimeofday: $!\\n";',
  ].join(' ');
  const result = await runProcess('perl', ['-e', script, String(seconds), String(micros)], {
    cwd: '/',
    user: null,
    env: { PATH: process.env.PATH || '/usr/bin:/bin' },
  });
  if (result.code === 0) return { ok: true };

  return { ok: false, error: result.stderr.toString('utf8').trim() || `perl exited with ${result.code}` };
}
