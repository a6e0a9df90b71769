import Database from 'better-sqlite3';
import type { Store } from '../../../server/store/Store';

/** A switch for a store's file system: while `full`, every write SQLite is asked for fails. */
export interface FullDisk {
  full: boolean;
  /** Writes refused since the switch was made. */
  refused: number;
  /**
   * Roll the open transaction back as the write is refused, as SQLite may do by itself on
   * SQLITE_FULL: what the transaction wrote is gone, and so are the ids it handed out.
   */
  rollsBack: boolean;
  /** The error writes fail with: SQLite's for a full disk unless a test sets another. */
  failure: { message: string; code: string };
}

/**
 * Makes `store`'s writes fail with the error better-sqlite3 throws when the file system has no
 * room (SqliteError SQLITE_FULL, "database or disk is full") whenever the returned switch is on.
 * The failure is injected where SQL statements are prepared, so every INSERT, UPDATE and DELETE
 * the store (or anything sharing its database) runs is refused; reads go on, as they do on a full
 * disk. A real full disk needs a small mount, which unit tests cannot make without root.
 */
export function fullDiskFor(store: Store): FullDisk {
  const disk: FullDisk = {
    full: false,
    refused: 0,
    rollsBack: false,
    failure: { message: 'database or disk is full', code: 'SQLITE_FULL' },
  };
  const db = store.db;
  const prepare = db.prepare.bind(db);
  db.prepare = ((source: string) => {
    const statement = prepare(source);
    if (!/^\s*(INSERT|UPDATE|DELETE|REPLACE)\b/i.test(source)) return statement;

    const run = statement.run.bind(statement);
    statement.run = ((...parameters: unknown[]) => {
      if (disk.full) {
        disk.refused++;
        if (disk.rollsBack && db.inTransaction) db.exec('ROLLBACK');
        throw new Database.SqliteError(disk.failure.message, disk.failure.code);
      }

      return run(...parameters);
    }) as typeof statement.run;
    return statement;
  }) as typeof db.prepare;
  return disk;
}
