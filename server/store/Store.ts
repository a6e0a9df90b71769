import Database from 'better-sqlite3';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Agent, AgentEvent, AgentState, Profile, RepoInfo } from '../../protocol/api';
import type { SnapshotInfo } from '../vmm/VmmDriver';
import { AgentvmError } from '../../protocol/errors';
import { DeferredWrites } from './DeferredWrites';
import { migrations } from './migrations';

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

type Row = Record<string, unknown>;

/**
 * What the store reports about its writes: an agent's change could not be written and is held in
 * memory (once per agent and outage), everything held was written, or what was held is lost
 * because the store closed before it could write it.
 */
export type StoreWriteStatus =
  | { kind: 'deferred'; agentId: string; error: AgentvmError }
  | { kind: 'written'; agentIds: string[]; notes: AgentEvent[] }
  | { kind: 'lost'; agentIds: string[]; error: AgentvmError };

/** First wait before writing held changes again, in milliseconds; doubled up to the maximum. */
const RETRY_FIRST_MS = 250;
const RETRY_MAX_MS = 5_000;

/** A held write: keeps one change in memory (see {@link DeferredWrites}). */
interface HeldWrite {
  agentId: string;
  hold(): void;
}

/**
 * The broker's SQLite store (better-sqlite3, WAL). Synchronous by design: every call is one short
 * transaction, so a broker killed at any instant leaves a consistent file.
 */
export class Store {
  readonly db: Database.Database;

  /** Changes the file system had no room for (see {@link writeFailure}). */
  private readonly deferred = new DeferredWrites();
  private failure: AgentvmError | null = null;
  private readonly deferredAgents = new Set<string>();
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelayMs = RETRY_FIRST_MS;
  /** The writes of the {@link transaction} under way, to hold if its commit fails. */
  private transactionWrites: { writes: HeldWrite[]; failure: unknown } | null = null;
  private readonly statusListeners = new Set<(status: StoreWriteStatus) => void>();

  constructor(private readonly file: string) {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    restrictToOwner(file);
    this.db = new Database(file);
    try {
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL');
      this.db.pragma('foreign_keys = ON');
      this.migrate();
    } catch (error) {
      this.db.close();
      if (error instanceof AgentvmError) throw error;

      // SQLite reports a damaged or foreign file only on first use; name the file, not "a bug".
      const reason = (error as Error).message;
      throw new AgentvmError('STORE_CORRUPT', `cannot open the store ${file}: ${reason}`);
    }
  }

  get schemaVersion(): number {
    return this.db.pragma('user_version', { simple: true }) as number;
  }

  private migrate(): void {
    const current = this.schemaVersion;
    if (current > migrations.length) {
      throw new AgentvmError(
        'STORE_CORRUPT',
        `the store is from a newer agentvm (schema ${current}; this one knows up to ${migrations.length})`,
      );
    }

    for (let version = current; version < migrations.length; version++) {
      this.db.transaction(() => {
        this.db.exec(migrations[version]);
        this.db.pragma(`user_version = ${version + 1}`);
      })();
    }
  }

  /**
   * Closes the database, after a last try at writing what is held; what still cannot be written
   * is reported `lost` (the next broker start recovers each agent from what was stored).
   */
  close(): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (!this.db.open) return;

