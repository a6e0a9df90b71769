import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { AgentvmError } from '../../protocol/errors';
import { migrations } from './migrations';

/**
 * Opens (or creates) the store's SQLite file, readable by its owner only, in WAL mode, and brings
 * its schema up to date. STORE_CORRUPT when the file is damaged, not a database, or from a newer
 * agentvm; the file is left as it was.
 */
export function openStoreDatabase(file: string): Database.Database {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  restrictToOwner(file);
  const db = new Database(file);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    migrate(db);
  } catch (error) {
    db.close();
    if (error instanceof AgentvmError) throw error;

    // SQLite reports a damaged or foreign file only on first use; name the file, not "a bug".
    const reason = (error as Error).message;
    throw new AgentvmError('STORE_CORRUPT', `cannot open the store ${file}: ${reason}`);
  }
  return db;
}

function migrate(db: Database.Database): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > migrations.length) {
    throw new AgentvmError(
      'STORE_CORRUPT',
      `the store is from a newer agentvm (schema ${current}; this one knows up to ${migrations.length})`,
    );
  }

  for (let version = current; version < migrations.length; version++) {
    db.transaction(() => {
      db.exec(migrations[version]);
      db.pragma(`user_version = ${version + 1}`);
    })();
  }
}

/**
 * Creates the database file 0600 before SQLite opens it (SQLite gives its -wal and -shm files the
 * database file's mode) and takes group and other access away from files an older broker left.
 */
function restrictToOwner(file: string): void {
  fs.closeSync(fs.openSync(file, 'a', 0o600));
  for (const candidate of [file, `${file}-wal`, `${file}-shm`]) {
    const stat = fs.statSync(candidate, { throwIfNoEntry: false });
    if (stat && (stat.mode & 0o077) !== 0) fs.chmodSync(candidate, stat.mode & 0o600);
  }
}
