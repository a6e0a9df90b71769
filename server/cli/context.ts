import fs from 'node:fs';
import { BrokerClient } from '../../client/BrokerClient';
import { AgentvmError } from '../../protocol/errors';
import { dataDir, storePath, tokenPath } from '../config/paths';
import { isDiskFullError, storeFullError } from '../store/storeFullError';
import { exitCodeFor, exitCodes } from './exitCodes';
import { escapeJsonText, terminalSafe } from './terminalSafe';

/** Where `agentvm serve` listens by default; --url, AGENTVM_URL or AGENTVM_PORT override it. */
export const defaultBrokerUrl = 'http://127.0.0.1:7878';

export interface GlobalOptions {
  url?: string;
  json?: boolean;
}

/** Where the CLI looks for the broker, and what chose that address. */
export interface BrokerTarget {
  url: string;
  source: '--url' | 'AGENTVM_URL' | 'AGENTVM_PORT' | 'default';
}

/** Where the token the CLI sends came from: AGENTVM_TOKEN, or a data directory's token file. */
export type TokenSource = { from: 'AGENTVM_TOKEN' } | { from: 'file'; path: string };

/**
 * A client for the broker named by the options or environment, with the local token; its errors
 * say where the address and the token came from.
 */
export function connect(options: GlobalOptions = {}): BrokerClient {
  const target = brokerTarget(options);
  const { token, source } = readToken();
  return new BrokerClient({
    url: target.url,
    token,
    unreachableHint: brokerUnreachableHint(target),
    unauthorizedHint: unauthorizedHint(target, source),
    connectionLostHint: connectionLostHint(target),
  });
}

/**
 * The hint of an UNAUTHORIZED answer: which token the broker did not know and how to send the
 * right one. The usual cause is a broker started with --data-dir or AGENTVM_DATA_DIR and a CLI
 * without it, which reads the token file of another data directory.
 */
export function unauthorizedHint(target: BrokerTarget, source: TokenSource): string {
  if (source.from === 'AGENTVM_TOKEN') {
    return `The broker at ${target.url} does not know the token in AGENTVM_TOKEN: unset it to use the token file of the data directory, or set it to a token of that broker (\`agentvm token create\` where it runs).`;
  }

  return `The broker at ${target.url} does not know the token in ${source.path}: give the CLI the data directory that broker was started with (--data-dir DIR or AGENTVM_DATA_DIR), or set AGENTVM_TOKEN to one of its tokens.`;
}

/** The broker URL from --url, AGENTVM_URL, AGENTVM_PORT or the default ({@link brokerTarget}). */
export function brokerUrl(
  options: GlobalOptions = {},
  env: NodeJS.ProcessEnv = process.env,
): string {
  return brokerTarget(options, env).url;
}

/**
 * The broker address from --url, else AGENTVM_URL, else 127.0.0.1 on AGENTVM_PORT (the port
 * `agentvm serve` takes from it too), else the default. A URL that does not parse as http(s), or
 * an AGENTVM_PORT that is not a port, is bad input (VALIDATION_FAILED), not a broker that does not
 * answer.
 */
export function brokerTarget(
  options: GlobalOptions = {},
  env: NodeJS.ProcessEnv = process.env,
): BrokerTarget {
  if (options.url !== undefined) return { url: checkUrl(options.url, '--url'), source: '--url' };

  if (env.AGENTVM_URL)
    return { url: checkUrl(env.AGENTVM_URL, 'AGENTVM_URL'), source: 'AGENTVM_URL' };

  if (env.AGENTVM_PORT) {
    return { url: `http://127.0.0.1:${checkPort(env.AGENTVM_PORT)}`, source: 'AGENTVM_PORT' };
  }

  return { url: defaultBrokerUrl, source: 'default' };
}

function checkUrl(url: string, source: '--url' | 'AGENTVM_URL'): string {
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  if (parsed && (parsed.protocol === 'http:' || parsed.protocol === 'https:')) return url;

  const example =
    source === '--url' ? `--url ${defaultBrokerUrl}` : `AGENTVM_URL=${defaultBrokerUrl}`;
  throw new AgentvmError(
    'VALIDATION_FAILED',
    `${source} "${url}" is not an http:// or https:// URL`,
    `Give the broker's address with its scheme, e.g. ${example} (\`agentvm serve\` prints it).`,
  );
}

function checkPort(value: string): number {
  const port = /^\s*\d+\s*$/.test(value) ? Number(value) : NaN;
  if (Number.isSafeInteger(port) && port >= 1 && port <= 65535) return port;

  throw new AgentvmError(
    'VALIDATION_FAILED',
    `AGENTVM_PORT "${value}" is not a port number (1 to 65535)`,
    'Set AGENTVM_PORT to the port `agentvm serve` listens on (e.g. AGENTVM_PORT=7878), or unset it to use 7878.',
  );
}

/**
 * The hint of a BROKER_UNREACHABLE error: the address tried, what chose it, and how to start a
 * broker there (or point the CLI elsewhere).
 */
