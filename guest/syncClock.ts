import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { LineReader } from '../protocol/LineReader';
import { runProcess } from './runProcess';

/** What a `sync` did. */
export interface SyncOutcome {
  /** Host time minus guest time before the correction, in milliseconds. */
  clockSkewMs: number;
  /** Whether the system clock was set (needs root, and is off outside a VM). */
  clockSet: boolean;
}

type Applied = { ok: true } | { ok: false; error: string };

/**
 * Writing to /dev/urandom mixes bytes into the input pool but, on Linux 5.18 and later, does not
 * reseed the generator that reads are served from: two clones of one snapshot would go on
 * producing the same bytes. RNDRESEEDCRNG (0x5207) forces that reseed. Node cannot issue an ioctl
 * or settimeofday (164), so perl (perl-base is part of every Debian root filesystem) does both.
 *
 * The helper reads `seconds micros monotonicNs` lines and answers `ok` or `error ...`. It adds the
 * CLOCK_MONOTONIC (228, clock 1) time that passed since the line was written, so a slow wake-up
 * does not set the clock back.
 */
const HELPER_SCRIPT = `
$| = 1;
open(my $r, "<", "/dev/urandom") or die "open /dev/urandom: $!\\n";
print "ready\\n";
sub mono { my $t = pack("l!l!", 0, 0); syscall(228, 1, $t) == 0 or return 0; my ($s, $n) = unpack("l!l!", $t); return $s * 1000000000 + $n; }
while (my $line = <STDIN>) {
  my ($s, $us, $sent) = split(' ', $line);
  if ($sent > 0) { my $now = mono(); if ($now > $sent) { $us += int(($now - $sent) / 1000); } }
  $s += int($us / 1000000); $us %= 1000000;
  if (!ioctl($r, 0x5207, 0)) { print "error RNDRESEEDCRNG: $!\\n"; next; }
  if (syscall(164, pack("l!l!", $s, $us), 0) != 0) { print "error settimeofday: $!\\n"; next; }
  print "ok\\n";
}
`;

/**
 * A perl process started once, at guest agent start-up, and kept: it is part of every snapshot
 * and template, so a `sync` after a restore costs a pipe round trip instead of a process spawn
 * (about a second under TCG on a loaded host).
 */
class ClockHelper {
  private readonly waiters: Array<(answer: string) => void> = [];
  private readonly reader = new LineReader((line) => this.waiters.shift()?.(line));
  private alive = true;
  /** Resolves once perl has compiled the script and waits for its first line (or has exited). */
  readonly ready: Promise<void>;

  private constructor(private readonly child: ChildProcess) {
    this.ready = new Promise((resolve) => this.waiters.push(() => resolve()));
    child.stdout?.on('data', (chunk: Buffer) => this.reader.push(chunk));
    child.on('error', () => this.end());
    child.on('exit', () => this.end());
    // The guest agent must be able to exit even though the helper waits on its stdin forever.
    child.unref();
    (child.stdout as Socket | null)?.unref();
    (child.stdin as Socket | null)?.unref();
  }

  static start(): ClockHelper {
    const child = spawn('perl', ['-e', HELPER_SCRIPT], {
      cwd: '/',
      env: { PATH: process.env.PATH || '/usr/bin:/bin' },
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    return new ClockHelper(child);
  }

  get isAlive(): boolean {
    return this.alive;
  }

  apply(targetMs: number): Promise<Applied> {
    if (!this.alive) return Promise.resolve({ ok: false, error: 'clock helper is not running' });

    const seconds = Math.floor(targetMs / 1000);
    const micros = Math.round((targetMs - seconds * 1000) * 1000);
    return new Promise((resolve) => {
      this.waiters.push((answer) =>
        resolve(
          answer === 'ok' ? { ok: true } : { ok: false, error: answer.replace(/^error /, '') },
        ),
      );
      this.child.stdin?.write(`${seconds} ${micros} ${process.hrtime.bigint()}\n`);
    });
  }

  private end(): void {
    this.alive = false;
    for (const waiter of this.waiters.splice(0)) waiter('error clock helper exited');
  }
}

let helper: ClockHelper | null = null;

/**
 * Start the clock helper so the first `sync` after a restore spawns nothing, and wait (at most
 * `timeoutMs`) until it is ready: a template snapshotted while perl still starts would make every
 * clone finish that start-up. Only where the guest agent sets the clock (as root inside a VM).
 */
export async function startClockHelper(timeoutMs = 10_000): Promise<void> {
  if (!helper?.isAlive) helper = ClockHelper.start();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
  await Promise.race([helper.ready, timeout]);
  clearTimeout(timer);
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
  const target = () => timeMs + (performance.now() - receivedAt);
  if (helper?.isAlive) {
    const applied = await helper.apply(target());
    if (applied.ok) return { clockSkewMs, clockSet: true };
  }

  const reseeded = await reseedAndSetClock(target());
  if (reseeded.ok) {
    void startClockHelper();
    return { clockSkewMs, clockSet: true };
  }

  let failure = reseeded.error;
  // coreutils date takes fractional seconds; busybox date only whole ones.
  for (const stamp of [(target() / 1000).toFixed(3), Math.round(target() / 1000).toString()]) {
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

/** The helper's work in a one-off perl process: the fallback when the helper is gone. */
async function reseedAndSetClock(targetMs: number): Promise<Applied> {
  const seconds = Math.floor(targetMs / 1000);
  const micros = Math.round((targetMs - seconds * 1000) * 1000);
  const script = [
    'open(my $r, "<", "/dev/urandom") or die "open /dev/urandom: $!\\n";',
    'ioctl($r, 0x5207, 0) or die "RNDRESEEDCRNG: $!\\n";',
    'syscall(164, pack("l!l!", $ARGV[0], $ARGV[1]), 0) == 0 or die "settimeofday: $!\\n";',
  ].join(' ');
  const result = await runProcess('perl', ['-e', script, String(seconds), String(micros)], {
    cwd: '/',
    user: null,
    env: { PATH: process.env.PATH || '/usr/bin:/bin' },
  });
  if (result.code === 0) return { ok: true };

  const error = result.stderr.toString('utf8').trim();
  return { ok: false, error: error || `perl exited with ${result.code}` };
}
