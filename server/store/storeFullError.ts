import path from 'node:path';
import { AgentvmError } from '../../protocol/errors';

/**
 * True for a write that failed for lack of room (SQLite's SQLITE_FULL, "database or disk is
 * full"; ENOSPC or EDQUOT from the file system) or an I/O error on the store's file system
 * (SQLITE_IOERR and its extended codes), after which a later write may well succeed.
 */
export function isDiskFullError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return false;

  return ['SQLITE_FULL', 'ENOSPC', 'EDQUOT'].includes(code) || code.startsWith('SQLITE_IOERR');
}

/**
 * The one error callers get while the store (or another file of the broker's under `dir`, the data
 * directory) cannot be written: DISK_FULL, with a hint that names the file system to free.
 */
export function storeFullError(
  file: string,
  cause: unknown,
  dir = path.dirname(file),
): AgentvmError {
  const reason = cause instanceof Error ? cause.message : String(cause);
  const code = (cause as { code?: unknown } | null)?.code;
  const known = typeof code === 'string' && !reason.includes(code) ? ` (${code})` : '';
  return new AgentvmError(
    'DISK_FULL',
    `the broker cannot write ${file}: ${reason}${known}`,
    `Free space on the file system of ${dir} (\`df -h ${dir}\`), then try again. Agents go on: the broker holds their changes in memory and writes them once there is room; \`agentvm rm\` frees an agent's disk.`,
  );
}

/** SQLite's codes for a database file that is damaged or not a database at all. */
const CORRUPT_CODES = ['SQLITE_CORRUPT', 'SQLITE_NOTADB'];

/** SQLite's codes for a file it may not write now: permissions, a read-only mount, a lock. */
const UNWRITABLE_PREFIXES = [
  'SQLITE_READONLY',
  'SQLITE_BUSY',
  'SQLITE_LOCKED',
  'SQLITE_PERM',
  'SQLITE_CANTOPEN',
];

/**
 * The error callers get while changes held for a full disk still cannot be written: DISK_FULL
 * while that is the cause, otherwise what the cause really is, so that nobody is told to free
 * space on a disk with room (a locked, read-only or damaged database, or a bug of the broker's).
 */
export function heldWriteError(file: string, cause: unknown): AgentvmError {
  if (isDiskFullError(cause)) return storeFullError(file, cause);

  const reason = cause instanceof Error ? cause.message : String(cause);
  const code = (cause as { code?: unknown } | null)?.code;
  const sqliteCode = typeof code === 'string' ? code : '';
  const detail = `the broker cannot write the changes it holds to ${file}: ${reason}${sqliteCode && !reason.includes(sqliteCode) ? ` (${sqliteCode})` : ''}`;
  if (CORRUPT_CODES.some((prefix) => sqliteCode.startsWith(prefix))) {
    return new AgentvmError('STORE_CORRUPT', detail);
  }
  if (UNWRITABLE_PREFIXES.some((prefix) => sqliteCode.startsWith(prefix))) {
    return new AgentvmError('STORE_UNWRITABLE', detail);
  }
  return new AgentvmError(
    'INTERNAL',
    detail,
    'This is a bug in agentvm. The changes stay held in memory and are tried again; a broker restart recovers each agent from what was stored.',
  );
}
