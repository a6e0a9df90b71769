import { spawn } from 'node:child_process';

/**
 * A detached, long-running process whose command line names `pidFile`, as the QEMU of that VM
 * does: what the driver's leftover checks look for. The caller writes the pid file where the test
 * wants it, and ends the process (by pid) after the test.
 */
export function fakeVmProcess(pidFile: string): number {
  const child = spawn(
    process.execPath,
    ['-e', 'setTimeout(() => {}, 60_000)', '--', '-pidfile', pidFile],
    { stdio: 'ignore', detached: true },
  );
  child.unref();
  return child.pid as number;
}
