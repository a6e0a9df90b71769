import type Database from 'better-sqlite3';
import { createHash, randomBytes } from 'node:crypto';
import type { Agent, AgentEvent, AgentState, Profile } from '../../protocol/api';
import type { SnapshotInfo } from '../vmm/VmmDriver';
import type { AgentvmError } from '../../protocol/errors';
import { fromAgentRow, toAgentRow, type Row } from './agentRow';
import { openStoreDatabase } from './openStoreDatabase';
import { isDiskFullError, storeFullError } from './storeFullError';
import { WriteHolding, type StoreWriteStatus } from './WriteHolding';

export { isDiskFullError, storeFullError } from './storeFullError';
export type { StoreWriteStatus } from './WriteHolding';

/** An agent row: the public {@link Agent} plus what only the broker needs. */
export interface AgentRecord extends Agent {
  profileSpec: Profile;
  vmPid: number | null;
  /** Highest guest event seq persisted; sent as `hello.lastSeq` on reconnect. */
  guestSeq: number;
  snapshot: SnapshotInfo | null;
  exitCode: number | null;
  issueRef: string | null;
  vmSeconds: number;
}

export type NewEvent = Omit<AgentEvent, 'id' | 'agentId' | 'at' | 'data'> & {
  data?: Record<string, unknown>;
  at?: number;
};

/**
 * The broker's SQLite store (better-sqlite3, WAL). Synchronous by design: every call is one short
 * transaction, so a broker killed at any instant leaves a consistent file. When the file system is
 * full, its writes are held in memory by a {@link WriteHolding} (see {@link writeFailure}).
 */
export class Store {
  readonly db: Database.Database;
  private readonly holding: WriteHolding;

  constructor(private readonly file: string) {
    this.db = openStoreDatabase(file);
    this.holding = new WriteHolding(this.db, file, {
      updateRow: (record) => this.updateRow(record),
      deleteRows: (id) => this.deleteRows(id),
      insertEvent: (agentId, event) => this.insertEvent(agentId, event),
    });
  }

  get schemaVersion(): number {
    return this.db.pragma('user_version', { simple: true }) as number;
  }

  /**
   * Closes the database, after a last try at writing what is held; what still cannot be written
   * is reported `lost` (the next broker start recovers each agent from what was stored).
   */
  close(): void {
    this.holding.close();
    if (!this.db.open) return;

    this.db.close();
  }

  // ---- writes when the file system is full

  /**
   * Why the store cannot write at the moment (its file system is full, or failed a write), or null.
   * While it is set, agent changes and timeline entries are held in memory: reads return them as
   * if stored, and they are written, in order, as soon as SQLite takes writes again.
   */
  get writeFailure(): AgentvmError | null {
    return this.holding.failure;
  }

  /**
   * For operations that start new work: writes what is held now and throws the store's
   * {@link writeFailure} when that is still impossible.
   */
  requireWritable(): void {
    this.holding.requireWritable();
  }

  /** Calls `listener` with every {@link StoreWriteStatus}; returns a function that unsubscribes. */
  onWriteStatus(listener: (status: StoreWriteStatus) => void): () => void {
    return this.holding.onStatus(listener);
  }

  // ---- users and tokens

  /** Creates the user if needed and a new token for it; returns the token (stored hashed only). */
  createToken(user: string, admin = false): string {
    const token = `avm_${randomBytes(24).toString('hex')}`;
    this.db.transaction(() => {
      this.db
        .prepare(
          'INSERT INTO users (name, admin, created_at) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET admin = max(admin, excluded.admin)',
        )
        .run(user, admin ? 1 : 0, Date.now());
      this.db
        .prepare('INSERT INTO tokens (token_hash, user, created_at) VALUES (?, ?, ?)')
        .run(hashToken(token), user, Date.now());
    })();
    return token;
  }

  userForToken(token: string): { user: string; admin: boolean } | null {
    const row = this.db
      .prepare(
        'SELECT u.name, u.admin FROM tokens t JOIN users u ON u.name = t.user WHERE t.token_hash = ?',
      )
      .get(hashToken(token)) as Row | undefined;
    return row ? { user: String(row.name), admin: row.admin === 1 } : null;
  }

  // ---- agents

  /** Inserts a new agent; the store's write failure when it cannot (nothing is held for it). */
  insertAgent(agent: AgentRecord): void {
    this.requireWritable();
    try {
      this.insertRow(agent);
    } catch (error) {
      if (isDiskFullError(error)) throw storeFullError(this.file, error);

      throw error;
    }
  }

