import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { isProcessAlive } from '../pidLock';
import fs from 'node:fs';

/** How a QEMU process ended; both null when it was not our child and its status is unknown. */
export interface ProcessExit {
  code: number | null;
  signal: string | null;
}

const POLL_INTERVAL_MS = 250;

/**
 * One QEMU process: either spawned by this broker (detached, in its own session, so it outlives
 * the broker) or adopted by pid after a broker restart. `exited` resolves once either way: from the
 * child's `exit` event, or by polling the pid when it is not our child.
 */
/** QEMU's descriptor for the snapshot a restoring QEMU reads (`migrate-incoming fd:3`). */
export const INCOMING_FD = 3;

export class QemuProcess {
  readonly exited: Promise<ProcessExit>;
  private resolveExit!: (exit: ProcessExit) => void;
  private hasExited = false;
  private pollTimer: NodeJS.Timeout | undefined;
  /** Set when spawning failed (binary missing, ...). */
  spawnError: Error | undefined;

  private constructor(
    readonly pid: number,
    private readonly child: ChildProcess | undefined,
  ) {
    this.exited = new Promise((resolve) => (this.resolveExit = resolve));
  }

  /**
   * Start QEMU detached, stdout/stderr appended to `logPath`. `incomingFd`, an open descriptor,
   * becomes QEMU's descriptor {@link INCOMING_FD} (the snapshot it restores).
   */
  static spawn(binary: string, args: string[], logPath: string, incomingFd?: number): QemuProcess {
    const logFd = fs.openSync(logPath, 'a');
    let child: ChildProcess;
    try {
      const stdio: StdioOptions = ['ignore', logFd, logFd];
      if (incomingFd !== undefined) stdio.push(incomingFd);
      child = spawn(binary, args, { detached: true, stdio });
    } finally {
      fs.closeSync(logFd);
    }

    const qemu = new QemuProcess(child.pid ?? -1, child);
    child.once('error', (error) => {
      qemu.spawnError = error;
      qemu.finish({ code: null, signal: null });
    });
    child.once('exit', (code, signal) => qemu.finish({ code, signal }));
    // Without unref the broker could not exit while a VM runs; the VM is meant to outlive it.
    child.unref();
    return qemu;
  }

  /** Watch a process this broker did not start (a VM that outlived a previous broker). */
  static adopt(pid: number): QemuProcess {
    const qemu = new QemuProcess(pid, undefined);
    qemu.pollTimer = setInterval(() => qemu.checkAlive(), POLL_INTERVAL_MS);
    qemu.pollTimer.unref();
    qemu.checkAlive();
    return qemu;
  }

  get isOurChild(): boolean {
    return this.child !== undefined;
  }

  get isRunning(): boolean {
    return !this.hasExited;
  }

  /** Re-check an adopted pid now (e.g. its monitor socket just closed). */
  checkAlive(): void {
    if (!this.child && !isProcessAlive(this.pid)) this.finish({ code: null, signal: null });
  }

  /** Stop polling an adopted pid (the caller gave up on it); `exited` then never resolves. */
  stopWatching(): void {
    clearInterval(this.pollTimer);
  }

  /** Send a signal if the process still runs. */
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.hasExited || this.pid <= 0) return;

    try {
      process.kill(this.pid, signal);
    } catch {
      this.checkAlive();
    }
  }

  /** Wait for the exit, at most `timeoutMs`; true if it ended. */
  async waitForExit(timeoutMs: number): Promise<boolean> {
    if (this.hasExited) return true;

    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>(
      (resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)),
    );
    const ended = await Promise.race([this.exited.then(() => true as const), timeout]);
    clearTimeout(timer);
    return ended;
  }

  private finish(exit: ProcessExit): void {
    if (this.hasExited) return;

    this.hasExited = true;
    clearInterval(this.pollTimer);
    this.resolveExit(exit);
  }
}

/** The argument vector of a running process, or undefined when it cannot be read. */
export function processArgs(pid: number): string[] | undefined {
  try {
    const raw = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return raw.split('\0').filter((arg, index, all) => arg !== '' || index < all.length - 1);
  } catch {
    return undefined;
  }
}
