import { execFile } from 'node:child_process';

export interface RunGitOptions {
  /** Extra environment on top of the broker's (never put secrets in `args`: they show in `ps`). */
  env?: NodeJS.ProcessEnv;
  /** Bytes written to git's stdin. */
  input?: Buffer | string;
  /** Largest output accepted, in bytes (default 512 MiB: blobs are read whole). */
  maxBufferBytes?: number;
  timeoutMs?: number;
}

/** A git command that exited non-zero; `stderr` is git's own explanation. */
export class GitCommandError extends Error {
  constructor(
    readonly args: readonly string[],
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    super(`git ${args[0] ?? ''} failed: ${stderr.trim() || `exit code ${exitCode}`}`);
    this.name = 'GitCommandError';
  }
}

/** Runs `git -C cwd args…` and returns stdout as bytes. */
export function runGitBuffer(
  cwd: string,
  args: string[],
  options: RunGitOptions = {},
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      'git',
      ['-C', cwd, ...args],
      {
        encoding: 'buffer',
        env: { ...process.env, GIT_TERMINAL_PROMPT: '0', LC_ALL: 'C', ...options.env },
        maxBuffer: options.maxBufferBytes ?? 512 * 1024 * 1024,
        timeout: options.timeoutMs ?? 0,
      },
      (error, stdout, stderr) => {
        if (error) {
          const code = typeof error.code === 'number' ? error.code : null;
          reject(new GitCommandError(args, code, stderr.toString('utf8')));
          return;
        }

        resolve(stdout);
      },
    );
    // git may exit before reading stdin (most commands never do); the broken pipe is harmless.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(options.input ?? '');
  });
}

/** Runs `git -C cwd args…` and returns stdout as text without the trailing newline. */
export async function runGit(
  cwd: string,
  args: string[],
  options: RunGitOptions = {},
): Promise<string> {
  const stdout = await runGitBuffer(cwd, args, options);
  return stdout.toString('utf8').replace(/\n$/, '');
}