export function brokerUnreachableHint(target: BrokerTarget): string {
  const chosenBy =
    target.source === 'default'
      ? 'the default; --url, AGENTVM_URL and AGENTVM_PORT are unset'
      : `from ${target.source}`;
  const serve = serveCommandFor(target);
  const remedy = serve
    ? `start a broker there with \`${serve}\``
    : 'check that a broker runs there';
  return `Nothing answered at ${target.url} (${chosenBy}): ${remedy}, or point the CLI at a running broker with --url or AGENTVM_URL.`;
}

/**
 * The hint of a BROKER_CONNECTION_LOST error: something answered at the address and then hung up,
 * so "nothing answered" would be false; a change asked for may have taken effect, which the user
 * checks before repeating it (a second `delegate` would start the task twice).
 */
export function connectionLostHint(target: BrokerTarget): string {
  const serve = serveCommandFor(target);
  const restart = serve ? ` (\`${serve}\` starts it again)` : '';
  return `The broker at ${target.url} may have stopped or crashed while it handled the request. Once a broker answers there${restart}, see with \`agentvm ls\` whether a change took effect before you run the command again; the broker's log says why it closed the connection.`;
}

/**
 * The `agentvm serve` command that listens where `target` points, if it is a plain http://
 * address. It names the port unless it is the default, since serve takes AGENTVM_PORT too.
 */
function serveCommandFor(target: BrokerTarget): string | undefined {
  const parsed = new URL(target.url);
  if (parsed.protocol !== 'http:' || parsed.pathname.replace(/\/+$/, '') !== '') return undefined;

  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  const words = ['agentvm serve'];
  if (host !== '127.0.0.1' && host !== 'localhost') words.push(`--host ${host}`);
  if (target.source !== 'default') words.push(`--port ${parsed.port || 80}`);
  return words.join(' ');
}

/**
 * Refuses an empty or blank agent id before anything is sent: in a URL path it names no agent but
 * another API path (`agentvm review ''` met `NOT_FOUND: no such API path`).
 */
export function checkAgentIds(command: string, ids: readonly string[]): void {
  const blank = ids.find((id) => id.trim() === '');
  if (blank === undefined) return;

  throw new AgentvmError(
    'BAD_USAGE',
    blank === '' ? 'the agent id is empty' : `the agent id ${JSON.stringify(blank)} is blank`,
    `Pass the id of an agent as \`agentvm ls\` lists it: \`agentvm ${command} ID\`.`,
  );
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

function readToken(): { token: string; source: TokenSource } {
  if (process.env.AGENTVM_TOKEN) {
    return { token: process.env.AGENTVM_TOKEN, source: { from: 'AGENTVM_TOKEN' } };
  }

  const file = tokenPath(dataDir());
  try {
    return { token: fs.readFileSync(file, 'utf8').trim(), source: { from: 'file', path: file } };
  } catch {
    throw new AgentvmError(
      'UNAUTHORIZED',
      `no broker token: AGENTVM_TOKEN is not set and ${file} does not exist`,
      'Start the broker once with `agentvm serve` (it writes the token file); if one runs with another data directory, give the CLI the same one (--data-dir DIR or AGENTVM_DATA_DIR), or set AGENTVM_TOKEN.',
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

/** `value` as indented JSON on stdout. */
export function printJson(value: unknown): void {
  out(jsonText(value, 2));
}

/** `value` as JSON on one line of stdout: one record of a stream (`logs -f --json`). */
export function jsonLine(value: unknown): void {
  out(jsonText(value));
}

/**
 * JSON.stringify escapes C0 controls but writes DEL, C1 controls and invisible format characters
 * (bidirectional overrides, zero-width space…) as they are; they are escaped here too (`\u009b`,
 * `\u202e`), which parses back to the same value.
 */
function jsonText(value: unknown, indent?: number): string {
  return escapeJsonText(JSON.stringify(value, null, indent));
}

/** An error as the CLI shows it: `error [CODE]: message` and a `hint:` line, on stderr. */
export function printError(error: AgentvmError): void {
  note(`error [${error.code}]: ${error.message}`);
  note(`  hint: ${error.hint}`);
}

/**
 * An error as `--json` shows it: its body (`{"error":{"code","message","hint"}}`) as one line of
 * JSON on stderr, so that stdout holds results only and a script reads one object per line.
 */
export function printJsonError(error: AgentvmError): void {
  note(jsonText(error.toBody()));
}

/**
 * Runs a command action: an AgentvmError becomes one message with its code and hint (or, when
 * the command was given --json, its JSON body on one line) and the matching exit code. Both go to
 * stderr.
 */
export function action<A extends unknown[]>(run: (...args: A) => Promise<number | void>) {
  return async (...args: A): Promise<void> => {
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
      if (wantsJson(args)) printJsonError(failure);
      else printError(failure);
      process.exitCode = exitCodeFor(failure.code);
    }
  };
}

/**
 * Whether the command was given --json, from its parsed options: commander passes the command
 * itself as an action's last argument. (Not from process.argv, where `exec ID -- cmd --json` holds
 * the word too.)
 */
function wantsJson(args: readonly unknown[]): boolean {
  const command = args.at(-1) as { opts?: () => Record<string, unknown> } | undefined;
  return typeof command?.opts === 'function' && command.opts().json === true;
}
