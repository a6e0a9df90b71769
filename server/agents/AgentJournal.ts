import { EventEmitter } from 'node:events';
import type { Agent, AgentEvent, AgentState } from '../../protocol/api';
import { terminalStates } from '../../protocol/api';
import { AgentvmError } from '../../protocol/errors';
import type { Logger } from '../log';
import { redactKnownValues } from '../policy/redactSecrets';
import { stateHint } from './stateHint';
import {
  publicAgent,
  type AgentRecord,
  type NewEvent,
  type Store,
  type StoreWriteStatus,
} from '../store/Store';

export type ManagerEvents = {
  event: [AgentEvent];
  agent: [Agent];
  /** The agent's id and its owner (the record is gone by then). */
  removed: [string, string];
};

/**
 * Where the life cycle writes what happens to an agent: every state change and timeline entry is
 * stored first, then published to listeners (the WebSocket event stream), in that order, so a
 * client never sees something a broker restart would forget.
 * While the store's file system is full the store holds changes in memory instead (see
 * Store.writeFailure) and they are published from there; the agent's timeline says so.
 */
export class AgentJournal {
  readonly events = new EventEmitter<ManagerEvents>();
  private readonly endListeners: Array<(agentId: string) => void> = [];

  constructor(
    private readonly store: Store,
    private readonly log: Logger,
    /** Called once when an agent reaches a terminal state (policy releases its egress listener). */
    private readonly onTerminal: (agentId: string) => void = () => undefined,
    /** Real values of the agent's secrets, which nothing stored or shown may contain. */
    private readonly knownSecrets: (agentId: string) => readonly string[] = () => [],
  ) {
    store.onWriteStatus((status) => this.storeWriteStatus(status));
  }

  /**
   * The store could not write (its file system is full) and holds the agent's changes in memory,
   * or wrote them at last, or lost them at shutdown: the life cycle goes on either way, so this
   * is said in the log and on the agent's timeline, where the user looks, not in its state.
   */
  private storeWriteStatus(status: StoreWriteStatus): void {
    if (status.kind === 'deferred') {
      const { message, hint } = status.error;
      this.log.warn('store.write_deferred', { agentId: status.agentId, error: message, hint });
      this.append(status.agentId, {
        kind: 'error',
        message: `${message}; this agent's changes are held in memory and written once there is room (${hint})`,
        data: { storeWritable: false },
      });
      this.publish(status.agentId);
      return;
    }

    if (status.kind === 'lost') {
      this.log.error('store.writes_lost', {
        agentIds: status.agentIds,
        error: status.error.message,
      });
      return;
    }

    this.log.info('store.writes_recovered', { agentIds: status.agentIds });
    for (const note of status.notes) this.events.emit('event', note);
    for (const id of status.agentIds) {
      if (!this.store.getAgent(id)) continue;

      this.append(id, {
        kind: 'info',
        message: 'the store writes again: the changes held in memory are stored',
        data: { storeWritable: true },
      });
      this.publish(id);
    }
  }

  /**
   * `value` with the agent's real secret values replaced by `[redacted]`: for anything that came
   * from the guest (or its console) before it is stored or shown.
   */
  redact<T>(agentId: string, value: T): T {
    return redactKnownValues(value, this.knownSecrets(agentId));
  }

  /**
   * Redacts output that arrives in pieces. `text` is what was held back last time followed by the
   * new output; `ready` is what may be stored now, redacted, and `held` is the end of it that could
   * be the start of a secret value (at most the longest value's length - 1 characters, usually
   * none), to put in front of the stream's next output, or store as it is once the stream ends.
   */
  redactOutput(agentId: string, text: string): { ready: string; held: string } {
    const secrets = this.knownSecrets(agentId);
    const redacted = redactKnownValues(text, secrets);
    const keep = secretStartAtEnd(redacted, secrets);
    return {
      ready: redacted.slice(0, redacted.length - keep),
      held: redacted.slice(redacted.length - keep),
    };
  }

  /**
   * Calls `listener` when an agent ends, before its terminal state is stored (and while its secret
   * values are still known), and when it is removed: for parts that hold something of the agent's
   * back, to store it or let it go.
   */
  onAgentEnd(listener: (agentId: string) => void): void {
    this.endListeners.push(listener);
  }

  /** The agent's record; AGENT_NOT_FOUND when it does not exist (any more). */
  record(id: string): AgentRecord {
    const record = this.store.getAgent(id);
    if (!record) throw new AgentvmError('AGENT_NOT_FOUND', `no agent with id "${id}"`);

    return record;
  }

  /**
   * Stores the agent's new state with `rawChanges`, then says so on its timeline and publishes it.
   * An agent that ends has no VM any more: its pid is cleared.
   */
  transition(id: string, to: AgentState, rawChanges: Partial<AgentRecord>): AgentRecord {
    const from = this.record(id).state;
    const ends = terminalStates.includes(to);
    if (ends && !terminalStates.includes(from)) {
      for (const listener of this.endListeners) listener(id);
    }
    // Before onTerminal: releasing the agent's policy forgets its secret values.
    const changes: Partial<AgentRecord> = { ...(ends ? { vmPid: null } : {}), ...rawChanges };
    if (typeof changes.stateReason === 'string') {
      changes.stateReason = this.redact(id, changes.stateReason);
    }
    const record = this.store.updateAgent(id, { ...changes, state: to });
    if (ends) this.onTerminal(id);

    const reason = changes.stateReason ? `: ${changes.stateReason}` : '';
    this.append(id, { kind: 'state', message: `${to}${reason}`, data: { from, to } });
    this.log.info('agent.state', { agentId: id, from, to });
    this.publish(id);
    return record;
  }

  /** Ends the agent as failed with `reason`, unless it already ended. */
  fail(id: string, reason: string): void {
    const record = this.store.getAgent(id);
    if (!record || terminalStates.includes(record.state)) return;

    this.log.warn('agent.failed', { agentId: id, reason });
    this.transition(id, 'failed', { stateReason: reason, endedAt: Date.now() });
  }

  append(id: string, event: NewEvent): void {
    this.events.emit('event', this.store.appendEvent(id, this.redact(id, event)));
  }

  publish(id: string): void {
    const record = this.store.getAgent(id);
    if (record) this.events.emit('agent', publicAgent(record));
  }

  /** Announces that the agent owned by `owner` was removed; its record is already deleted. */
  removed(id: string, owner: string): void {
    for (const listener of this.endListeners) listener(id);
    this.events.emit('removed', id, owner);
  }

  /** INVALID_STATE unless the agent is in one of `allowed`. */
  requireState(record: AgentRecord, allowed: AgentState[], action: string): void {
    if (allowed.includes(record.state)) return;

    throw new AgentvmError(
      'INVALID_STATE',
      `cannot ${action} agent ${record.id}: it is ${record.state} (needs ${allowed.join(' or ')})`,
      stateHint(record.id, record.state),
    );
  }
}

/**
 * Length of the longest end of `text` that is the start (not the whole) of one of `secrets`: what
 * must wait for more text before anyone can tell whether it is a secret value. Values shorter
 * than 4 characters are not redacted (see redactKnownValues), so none is held for them either.
 */
function secretStartAtEnd(text: string, secrets: readonly string[]): number {
  const candidates = secrets.filter((secret) => secret.length >= 4);
  const longest = Math.max(0, ...candidates.map((secret) => secret.length));
  for (let length = Math.min(text.length, longest - 1); length > 0; length--) {
    const end = text.slice(text.length - length);
    if (candidates.some((secret) => secret.length > length && secret.startsWith(end))) {
      return length;
    }
  }
  return 0;
}