  private insertRow(agent: AgentRecord): void {
    this.db
      .prepare(
        `INSERT INTO agents (id, owner, title, text, profile, profile_json, state, state_reason,
          created_at, updated_at, ended_at, repo_json, review_json, last_progress, last_output_json,
          result_json, boot_path, accel, vm_pid, guest_seq, snapshot_json, exit_code, issue_ref, vm_seconds)
        VALUES (@id, @owner, @title, @text, @profile, @profile_json, @state, @state_reason,
          @created_at, @updated_at, @ended_at, @repo_json, @review_json, @last_progress, @last_output_json,
          @result_json, @boot_path, @accel, @vm_pid, @guest_seq, @snapshot_json, @exit_code, @issue_ref, @vm_seconds)`,
      )
      .run(toAgentRow(agent));
  }

  getAgent(id: string): AgentRecord | null {
    const held = this.holding.held.agent(id);
    if (held !== undefined) return held;

    const row = this.db.prepare('SELECT * FROM agents WHERE id = ?').get(id) as Row | undefined;
    return row ? fromAgentRow(row) : null;
  }

  listAgents(owner?: string): AgentRecord[] {
    const rows = owner
      ? this.db.prepare('SELECT * FROM agents WHERE owner = ? ORDER BY created_at DESC').all(owner)
      : this.db.prepare('SELECT * FROM agents ORDER BY created_at DESC').all();
    return this.withHeld((rows as Row[]).map(fromAgentRow));
  }

  agentsInStates(states: readonly AgentState[]): AgentRecord[] {
    if (this.writeFailure) {
      // A held change may have moved an agent into or out of `states`.
      const all = this.db.prepare('SELECT * FROM agents ORDER BY created_at').all() as Row[];
      return this.withHeld(all.map(fromAgentRow)).filter((record) => states.includes(record.state));
    }

    const marks = states.map(() => '?').join(',');
    const rows = this.db
      .prepare(`SELECT * FROM agents WHERE state IN (${marks}) ORDER BY created_at`)
      .all(...states);
    return (rows as Row[]).map(fromAgentRow);
  }

  /** `records` as they are with the held changes applied (removed agents left out). */
  private withHeld(records: AgentRecord[]): AgentRecord[] {
    if (!this.writeFailure) return records;

    return records.flatMap((record) => {
      const held = this.holding.held.agent(record.id);
      if (held === undefined) return [record];
      return held ? [held] : [];
    });
  }

  /**
   * Writes the changed fields; returns the updated record. When the file system is full the record
   * is held in memory and written later (see {@link writeFailure}); this does not throw for that.
   */
  updateAgent(id: string, changes: Partial<AgentRecord>): AgentRecord {
    const current = this.getAgent(id);
    if (!current) throw new Error(`agent ${id} vanished from the store`);

    const next: AgentRecord = { ...current, ...changes, updatedAt: Date.now() };
    this.holding.write(
      id,
      () => this.updateRow(next),
      () => this.holding.held.putAgent(next),
    );
    return next;
  }

  private updateRow(record: AgentRecord): void {
    const row = toAgentRow(record);
    const columns = Object.keys(row).filter((column) => column !== 'id');
    this.db
      .prepare(
        `UPDATE agents SET ${columns.map((column) => `${column} = @${column}`).join(', ')} WHERE id = @id`,
      )
      .run(row);
  }

  deleteAgent(id: string): void {
    this.holding.write(
      id,
      () => this.db.transaction(() => this.deleteRows(id))(),
      () => this.holding.held.removeAgent(id),
    );
  }

  private deleteRows(id: string): void {
    this.db.prepare('DELETE FROM events WHERE agent_id = ?').run(id);
    this.db.prepare('DELETE FROM agents WHERE id = ?').run(id);
  }

  // ---- events

  /**
   * Appends a timeline entry and returns it with its id. When the file system is full the entry
   * is held in memory under the id it will be written with (see {@link writeFailure}).
   */
  appendEvent(agentId: string, event: NewEvent): AgentEvent {
    const at = event.at ?? Date.now();
    const data = event.data ?? {};
    const stored: AgentEvent = {
      id: 0,
      agentId,
      at,
      kind: event.kind,
      message: event.message,
      data,
    };
    this.holding.write(
      agentId,
      () => {
        stored.id = this.insertEvent(agentId, stored).id;
      },
      () => {
        // Inside a transaction that failed, the id SQLite gave is kept: it was handed out already.
        if (stored.id === 0) stored.id = this.holding.held.allocateId(() => this.lastEventId());
        this.holding.held.putEvent(stored);
      },
    );
    return stored;
  }

