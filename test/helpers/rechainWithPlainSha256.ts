import type Database from 'better-sqlite3';
import { chainHash, toEntry, type AuditRow } from '../../server/policy/audit/AuditLog';

/**
 * What someone with write access to broker.db but not to the audit key can do: recompute the hash
 * chain with plain sha256 from row `fromId` on, marking those rows unkeyed when `markUnkeyed`.
 */
export function rechainWithPlainSha256(
  db: Database.Database,
  fromId: number,
  markUnkeyed: boolean,
): void {
  const rows = db.prepare('SELECT * FROM audit ORDER BY id').all() as AuditRow[];
  let previous = '0'.repeat(64);
  for (const row of rows) {
    if (row.id >= fromId) {
      const { hash: _stored, ...content } = toEntry(row);
      db.prepare('UPDATE audit SET hash = ?, chain = ? WHERE id = ?').run(
        chainHash('sha256', undefined, previous, content),
        markUnkeyed ? 'sha256' : row.chain,
        row.id,
      );
    }
    previous = db.prepare('SELECT hash FROM audit WHERE id = ?').pluck().get(row.id) as string;
  }
}
