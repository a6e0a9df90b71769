import fs from 'node:fs';
import { BrokerClient } from '../../client/BrokerClient';
import { AgentvmError } from '../../protocol/errors';
import { dataDir, tokenPath } from '../config/paths';
import { exitCodeFor, exitCodes } from './exitCodes';

/** Default broker address; AGENTVM_URL or --url override it. */
export const defaultBrokerUrl = 'http://127.0.0.1:7878';

export interface GlobalOptions {
  url?: string;
  json?: boolean;
}

/** A client for the broker named by the options or environment, with the local token. */
export function connect(options: GlobalOptions = {}): BrokerClient {
  const url = options.url ?? process.env.AGENTVM_URL ?? defaultBrokerUrl;
  return new BrokerClient({ url, token: readToken() });
}

function readToken(): string {
  if (process.env.AGENTVM_TOKEN) return process.env.AGENTVM_TOKEN;

  const file = tokenPath(dataDir());
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    throw new AgentvmError(
      'UNAUTHORIZED',
      `no broker token: AGENTVM_TOKEN is not set and ${file} does not exist`,
      'Start the broker once with `agentvm serve` (it writes the token file), or set AGENTVM_TOKEN.',
    );
  }
}

/** Standard output for results; everything else (progress, errors) goes to stderr. */
export function out(line: string): void {
  process.stdout.write(line + '\n');
}

export function note(line: string): void {
  process.stderr.write(line + '\n');
}

export function printJson(value: unknown): void {
  out(JSON.stringify(value, null, 2));
}

/**
 * Runs a command action: an AgentvmError becomes one message with its code and hint (or a JSON
 * error body with --json) and the matching exit code.
 */
export function action<A extends unknown[]>(run: (...args: A) => Promise<number | void>) {
  return async (...args: A): Promise<void> => {
    const json = process.argv.includes('--json');
    try {
      const code = await run(...args);
      process.exitCode = code ?? exitCodes.ok;
    } catch (error) {
      const failure =
        error instanceof AgentvmError
          ? error
          : new AgentvmError('INTERNAL', (error as Error).stack ?? String(error));
      if (json) {
        process.stdout.write(JSON.stringify(failure.toBody(), null, 2) + '\n');
      } else {
        note(`error [${failure.code}]: ${failure.message}`);
        note(`  hint: ${failure.hint}`);
      }
      process.exitCode = exitCodeFor(failure.code);
    }
  };
}