    const failure = this.failure;
    if (failure && !this.tryWriteDeferred()) {
      this.notify({ kind: 'lost', agentIds: this.deferred.agentIds(), error: failure });
    }
    this.db.close();
  }

  // ---- writes when the file system is full

  /**
   * Why the store cannot write at the moment (its file system is full, or failed a write), or null.
   * While it is set, agent changes and timeline entries are held in memory: reads return them as
   * if stored, and they are written, in order, as soon as SQLite takes writes again.
   */
  get writeFailure(): AgentvmError | null {
    return this.failure;
  }

  /**
   * For operations that start new work: writes what is held now and throws the store's
   * {@link writeFailure} when that is still impossible.
   */
  requireWritable(): void {
    if (this.failure && !this.tryWriteDeferred()) throw this.failure;
  }

  /** Calls `listener` with every {@link StoreWriteStatus}; returns a function that unsubscribes. */
  onWriteStatus(listener: (status: StoreWriteStatus) => void): () => void {
    this.statusListeners.add(listener);
    return () => this.statusListeners.delete(listener);
  }

  /**
   * Runs one write of the agent's; when the file system has no room, `hold` keeps the change in
   * memory instead. While changes are held, new ones are held behind them without asking SQLite,
   * so that they are written in the order they happened, and an output flood does not turn into a
   * flood of failing disk writes: only the retry timer (and {@link requireWritable}) try again.
   */
  private write(agentId: string, apply: () => void, hold: () => void): void {
    if (this.failure) {
      this.keep({ agentId, hold });
      return;
    }

    const transaction = this.transactionWrites;
    if (transaction) {
      transaction.writes.push({ agentId, hold });
      if (transaction.failure) return;

      try {
        apply();
      } catch (error) {
        if (!isDiskFullError(error)) throw error;

        // SQLite may have rolled the transaction back already: what it wrote so far is held at
        // once, so that the rest of `work` reads it, and its later writes are held behind it.
        transaction.failure = error;
        this.startHolding(error);
        for (const write of transaction.writes.splice(0)) this.keep(write);
      }
      return;
    }

    try {
      apply();
    } catch (error) {
      if (!isDiskFullError(error)) throw error;

      this.startHolding(error);
      this.keep({ agentId, hold });
    }
  }

  private keep(write: HeldWrite): void {
    write.hold();
    if (this.deferredAgents.has(write.agentId)) return;

    this.deferredAgents.add(write.agentId);
    this.notify({ kind: 'deferred', agentId: write.agentId, error: this.failure! });
  }

  private startHolding(cause: unknown): void {
    this.failure ??= storeFullError(this.file, cause);
    this.scheduleRetry();
  }

  /**
   * Retries writing what is held, waiting 250 ms, then twice as long each time, up to 5 s, for as
   * long as it takes: each try is one small transaction, while giving up would leave an agent
   * that does nothing more (one awaiting review) recorded in its old state until the broker
   * restarts, which is what this is for.
   */
  private scheduleRetry(): void {
    if (this.retryTimer || !this.db.open) return;

    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.tryWriteDeferred()) return;

      this.retryDelayMs = Math.min(this.retryDelayMs * 2, RETRY_MAX_MS);
      this.scheduleRetry();
    }, this.retryDelayMs);
    this.retryTimer.unref();
  }

  /** Writes everything held in one transaction; false while that is still impossible. */
  private tryWriteDeferred(): boolean {
    if (!this.failure) return true;

    let notes: AgentEvent[];
    try {
      notes = this.db.transaction(() => {
        for (const [id, record] of this.deferred.rows()) {
          if (record) this.updateRow(record);
          else this.deleteRows(id);
        }
        for (const event of this.deferred.heldEvents()) this.insertEvent(event.agentId, event);
        return [...this.deferred.dropped].map(([agentId, count]) =>
          this.insertEvent(agentId, {
            kind: 'info',
            message: `${count} output or progress entries were lost: the broker could not hold more while the store could not write`,
            at: Date.now(),
            data: { lostEntries: count },
          }),
        );
      })();
    } catch (error) {
      // The latest cause is the one callers should read; the held changes are kept either way.
      this.failure = storeFullError(this.file, error);
      return false;
    }

    const agentIds = this.deferred.agentIds();
    this.deferred.clear();
    this.deferredAgents.clear();
    this.failure = null;
    this.retryDelayMs = RETRY_FIRST_MS;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.notify({ kind: 'written', agentIds, notes });
    return true;
  }

  private notify(status: StoreWriteStatus): void {
    for (const listener of [...this.statusListeners]) listener(status);
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
      .run(toRow(agent));
  }

  getAgent(id: string): AgentRecord | null {
    const held = this.deferred.agent(id);
    if (held !== undefined) return held;

    const row = this.db.prepare('SELECT * FROM agents WHERE id = ?').get(id) as Row | undefined;
    return row ? fromRow(row) : null;
  }

  listAgents(owner?: string): AgentRecord[] {
    const rows = owner
      ? this.db.prepare('SELECT * FROM agents WHERE owner = ? ORDER BY created_at DESC').all(owner)
      : this.db.prepare('SELECT * FROM agents ORDER BY created_at DESC').all();
    return this.withHeld((rows as Row[]).map(fromRow));
  }

  agentsInStates(states: readonly AgentState[]): AgentRecord[] {
    if (this.failure) {
      // A held change may have moved an agent into or out of `states`.
      const all = this.db.prepare('SELECT * FROM agents ORDER BY created_at').all() as Row[];
      return this.withHeld(all.map(fromRow)).filter((record) => states.includes(record.state));
    }

    const marks = states.map(() => '?').join(',');
    const rows = this.db
      .prepare(`SELECT * FROM agents WHERE state IN (${marks}) ORDER BY created_at`)
      .all(...states);
    return (rows as Row[]).map(fromRow);
  }

  /** `records` as they are with the held changes applied (removed agents left out). */
  private withHeld(records: AgentRecord[]): AgentRecord[] {
    if (!this.failure) return records;

    return records.flatMap((record) => {
      const held = this.deferred.agent(record.id);
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
    this.write(
      id,
      () => this.updateRow(next),
      () => this.deferred.putAgent(next),
    );
    return next;
  }

  private updateRow(record: AgentRecord): void {
    const row = toRow(record);
    const columns = Object.keys(row).filter((column) => column !== 'id');
    this.db
      .prepare(
        `UPDATE agents SET ${columns.map((column) => `${column} = @${column}`).join(', ')} WHERE id = @id`,
      )
      .run(row);
  }

  deleteAgent(id: string): void {
    this.write(
      id,
      () => this.db.transaction(() => this.deleteRows(id))(),
      () => this.deferred.removeAgent(id),
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
    this.write(
      agentId,
      () => {
        stored.id = this.insertEvent(agentId, stored).id;
      },
      () => {
        // Inside a transaction that failed, the id SQLite gave is kept: it was handed out already.
        if (stored.id === 0) stored.id = this.deferred.allocateId(() => this.lastEventId());
        this.deferred.putEvent(stored);
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

  events(agentId: string, afterId = 0, limit = 10_000): AgentEvent[] {
    const stored = this.storedEvents(agentId, afterId, limit);
    if (!this.failure) return stored;

    // Held entries have ids above every stored one.
    return [...stored, ...this.deferred.eventsOf(agentId, afterId, limit - stored.length)];
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
   * Runs `work` in one transaction (e.g. persist guest events and the new seq together). When its
   * writes do not fit on the file system, they are held in memory as a whole, in order, and
   * written later (see {@link writeFailure}); `work` is not run again.
   */
  transaction<T>(work: () => T): T {
    if (this.failure || this.transactionWrites) return work();

    const transaction: { writes: HeldWrite[]; failure: unknown } = { writes: [], failure: null };
    this.transactionWrites = transaction;
    let finished = false;
    let result!: T;
    try {
      this.db.transaction(() => {
        result = work();
        finished = true;
        if (transaction.failure) throw transaction.failure;
      })();
      return result;
    } catch (error) {
      if (!finished || !isDiskFullError(error)) throw error;

      // A statement found no room (its writes are held already) or the commit did: SQLite rolled
      // the transaction back, so what it wrote is held.
      if (!transaction.failure) this.startHolding(error);
      for (const write of transaction.writes) this.keep(write);
      return result;
    } finally {
      this.transactionWrites = null;
    }
  }
}

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
 * directory) cannot be written. protocol/errors.ts has no code of its own for a full disk, so it
 * is STORE_CORRUPT's (the store cannot be used) with a hint that says what to do.
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
    'STORE_CORRUPT',
    `the broker cannot write ${file}: ${reason}${known}`,
    `Free space on the file system of ${dir} (\`df -h ${dir}\`), then try again. Agents go on: the broker holds their changes in memory and writes them once there is room; \`agentvm rm\` frees an agent's disk.`,
  );
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

function toRow(agent: AgentRecord): Row {
  return {
    id: agent.id,
    owner: agent.owner,
    title: agent.title,
    text: agent.text,
    profile: agent.profile,
    profile_json: JSON.stringify(agent.profileSpec),
    state: agent.state,
    state_reason: agent.stateReason,
    created_at: agent.createdAt,
    updated_at: agent.updatedAt,
    ended_at: agent.endedAt,
    repo_json: JSON.stringify(agent.repo),
    review_json: agent.review ? JSON.stringify(agent.review) : null,
    last_progress: agent.lastProgress,
    last_output_json: JSON.stringify(agent.lastOutput),
    result_json: agent.result ? JSON.stringify(agent.result) : null,
    boot_path: agent.bootPath,
    accel: agent.accel,
    vm_pid: agent.vmPid,
    guest_seq: agent.guestSeq,
    snapshot_json: agent.snapshot ? JSON.stringify(agent.snapshot) : null,
    exit_code: agent.exitCode,
    issue_ref: agent.issueRef,
    vm_seconds: agent.vmSeconds,
  };
}

function fromRow(row: Row): AgentRecord {
  const json = <T>(value: unknown): T | null =>
    value == null ? null : (JSON.parse(String(value)) as T);
  return {
    id: String(row.id),
    owner: String(row.owner),
    title: String(row.title),
    text: String(row.text),
    profile: String(row.profile),
    profileSpec: json<Profile>(row.profile_json)!,
    state: row.state as AgentState,
    stateReason: (row.state_reason as string | null) ?? null,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
    endedAt: row.ended_at == null ? null : Number(row.ended_at),
    repo: json<RepoInfo>(row.repo_json)!,
    review: json(row.review_json),
    lastProgress: (row.last_progress as string | null) ?? null,
    lastOutput: json<string[]>(row.last_output_json) ?? [],
    result: json(row.result_json),
    bootPath: (row.boot_path as Agent['bootPath']) ?? null,
    accel: (row.accel as Agent['accel']) ?? null,
    vmPid: row.vm_pid == null ? null : Number(row.vm_pid),
    guestSeq: Number(row.guest_seq),
    snapshot: json<SnapshotInfo>(row.snapshot_json),
    exitCode: row.exit_code == null ? null : Number(row.exit_code),
    issueRef: (row.issue_ref as string | null) ?? null,
    vmSeconds: Number(row.vm_seconds ?? 0),
  };
}

/** The public view of an agent record (what the API returns). */
export function publicAgent(record: AgentRecord): Agent {
  const { profileSpec, vmPid, guestSeq, snapshot, exitCode, issueRef, vmSeconds, ...agent } =
    record;
  (void profileSpec, vmPid, guestSeq, snapshot, exitCode, issueRef, vmSeconds);
  return agent;
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
