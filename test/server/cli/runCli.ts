import { buildProgram } from '../../../server/cli/program';

export interface CliRun {
  stdout: string;
  stderr: string;
  /** What the command wrote to stdout, as bytes (`stdout` decodes them as UTF-8). */
  stdoutBytes: Buffer;
  exitCode: number;
}

/** What a command has written so far, for a test that acts while it runs. */
export interface CliOutput {
  readonly stdout: string;
  readonly stderr: string;
}

/** Thrown by the test's `exit` in place of process.exit, carrying the code. */
class CliExit extends Error {
  constructor(readonly exitCode: number) {
    super(`agentvm exited with ${exitCode}`);
  }
}

export interface RunCliOptions {
  /**
   * Fail, with the output so far, when the command has not ended this many milliseconds after
   * `during` returned: a command that never ends would otherwise keep this process's stdout
   * captured, and the test reporter's output with it.
   */
  deadlineMs?: number;
}

/**
 * Runs the whole `agentvm` program in this process, as `agentvm ...args` with `env` set (a value
 * of undefined unsets the variable), and returns what it wrote and its exit code. `during` runs
 * alongside the command with a view of its output so far; the command's result is awaited after it.
 */
export async function runCli(
  args: string[],
  env: Record<string, string | undefined>,
  during?: (output: CliOutput) => Promise<void>,
  options: RunCliOptions = {},
): Promise<CliRun> {
  const saved = {
    env: Object.fromEntries(Object.keys(env).map((key) => [key, process.env[key]])),
    exitCode: process.exitCode,
    out: process.stdout.write,
    err: process.stderr.write,
  };
  const output = { stdout: '', stderr: '' };
  setEnv(env);
  const stdoutChunks: Buffer[] = [];
  process.stdout.write = ((chunk: string | Uint8Array) => {
    const bytes = Buffer.from(chunk);
    stdoutChunks.push(bytes);
    output.stdout += bytes.toString('utf8');
    return true;
  }) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string) => (
    (output.stderr += chunk),
    true
  )) as typeof process.stderr.write;
  try {
    process.exitCode = 0;
    const program = buildProgram((code) => {
      throw new CliExit(code);
    });
    const parsed = program.parseAsync(['node', 'agentvm', ...args]);
    // Should `during` fail, the command's own outcome no longer matters.
    parsed.catch(() => undefined);
    await during?.(output);
    const ended = parsed.then(
      () => Number(process.exitCode ?? 0),
      (error: unknown) => {
        if (error instanceof CliExit) return error.exitCode;

        throw error;
      },
    );
    const exitCode = await withDeadline(ended, options.deadlineMs, () => {
      const what = `agentvm ${args.join(' ')} did not end within ${options.deadlineMs} ms`;
      return new Error(`${what}\nstdout: ${output.stdout}\nstderr: ${output.stderr}`);
    });
    return { ...output, stdoutBytes: Buffer.concat(stdoutChunks), exitCode };
  } finally {
    process.stdout.write = saved.out;
    process.stderr.write = saved.err;
    process.exitCode = saved.exitCode;
    setEnv(saved.env);
  }
}

function setEnv(env: Record<string, string | undefined>): void {
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
}

/** `promise`, or a rejection with `failure()` once `deadlineMs` passed (no deadline: undefined). */
async function withDeadline<T>(
  promise: Promise<T>,
  deadlineMs: number | undefined,
  failure: () => Error,
): Promise<T> {
  if (deadlineMs === undefined) return promise;

  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(failure()), deadlineMs);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