  /** Inserts one entry, under `event.id` when it has one. */
  private insertEvent(agentId: string, event: NewEvent & { id?: number }): AgentEvent {
    const at = event.at ?? Date.now();
    const data = event.data ?? {};
    const info = this.db
      .prepare(
        'INSERT INTO events (id, agent_id, at, kind, message, data_json) VALUES (?, ?, ?, ?, ?, ?)',
      )
      .run(event.id || null, agentId, at, event.kind, event.message, JSON.stringify(data));
    return {
      id: Number(info.lastInsertRowid),
      agentId,
      at,
      kind: event.kind,
      message: event.message,
      data,
    };
  }

  /** The highest event id SQLite handed out, including ids of rows deleted since. */
  private lastEventId(): number {
    const row = this.db
      .prepare(
        "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0), coalesce((SELECT max(id) FROM events), 0)) AS id",
      )
      .get() as { id: number };
    return Number(row.id);
  }

  /** Each agent's highest stored event id (read at broker start, when nothing is held). */
  newestEventIds(): Map<string, number> {
    const rows = this.db
      .prepare('SELECT agent_id AS agentId, max(id) AS id FROM events GROUP BY agent_id')
      .all() as Array<{ agentId: string; id: number }>;
    return new Map(rows.map((row) => [row.agentId, Number(row.id)]));
  }

  events(agentId: string, afterId = 0, limit = 10_000): AgentEvent[] {
    const stored = this.storedEvents(agentId, afterId, limit);
    if (!this.writeFailure) return stored;

    // Held entries have ids above every stored one.
    return [...stored, ...this.holding.held.eventsOf(agentId, afterId, limit - stored.length)];
  }

  private storedEvents(agentId: string, afterId: number, limit: number): AgentEvent[] {
    const rows = this.db
      .prepare('SELECT * FROM events WHERE agent_id = ? AND id > ? ORDER BY id LIMIT ?')
      .all(agentId, afterId, limit) as Row[];
    return rows.map((row) => ({
      id: Number(row.id),
      agentId: String(row.agent_id),
      at: Number(row.at),
      kind: row.kind as AgentEvent['kind'],
      message: String(row.message),
      data: JSON.parse(String(row.data_json)),
    }));
  }

  /**
   * How much output text the agent's timeline holds (bytes of UTF-8), and whether it already says
   * the output passed the stored-output cap: where a broker that restarted takes up the count.
   * Entries held in memory during a full disk are counted too.
   */
  storedOutput(agentId: string): { bytes: number; capped: boolean } {
    const row = this.db
      .prepare(
        `SELECT
           coalesce(sum(CASE WHEN kind = 'output' THEN length(CAST(message AS BLOB)) END), 0) AS bytes,
           count(CASE WHEN kind = 'limit' AND json_extract(data_json, '$.limit') = 'output' THEN 1 END) AS notices
         FROM events WHERE agent_id = ?`,
      )
      .get(agentId) as { bytes: number; notices: number };
    let bytes = Number(row.bytes);
    let capped = Number(row.notices) > 0;
    if (this.writeFailure) {
      for (const event of this.holding.held.eventsOf(agentId, 0, Number.MAX_SAFE_INTEGER)) {
        if (event.kind === 'output') bytes += Buffer.byteLength(event.message, 'utf8');
        if (event.kind === 'limit' && event.data.limit === 'output') capped = true;
      }
    }
    return { bytes, capped };
  }

  /**
   * Runs `work` in one transaction (e.g. persist guest events and the new seq together). When its
   * writes do not fit on the file system, they are held in memory as a whole, in order, and
   * written later (see {@link writeFailure}); `work` is not run again.
   */
  transaction<T>(work: () => T): T {
    return this.holding.transaction(work);
  }
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** The public view of an agent record (what the API returns). */
export function publicAgent(record: AgentRecord): Agent {
  const { profileSpec, vmPid, guestSeq, snapshot, exitCode, issueRef, vmSeconds, ...agent } =
    record;
  (void profileSpec, vmPid, guestSeq, snapshot, exitCode, issueRef, vmSeconds);
  return agent;
}
