import crypto from 'node:crypto';
import type Database from 'better-sqlite3';
import type { AuditDecision, AuditEntry, AuditVerifyResult } from '../../../protocol/policy';
import { redactSecrets } from '../redactSecrets';
import { loadOrCreateAuditKey, type AuditKey } from './auditKey';

/** What a caller appends; id, time and hash are the log's. */
export interface AuditRecord {
  actor: string;
  agentId: string | null;
  action: string;
  decision: AuditDecision;
  /** Host, method, path, reason...; never bodies or secret values (values are redacted anyway). */
  details?: Record<string, unknown>;
  /** Milliseconds since the epoch; now by default. */
  at?: number;
}

export interface AuditQuery {
  agentId?: string;
  /** Only rows with an id greater than this. */
  afterId?: number;
  /** Most rows to return, newest last; 1000 by default. */
  limit?: number;
}

export interface AuditLogOptions {
  /**
   * The data directory whose audit key (see auditKey.ts) chains new rows with HMAC-SHA256. Without
   * it rows are chained with plain sha256, which only the keyless tests and older brokers do.
   */
  keyDir?: string;
}

/** How a row's hash was made; stored per row in the `chain` column. */
type ChainKind = 'sha256' | 'hmac-sha256';

/** Receives audit records; the egress proxy and the broker write through this. */
export type AuditSink = (record: AuditRecord) => void;

export interface AuditRow {
  id: number;
  at: number;
  actor: string;
  agent_id: string | null;
  action: string;
  decision: AuditDecision;
  details: string;
  hash: string;
  chain: ChainKind;
}

const GENESIS_HASH = '0'.repeat(64);

/**
 * The append-only, hash-chained audit log, in the table `audit` of the broker's database. Each
 * row's hash is HMAC-SHA256 under the data directory's audit key of (previous row's hash + the
 * row's canonical JSON), so editing or deleting a row breaks the chain from that row on, and
 * someone who can write broker.db but not read the key cannot forge a new chain. Triggers refuse
 * UPDATE and DELETE through SQL. Rows from before the key existed (older agentvm) keep their plain
 * sha256 links and are verified as such; the key file says where keyed rows begin, so a later row
 * cannot be passed off as an unkeyed one.
 *
 * Deleting the newest rows cannot be told apart from never writing them; keeping the head hash
 * somewhere else (the broker log) is what catches that.
 */
export class AuditLog {
  private readonly db: Database.Database;
  private readonly secretValues: () => Iterable<string>;
  private readonly insert: Database.Statement;
  private readonly lastRow: Database.Statement;
  private readonly key: AuditKey | null;

