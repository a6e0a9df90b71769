import type Database from 'better-sqlite3';
import type { AgentEvent } from '../../protocol/api';
import type { AgentvmError } from '../../protocol/errors';
import { DeferredWrites } from './DeferredWrites';
import type { AgentRecord, NewEvent } from './Store';
import { heldWriteError, isDiskFullError, storeFullError } from './storeFullError';

/**
 * What the store reports about its writes: an agent's change could not be written and is held in
 * memory (once per agent and outage), everything held was written, or what was held is lost
 * because the store closed before it could write it.
 */
export type StoreWriteStatus =
  | { kind: 'deferred'; agentId: string; error: AgentvmError }
  | { kind: 'written'; agentIds: string[]; notes: AgentEvent[] }
  | { kind: 'lost'; agentIds: string[]; error: AgentvmError };

/** The store's own SQL, through which what was held is written once there is room. */
export interface HeldRowWriter {
  updateRow(record: AgentRecord): void;
  deleteRows(agentId: string): void;
  /** Inserts one entry, under `event.id` when it has one. */
  insertEvent(agentId: string, event: NewEvent & { id?: number }): AgentEvent;
}

/** First wait before writing held changes again, in milliseconds; doubled up to the maximum. */
const RETRY_FIRST_MS = 250;
const RETRY_MAX_MS = 5_000;

/** A held write: keeps one change in memory (see {@link DeferredWrites}). */
interface HeldWrite {
  agentId: string;
  hold(): void;
}

/**
 * Decides, for each write of the store, whether it goes to SQLite or is held in memory because
 * the file system is full, and writes what is held once there is room: the failure state, the
 * retry timer with its backoff, the status reports and the bookkeeping of a transaction under
 * way. The store keeps the SQL; what is held is in {@link held}.
 */
export class WriteHolding {
  /** Changes the file system had no room for (see {@link failure}). */
  readonly held = new DeferredWrites();
  private currentFailure: AgentvmError | null = null;
  private readonly deferredAgents = new Set<string>();
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelayMs = RETRY_FIRST_MS;
  /** The writes of the {@link transaction} under way, to hold if its commit fails. */
  private transactionWrites: { writes: HeldWrite[]; failure: unknown } | null = null;
  private readonly statusListeners = new Set<(status: StoreWriteStatus) => void>();

  constructor(
    private readonly db: Database.Database,
    private readonly file: string,
    private readonly writer: HeldRowWriter,
  ) {}

  /** Why the store cannot write at the moment, or null (see Store.writeFailure). */
  get failure(): AgentvmError | null {
    return this.currentFailure;
  }

  /** Writes what is held now and throws the {@link failure} when that is still impossible. */
  requireWritable(): void {
    if (this.currentFailure && !this.tryWriteHeld()) throw this.currentFailure;
  }

  /** Calls `listener` with every {@link StoreWriteStatus}; returns a function that unsubscribes. */
  onStatus(listener: (status: StoreWriteStatus) => void): () => void {
    this.statusListeners.add(listener);
    return () => this.statusListeners.delete(listener);
  }

  /**
   * Stops retrying and makes a last try at writing what is held; what still cannot be written is
   * reported `lost` (the next broker start recovers each agent from what was stored).
   */
  close(): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (!this.db.open) return;

    const failure = this.currentFailure;
    if (failure && !this.tryWriteHeld()) {
      this.notify({ kind: 'lost', agentIds: this.held.agentIds(), error: failure });
    }
  }

  /**
   * Runs one write of the agent's; when the file system has no room, `hold` keeps the change in
   * memory instead. While changes are held, new ones are held behind them without asking SQLite,
   * so that they are written in the order they happened, and an output flood does not turn into a
   * flood of failing disk writes: only the retry timer (and {@link requireWritable}) try again.
   */
  write(agentId: string, apply: () => void, hold: () => void): void {
    if (this.currentFailure) {
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
        this.keepAll(transaction.writes.splice(0));
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

  /**
   * Runs `work` in one SQLite transaction; when its writes do not fit on the file system, they are
   * held in memory as a whole, in order; `work` is not run again.
   */
  transaction<T>(work: () => T): T {
    if (this.currentFailure || this.transactionWrites) return work();

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
      this.keepAll(transaction.writes);
      return result;
    } finally {
      this.transactionWrites = null;
    }
  }

  private keep(write: HeldWrite): void {
    this.keepAll([write]);
  }

  /**
   * Holds every write first and only then tells listeners about newly affected agents: a listener
   * writes too (the timeline entry saying so), and its entry must not take an id that one of these
   * writes still holds (SQLite hands out ids inside a transaction that is then rolled back).
   */
  private keepAll(writes: readonly HeldWrite[]): void {
    for (const write of writes) write.hold();
    for (const agentId of new Set(writes.map((write) => write.agentId))) {
      if (this.deferredAgents.has(agentId)) continue;

      this.deferredAgents.add(agentId);
      this.notify({ kind: 'deferred', agentId, error: this.currentFailure! });
    }
  }

  private startHolding(cause: unknown): void {
    this.currentFailure ??= storeFullError(this.file, cause);
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
      if (this.tryWriteHeld()) return;

      this.retryDelayMs = Math.min(this.retryDelayMs * 2, RETRY_MAX_MS);
      this.scheduleRetry();
    }, this.retryDelayMs);
    this.retryTimer.unref();
  }

  /** Writes everything held in one transaction; false while that is still impossible. */
  private tryWriteHeld(): boolean {
    if (!this.currentFailure) return true;

    let notes: AgentEvent[];
    try {
      notes = this.db.transaction(() => this.writeHeld())();
    } catch (error) {
      // The latest cause is the one callers should read, named for what it is (the disk may have
      // room by now while something else fails); the held changes are kept either way.
      this.currentFailure = heldWriteError(this.file, error);
      return false;
    }

    const agentIds = this.held.agentIds();
    this.held.clear();
    this.deferredAgents.clear();
    this.currentFailure = null;
    this.retryDelayMs = RETRY_FIRST_MS;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.notify({ kind: 'written', agentIds, notes });
    return true;
  }

  /** The held rows, then the held entries, then one note per agent whose entries were dropped. */
  private writeHeld(): AgentEvent[] {
    for (const [id, record] of this.held.rows()) {
      if (record) this.writer.updateRow(record);
      else this.writer.deleteRows(id);
    }
    for (const event of this.held.heldEvents()) this.writer.insertEvent(event.agentId, event);

    return [...this.held.dropped].map(([agentId, count]) =>
      this.writer.insertEvent(agentId, {
        kind: 'info',
        message: `${count} output or progress entries were lost: the broker could not hold more while the store could not write`,
        at: Date.now(),
        data: { lostEntries: count },
      }),
    );
  }

  private notify(status: StoreWriteStatus): void {
    for (const listener of [...this.statusListeners]) listener(status);
  }
}
