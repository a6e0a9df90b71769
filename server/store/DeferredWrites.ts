import type { AgentEvent } from '../../protocol/api';
import type { AgentRecord } from './Store';

/** Most timeline entries held while the store cannot write; output and progress beyond are counted. */
const MAX_HELD_EVENTS = 10_000;

/** Most characters of timeline messages held while the store cannot write. */
const MAX_HELD_EVENT_CHARS = 16 * 1024 * 1024;

/** Entries that can go when memory runs short: the state, review and result entries never do. */
const DROPPABLE_KINDS: ReadonlySet<AgentEvent['kind']> = new Set(['output', 'progress']);

/**
 * What the store could not write while its file system was full, in the order it happened: the
 * latest whole row of each agent (null once removed) and the timeline entries, with the ids they
 * were handed out under. Written back in one transaction once the store takes writes again.
 */
export class DeferredWrites {
  private readonly agents = new Map<string, AgentRecord | null>();
  private events: AgentEvent[] = [];
  private readonly eventIds = new Set<number>();
  private eventChars = 0;
  private nextId: number | undefined;
  /** Per agent, how many output or progress entries were dropped for lack of memory. */
  readonly dropped = new Map<string, number>();

  get empty(): boolean {
    return this.agents.size === 0 && this.events.length === 0 && this.dropped.size === 0;
  }

  /** Ids of the agents with something held. */
  agentIds(): string[] {
    const ids = new Set([...this.agents.keys(), ...this.dropped.keys()]);
    for (const event of this.events) ids.add(event.agentId);
    return [...ids];
  }

  /** The held row of an agent: a record, null when it was removed, undefined when none is held. */
  agent(id: string): AgentRecord | null | undefined {
    const record = this.agents.get(id);
    return record ? structuredClone(record) : record;
  }

  rows(): ReadonlyMap<string, AgentRecord | null> {
    return this.agents;
  }

  heldEvents(): readonly AgentEvent[] {
    return this.events;
  }

  eventsOf(agentId: string, afterId: number, limit: number): AgentEvent[] {
    return this.events
      .filter((event) => event.agentId === agentId && event.id > afterId)
      .slice(0, Math.max(0, limit));
  }

  putAgent(record: AgentRecord): void {
    this.agents.set(record.id, structuredClone(record));
  }

  removeAgent(id: string): void {
    this.agents.set(id, null);
    this.events = this.events.filter((event) => event.agentId !== id);
    this.eventIds.clear();
    for (const event of this.events) this.eventIds.add(event.id);
    this.eventChars = this.events.reduce((sum, event) => sum + event.message.length, 0);
    this.dropped.delete(id);
  }

  /**
   * An id for an entry the store could not insert: the next after what is stored (`lastStoredId`)
   * and after every held entry, so that writing the held entries later keeps the ids clients saw.
   */
  allocateId(lastStoredId: () => number): number {
    this.nextId ??= lastStoredId() + 1;
    return this.nextId++;
  }

  /**
   * Holds `event` (its id already handed out), or counts it when memory for held entries is used
   * up. An id already held (never expected) is replaced by a fresh one: two entries under one id
   * could never be written, and everything held would wait forever.
   */
  putEvent(event: AgentEvent): void {
    if (this.eventIds.has(event.id)) event.id = this.nextId ?? event.id + 1;
    this.nextId = Math.max(this.nextId ?? 0, event.id + 1);
    const full =
      this.events.length >= MAX_HELD_EVENTS ||
      this.eventChars + event.message.length > MAX_HELD_EVENT_CHARS;
    if (full && DROPPABLE_KINDS.has(event.kind)) {
      this.dropped.set(event.agentId, (this.dropped.get(event.agentId) ?? 0) + 1);
      return;
    }

    this.events.push(event);
    this.eventIds.add(event.id);
    this.eventChars += event.message.length;
  }

  clear(): void {
    this.agents.clear();
    this.events = [];
    this.eventIds.clear();
    this.eventChars = 0;
    this.nextId = undefined;
    this.dropped.clear();
  }
}
