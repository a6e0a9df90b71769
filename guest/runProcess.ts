import { spawn } from 'node:child_process';
import os from 'node:os';
import type { Readable } from 'node:stream';
import type { AgentUser } from './guestConfig';

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** Grace between SIGTERM and SIGKILL when a timed-out command is stopped, in milliseconds. */
const KILL_GRACE_MS = 2000;

export interface RunOptions {
  cwd: string;
  /** Run as this user; null runs as the guest agent's own user. */
  user: AgentUser | null;
  env: NodeJS.ProcessEnv;
  /** Kill the whole process group after this many milliseconds; 0 means never. */
  timeoutMs?: number;
  /** Keep at most this many bytes of stdout and of stderr each. */
  maxOutputBytes?: number;
  /** Written to the process's stdin, which is then closed; without it stdin is /dev/null. */
  input?: Buffer;
  /** Called with the pid once the process started; it leads its own process group. */
  onSpawn?: (pid: number) => void;
}

export interface RunResult {
  code: number | null;
  signal: string | null;
  stdout: Buffer;
  stderr: Buffer;
  truncated: boolean;
  timedOut: boolean;
}

/** The environment every process started for the agent gets, before task variables. */
export function baseEnv(user: AgentUser | null): Record<string, string> {
  const home = user ? user.home : (process.env.HOME ?? '/');
  const name = user ? user.name : currentUserName();

  return {
    PATH: process.env.PATH || DEFAULT_PATH,
    HOME: home,
    USER: name,
    LOGNAME: name,
    SHELL: '/bin/sh',
    LANG: 'C.UTF-8',
    // The image's /etc/gitconfig holds the fallback commit identity; a guest agent run outside
    // the image (host tests) is pointed at a stand-in for it.
    ...(process.env.GIT_CONFIG_SYSTEM ? { GIT_CONFIG_SYSTEM: process.env.GIT_CONFIG_SYSTEM } : {}),
  };
}

function currentUserName(): string {
  try {
    return os.userInfo().username;
  } catch {
    // No passwd entry for our uid (a bare initramfs); the name is cosmetic.
    return process.env.USER ?? String(process.getuid?.() ?? 'root');
  }
}

/** Sends `signal` to the process group led by `pid`, ignoring a group that is already gone. */
export function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: everything in the group has exited already.
  }
}

/** Runs `file args` to completion in its own process group and collects capped output. */
export function runProcess(file: string, args: string[], options: RunOptions): Promise<RunResult> {
  const maxBytes = options.maxOutputBytes ?? 64 * 1024 * 1024;

  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      cwd: options.cwd,
      env: options.env,
      uid: options.user?.uid,
      gid: options.user?.gid,
      detached: true,
      stdio: [options.input ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    });
    if (child.pid !== undefined) options.onSpawn?.(child.pid);
    if (options.input && child.stdin) {
      // A command that exits without reading all of its input closes the pipe (EPIPE): that is
      // the command's choice, not a failure of the run.
      child.stdin.on('error', () => undefined);
      child.stdin.end(options.input);
    }

    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    const sizes = { stdout: 0, stderr: 0 };
    let truncated = false;
    let timedOut = false;
    const collect = (into: Buffer[], key: 'stdout' | 'stderr') => (chunk: Buffer) => {
      const room = maxBytes - sizes[key];
      if (room <= 0) {
        truncated = true;
        return;
      }

      if (chunk.length > room) truncated = true;
      into.push(chunk.subarray(0, room));
      sizes[key] += Math.min(chunk.length, room);
    };
    // Both are pipes (stdio below), whatever stdin is.
    (child.stdout as Readable).on('data', collect(stdout, 'stdout'));
    (child.stderr as Readable).on('data', collect(stderr, 'stderr'));

    const timers: NodeJS.Timeout[] = [];
    if (options.timeoutMs) {
      timers.push(
        setTimeout(() => {
          timedOut = true;
          killGroup(child.pid as number, 'SIGTERM');
          timers.push(setTimeout(() => killGroup(child.pid as number, 'SIGKILL'), KILL_GRACE_MS));
        }, options.timeoutMs),
      );
    }

    child.on('error', (error) => {
      timers.forEach(clearTimeout);
      reject(error);
    });
    child.on('close', (code, signal) => {
      timers.forEach(clearTimeout);
      resolve({
        code,
        signal,
        stdout: Buffer.concat(stdout),
        stderr: Buffer.concat(stderr),
        truncated,
        timedOut,
      });
    });
  });
}

/** Runs git as `user` in `cwd`; resolves with stdout, rejects with git's stderr on failure. */
export async function git(
  args: string[],
  cwd: string,
  user: AgentUser | null,
  env: Record<string, string> = {},
): Promise<Buffer> {
  const result = await runProcess('git', args, { cwd, user, env: { ...baseEnv(user), ...env } });
  if (result.code !== 0) {
    const detail = result.stderr.toString('utf8').trim() || `exit ${result.code ?? result.signal}`;
    throw new Error(`git ${args[0]} failed: ${detail}`);
  }

  return result.stdout;
}
