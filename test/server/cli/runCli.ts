import { buildProgram } from '../../../server/cli/program';

export interface CliRun {
  stdout: string;
  stderr: string;
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

/**
 * Runs the whole `agentvm` program in this process, as `agentvm ...args` with `env` set (a value
 * of undefined unsets the variable), and returns what it wrote and its exit code. `during` runs
 * alongside the command with a view of its output so far; the command's result is awaited after it.
 */
export async function runCli(
  args: string[],
  env: Record<string, string | undefined>,
  during?: (output: CliOutput) => Promise<void>,
): Promise<CliRun> {
  const saved = {
    env: Object.fromEntries(Object.keys(env).map((key) => [key, process.env[key]])),
    exitCode: process.exitCode,
    out: process.stdout.write,
    err: process.stderr.write,
  };
  const output = { stdout: '', stderr: '' };
  setEnv(env);
  process.stdout.write = ((chunk: string) => (
    (output.stdout += chunk),
    true
  )) as typeof process.stdout.write;
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
    const exitCode = await parsed.then(
      () => Number(process.exitCode ?? 0),
      (error: unknown) => {
        if (error instanceof CliExit) return error.exitCode;

        throw error;
      },
    );
    return { ...output, exitCode };
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
