import fs from 'node:fs';
import { BrokerClient } from '../../client/BrokerClient';
import { AgentvmError } from '../../protocol/errors';
import { dataDir, storePath, tokenPath } from '../config/paths';
import { isDiskFullError, storeFullError } from '../store/storeFullError';
import { exitCodeFor, exitCodes } from './exitCodes';
import { terminalSafe } from './terminalSafe';

/** Default broker address; AGENTVM_URL or --url override it. */
export const defaultBrokerUrl = 'http://127.0.0.1:7878';

export interface GlobalOptions {
  url?: string;
  json?: boolean;
}

/** A client for the broker named by the options or environment, with the local token. */
export function connect(options: GlobalOptions = {}): BrokerClient {
  const url = brokerUrl(options);
  return new BrokerClient({ url, token: readToken() });
}

/**
 * The broker URL from --url, AGENTVM_URL or the default. One that does not parse as an http(s)
 * URL is bad input (VALIDATION_FAILED), not a broker that does not answer.
 */
export function brokerUrl(
  options: GlobalOptions = {},
  env: NodeJS.ProcessEnv = process.env,
): string {
  const source = options.url !== undefined ? '--url' : env.AGENTVM_URL ? 'AGENTVM_URL' : undefined;
  const url = options.url ?? (env.AGENTVM_URL || defaultBrokerUrl);
  if (!source) return url;

  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  if (!parsed || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) {
    const example =
      source === '--url' ? `--url ${defaultBrokerUrl}` : `AGENTVM_URL=${defaultBrokerUrl}`;
    throw new AgentvmError(
      'VALIDATION_FAILED',
      `${source} "${url}" is not an http:// or https:// URL`,
      `Give the broker's address with its scheme, e.g. ${example} (\`agentvm serve\` prints it).`,
    );
  }

  return url;
}

/** A whole number from an option's text, or VALIDATION_FAILED naming the option. */
export function parseWholeNumber(
  value: string,
  option: string,
  range: { min: number; max?: number; example: number },
): number {
  const number = /^\s*\d+\s*$/.test(value) ? Number(value) : NaN;
  const inRange =
    Number.isSafeInteger(number) && number >= range.min && number <= (range.max ?? Infinity);
  if (inRange) return number;

  const bounds =
    range.max === undefined ? `at least ${range.min}` : `from ${range.min} to ${range.max}`;
  throw new AgentvmError(
    'VALIDATION_FAILED',
    `${option} must be a whole number ${bounds}, not "${value}"`,
    `Pass a number, e.g. ${option} ${range.example}.`,
  );
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

/**
 * Standard output for results; everything else (progress, errors) goes to stderr. Both show
 * control characters instead of obeying them ({@link terminalSafe}): much of what the CLI prints
 * (titles, review questions, reasons, commit subjects, audit details) an agent or guest wrote.
 */
export function out(line: string): void {
  process.stdout.write(terminalSafe(line) + '\n');
}

export function note(line: string): void {
  process.stderr.write(terminalSafe(line) + '\n');
}

/**
 * `value` as indented JSON. JSON.stringify escapes C0 controls but writes DEL and C1 controls
 * as they are; they are escaped here too (`\u009b`), which parses back to the same value.
 */
export function printJson(value: unknown): void {
  out(
    JSON.stringify(value, null, 2).replace(
      /[\u007f-\u009f]/g,
      (character) => `\\u${character.charCodeAt(0).toString(16).padStart(4, '0')}`,
    ),
  );
}

/** An error as the CLI shows it: `error [CODE]: message` and a `hint:` line, on stderr. */
export function printError(error: AgentvmError): void {
  note(`error [${error.code}]: ${error.message}`);
  note(`  hint: ${error.hint}`);
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
          : isDiskFullError(error)
            ? storeFullError(storePath(), error)
            : new AgentvmError('INTERNAL', (error as Error).stack ?? String(error));
      if (json) printJson(failure.toBody());
      else printError(failure);
      process.exitCode = exitCodeFor(failure.code);
    }
  };
}
