import Database from 'better-sqlite3';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Agent, AgentEvent, AgentState, Profile, RepoInfo } from '../../protocol/api';
import type { SnapshotInfo } from '../vmm/VmmDriver';
import { AgentvmError } from '../../protocol/errors';
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
 * The broker's SQLite store (better-sqlite3, WAL). Synchronous by design: every call is one short
 * transaction, so a broker killed at any instant leaves a consistent file.
 */
export class Store {
  readonly db: Database.Database;

  constructor(file: string) {
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

  close(): void {
    if (this.db.open) this.db.close();
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

  insertAgent(agent: AgentRecord): void {
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
    const row = this.db.prepare('SELECT * FROM agents WHERE id = ?').get(id) as Row | undefined;
    return row ? fromRow(row) : null;
  }

  listAgents(owner?: string): AgentRecord[] {
    const rows = owner
      ? this.db.prepare('SELECT * FROM agents WHERE owner = ? ORDER BY created_at DESC').all(owner)
      : this.db.prepare('SELECT * FROM agents ORDER BY created_at DESC').all();
    return (rows as Row[]).map(fromRow);
  }

  agentsInStates(states: readonly AgentState[]): AgentRecord[] {
    const marks = states.map(() => '?').join(',');
    const rows = this.db
      .prepare(`SELECT * FROM agents WHERE state IN (${marks}) ORDER BY created_at`)
      .all(...states);
    return (rows as Row[]).map(fromRow);
  }

  /** Writes the changed fields; returns the updated record. */
  updateAgent(id: string, changes: Partial<AgentRecord>): AgentRecord {
    const current = this.getAgent(id);
    if (!current) throw new Error(`agent ${id} vanished from the store`);

    const next: AgentRecord = { ...current, ...changes, updatedAt: Date.now() };
    const row = toRow(next);
    const columns = Object.keys(row).filter((column) => column !== 'id');
    this.db
      .prepare(
        `UPDATE agents SET ${columns.map((column) => `${column} = @${column}`).join(', ')} WHERE id = @id`,
      )
      .run(row);
    return next;
  }

  deleteAgent(id: string): void {
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM events WHERE agent_id = ?').run(id);
      this.db.prepare('DELETE FROM agents WHERE id = ?').run(id);
    })();
  }

  // ---- events

  appendEvent(agentId: string, event: NewEvent): AgentEvent {
    const at = event.at ?? Date.now();
    const data = event.data ?? {};
    const info = this.db
      .prepare('INSERT INTO events (agent_id, at, kind, message, data_json) VALUES (?, ?, ?, ?, ?)')
      .run(agentId, at, event.kind, event.message, JSON.stringify(data));
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

  /** Runs `work` in one transaction (e.g. persist guest events and the new seq together). */
  transaction<T>(work: () => T): T {
    return this.db.transaction(work)();
  }
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
