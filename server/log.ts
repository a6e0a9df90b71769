import { terminalSafe } from './cli/terminalSafe';

/**
 * The broker's structured logger: one JSON line per event on stderr (readable lines when stderr is
 * a terminal). Every value passes through {@link redact} before it is written, so a registered
 * secret (broker tokens, credentials) never reaches a log.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

const levelOrder: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
const secrets = new Set<string>();

/** Register a value that must never be logged. */
export function registerSecret(value: string): void {
  if (value.length >= 6) secrets.add(value);
}

/** Replace every registered secret in `text` with `[redacted]`. */
export function redact(text: string): string {
  let result = text;
  for (const secret of secrets) result = result.split(secret).join('[redacted]');
  return result;
}

export interface Logger {
  debug(event: string, fields?: Record<string, unknown>): void;
  info(event: string, fields?: Record<string, unknown>): void;
  warn(event: string, fields?: Record<string, unknown>): void;
  error(event: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
  /** Runs `operation`, then logs `event` with its duration (and the error, if it failed). */
  timed<T>(event: string, fields: Record<string, unknown>, operation: () => Promise<T>): Promise<T>;
}

export interface LoggerOptions {
  level?: LogLevel;
  /** Where lines go; stderr by default. */
  write?: (line: string) => void;
  pretty?: boolean;
}

export function createLogger(
  options: LoggerOptions = {},
  bound: Record<string, unknown> = {},
): Logger {
  const minimum = levelOrder[options.level ?? envLevel()];
  const pretty = options.pretty ?? process.stderr.isTTY === true;
  const write = options.write ?? ((line: string) => process.stderr.write(line + '\n'));

  const emit = (level: LogLevel, event: string, fields: Record<string, unknown> = {}) => {
    if (levelOrder[level] < minimum) return;

    const record = { time: new Date().toISOString(), level, event, ...bound, ...fields };
    write(redact(pretty ? formatPretty(record) : JSON.stringify(record, errorReplacer)));
  };

  const logger: Logger = {
    debug: (event, fields) => emit('debug', event, fields),
    info: (event, fields) => emit('info', event, fields),
    warn: (event, fields) => emit('warn', event, fields),
    error: (event, fields) => emit('error', event, fields),
    child: (fields) => createLogger(options, { ...bound, ...fields }),
    timed: async (event, fields, operation) => {
      const startedAt = performance.now();
      try {
        const value = await operation();
        emit('info', event, { ...fields, durationMs: Math.round(performance.now() - startedAt) });
        return value;
      } catch (error) {
        const durationMs = Math.round(performance.now() - startedAt);
        emit('warn', event, { ...fields, durationMs, error: (error as Error).message });
        throw error;
      }
    },
  };
  return logger;
}

function envLevel(): LogLevel {
  const value = process.env.AGENTVM_LOG_LEVEL;
  return value === 'debug' || value === 'warn' || value === 'error' ? value : 'info';
}

function errorReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) return { message: value.message, name: value.name };
  return value;
}

function formatPretty(record: Record<string, unknown>): string {
  const { time, level, event, ...rest } = record;
  const details = Object.entries(rest)
    .map(
      ([key, value]) =>
        `${key}=${typeof value === 'string' ? value : JSON.stringify(value, errorReplacer)}`,
    )
    .join(' ');
  // A terminal reads this line: text a guest wrote (its log lines, a console tail) must be shown,
  // not obeyed, as the CLI does.
  return terminalSafe(
    `${String(time).slice(11, 23)} ${String(level).padEnd(5)} ${event} ${details}`,
  );
}

/** A logger that writes nothing (tests, library callers). */
export const silentLogger: Logger = createLogger({ write: () => undefined });
