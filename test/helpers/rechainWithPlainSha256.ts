import crypto from 'node:crypto';
import type Database from 'better-sqlite3';
import { canonicalJson } from '../../server/policy/audit/AuditLog';

/**
 * What someone with write access to broker.db but not to the audit key can do: recompute the hash
 * chain with plain sha256 from row `fromId` on, marking those rows unkeyed when `markUnkeyed`.
 */
export function rechainWithPlainSha256(
  db: Database.Database,
  fromId: number,
  markUnkeyed: boolean,
): void {
  const rows = db.prepare('SELECT * FROM audit ORDER BY id').all() as Array<Record<string, never>>;
  let previous = '0'.repeat(64);
  for (const row of rows) {
    if (row.id >= fromId) {
      const content = {
        id: row.id,
        at: row.at,
        actor: row.actor,
        agentId: row.agent_id,
        action: row.action,
        decision: row.decision,
        details: JSON.parse(row.details) as unknown,
      };
      const hash = crypto.createHash('sha256').update(previous).update(canonicalJson(content));
      db.prepare('UPDATE audit SET hash = ?, chain = ? WHERE id = ?').run(
        hash.digest('hex'),
        markUnkeyed ? 'sha256' : row.chain,
        row.id,
      );
    }
    previous = db.prepare('SELECT hash FROM audit WHERE id = ?').pluck().get(row.id) as string;
  }
}
