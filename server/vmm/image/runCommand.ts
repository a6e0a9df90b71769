import { spawn } from 'node:child_process';

/** Options for {@link runCommand}. */
export interface RunCommandOptions {
  /** Receives each line of stdout and stderr as it arrives. */
  onLine?: (line: string) => void;
  env?: NodeJS.ProcessEnv;
}

/**
 * Run a program to completion, streaming its output by line. Rejects with the exit status and the
 * last lines of output when it fails, so the caller's error says why without a second run.
 */
export function runCommand(
  command: string,
  args: string[],
  options: RunCommandOptions = {},
): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: options.env ?? process.env,
    });
    const tail: string[] = [];
    let callbackError: unknown;

    const collect = (stream: NodeJS.ReadableStream) => {
      let pending = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        const lines = (pending + chunk).split('\n');
        pending = lines.pop() ?? '';
        for (const line of lines) emit(line);
      });
      stream.on('end', () => pending && emit(pending));
    };
    const emit = (line: string) => {
      tail.push(line);
      if (tail.length > 20) tail.shift();
      try {
        options.onLine?.(line);
      } catch (error) {
        // A throwing callback aborts the command, like an exception anywhere else in the build.
        callbackError ??= error;
        child.kill('SIGTERM');
      }
    };

    collect(child.stdout);
    collect(child.stderr);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (callbackError) return reject(callbackError);
      if (code === 0) return resolve();

      const status = signal ? `signal ${signal}` : `exit code ${code}`;
      reject(new Error(`${command} failed with ${status}:\n${tail.join('\n')}`));
    });
  });
}