  /**
   * @param secretValues real secret values currently in use; any that slips into `details` is
   *   redacted before the row is written.
   */
  constructor(
    db: Database.Database,
    secretValues: () => Iterable<string> = () => [],
    options: AuditLogOptions = {},
  ) {
    this.db = db;
    this.secretValues = secretValues;
    db.exec(`
      CREATE TABLE IF NOT EXISTS audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        actor TEXT NOT NULL,
        agent_id TEXT,
        action TEXT NOT NULL,
        decision TEXT NOT NULL,
        details TEXT NOT NULL,
        hash TEXT NOT NULL
      );
      CREATE INDEX IF NOT EXISTS audit_agent ON audit (agent_id, id);
      CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
      CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    `);
    const columns = db.prepare('PRAGMA table_info(audit)').all() as Array<{ name: string }>;
    // Stores from before keyed chains: every existing row was chained with plain sha256.
    if (!columns.some((column) => column.name === 'chain'))
      db.exec("ALTER TABLE audit ADD COLUMN chain TEXT NOT NULL DEFAULT 'sha256'");

    this.insert = db.prepare(
      'INSERT INTO audit (id, at, actor, agent_id, action, decision, details, hash, chain) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    this.lastRow = db.prepare('SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1');
    this.key = options.keyDir
      ? loadOrCreateAuditKey(options.keyDir, () => this.nextKeyedId())
      : null;
  }

  /** The newest row's id and hash (id 0 and null for an empty log), for the broker log. */
  head(): { id: number; hash: string | null } {
    const last = this.lastRow.get() as { id: number; hash: string } | undefined;
    return { id: last?.id ?? 0, hash: last?.hash ?? null };
  }

  /** Append one row and return it. Safe to call from any handler: better-sqlite3 is synchronous. */
  append(record: AuditRecord): AuditEntry {
    const write = this.db.transaction((): AuditEntry => {
      const last = this.lastRow.get() as { id: number; hash: string } | undefined;
      const details = redactSecrets(record.details ?? {}, this.secretValues()) as Record<
        string,
        unknown
      >;
      const entry = {
        id: (last?.id ?? 0) + 1,
        at: record.at ?? Date.now(),
        actor: record.actor,
        agentId: record.agentId,
        action: record.action,
        decision: record.decision,
        details,
      };
      const chain: ChainKind = this.key ? 'hmac-sha256' : 'sha256';
      const hash = chainHash(chain, this.key?.key, last?.hash ?? GENESIS_HASH, entry);
      this.insert.run(
        entry.id,
        entry.at,
        entry.actor,
        entry.agentId,
        entry.action,
        entry.decision,
        canonicalJson(details),
        hash,
        chain,
      );
      return { ...entry, hash };
    });
    return write();
  }

  /** A sink bound to this log, for components that only write. */
  get sink(): AuditSink {
    return (record) => void this.append(record);
  }

  /** Rows in id order, optionally for one agent. */
  list(query: AuditQuery = {}): AuditEntry[] {
    const limit = query.limit ?? 1000;
    const afterId = query.afterId ?? 0;
    const rows = (
      query.agentId === undefined
        ? this.db
            .prepare('SELECT * FROM audit WHERE id > ? ORDER BY id DESC LIMIT ?')
            .all(afterId, limit)
        : this.db
            .prepare('SELECT * FROM audit WHERE agent_id = ? AND id > ? ORDER BY id DESC LIMIT ?')
            .all(query.agentId, afterId, limit)
    ) as AuditRow[];
    return rows.reverse().map(toEntry);
  }

  /**
   * Recompute the whole chain. Returns the first row whose stored hash does not match: the edited
   * row itself, or for a deleted row the one after the gap. Rows from the key's first row on must
   * be keyed; earlier rows (an older agentvm's) are checked with plain sha256 and counted.
   */
  verify(): AuditVerifyResult {
    let previousHash = GENESIS_HASH;
    let previousId = 0;
    let rowsChecked = 0;
    let unkeyedRows = 0;

    for (const row of this.db
      .prepare('SELECT * FROM audit ORDER BY id')
      .iterate() as Iterable<AuditRow>) {
      rowsChecked++;
      const problem = this.rowProblem(row, previousHash, previousId);
      if (problem)
        return { ok: false, rowsChecked, firstBadRowId: row.id, reason: problem, unkeyedRows };

      if (row.chain === 'sha256') unkeyedRows++;
      previousHash = row.hash;
      previousId = row.id;
    }
    return { ok: true, rowsChecked, firstBadRowId: null, reason: null, unkeyedRows };
  }

  private rowProblem(row: AuditRow, previousHash: string, previousId: number): string | null {
    const mustBeKeyed = this.key !== null && row.id >= this.key.keyedFromId;
    if (mustBeKeyed && row.chain !== 'hmac-sha256') {
      return `row ${row.id} claims an unkeyed hash, but every row from ${this.key!.keyedFromId} on is keyed: the chain was rewritten`;
    }

    if (row.chain !== 'sha256' && row.chain !== 'hmac-sha256') {
      return `row ${row.id} has an unknown chain kind "${String(row.chain)}"`;
    }

    if (row.chain === 'hmac-sha256' && !this.key) {
      return `row ${row.id} is keyed, but this log was opened without the audit key`;
    }

    // Rows are stored as the canonical JSON that was hashed. Text that parses to the hashed content
    // but reads otherwise (a repeated key, which JSON.parse resolves to the last value and SQL's
    // json_extract to the first) was edited as surely as a changed value.
    let canonical: string | undefined;
    try {
      canonical = canonicalJson(JSON.parse(row.details));
    } catch {
      canonical = undefined;
    }
    if (canonical !== row.details) {
      return `row ${row.id} was edited: its stored details are not the text that was hashed`;
    }

    const { hash, ...content } = toEntry(row);
    if (chainHash(row.chain, this.key?.key, previousHash, content) === hash) return null;

    return row.id !== previousId + 1
      ? `row ${row.id} does not follow row ${previousId}: rows ${previousId + 1}..${row.id - 1} were deleted`
      : `row ${row.id} was edited, or the row before it was replaced`;
  }

  /** Where a key created now starts: the first keyed row already here (its key was lost), else the next row. */
  private nextKeyedId(): number {
    const keyed = this.db
      .prepare("SELECT id FROM audit WHERE chain = 'hmac-sha256' ORDER BY id LIMIT 1")
      .get() as { id: number } | undefined;
    return keyed?.id ?? this.head().id + 1;
  }
}

/** A stored row as the entry it records (its hashed content plus the hash). */
export function toEntry(row: AuditRow): AuditEntry {
  return {
    id: row.id,
    at: row.at,
    actor: row.actor,
    agentId: row.agent_id,
    action: row.action,
    decision: row.decision,
    details: JSON.parse(row.details) as Record<string, unknown>,
    hash: row.hash,
  };
}

/** The hash of `entry` chained onto `previousHash`: HMAC with the audit key, or plain sha256. */
export function chainHash(
  chain: ChainKind,
  key: Buffer | undefined,
  previousHash: string,
  entry: Omit<AuditEntry, 'hash'>,
): string {
  const digest =
    chain === 'hmac-sha256' && key ? crypto.createHmac('sha256', key) : crypto.createHash('sha256');
  return digest.update(previousHash).update(canonicalJson(entry)).digest('hex');
}

/** JSON with object keys sorted at every depth, so equal content always hashes the same. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value === null || typeof value !== 'object') return value;

  const sorted: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) {
    const item = (value as Record<string, unknown>)[key];
    if (item !== undefined) sorted[key] = sortKeys(item);
  }
  return sorted;
}
