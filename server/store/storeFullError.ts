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
