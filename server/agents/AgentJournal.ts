import { EventEmitter } from 'node:events';
import type { Agent, AgentEvent, AgentState } from '../../protocol/api';
import { terminalStates } from '../../protocol/api';
import { AgentvmError } from '../../protocol/errors';
import type { Logger } from '../log';
import { redactKnownValues } from '../policy/redactSecrets';
import { publicAgent, type AgentRecord, type NewEvent, type Store } from '../store/Store';

export type ManagerEvents = {
  event: [AgentEvent];
  agent: [Agent];
  removed: [string];
};

/**
 * Where the life cycle writes what happens to an agent: every state change and timeline entry is
 * stored first, then published to listeners (the WebSocket event stream), in that order, so a
 * client never sees something a broker restart would forget.
 */
export class AgentJournal {
  readonly events = new EventEmitter<ManagerEvents>();

  constructor(
    private readonly store: Store,
    private readonly log: Logger,
    /** Called once when an agent reaches a terminal state (policy releases its egress listener). */
    private readonly onTerminal: (agentId: string) => void = () => undefined,
    /** Real values of the agent's secrets, which nothing stored or shown may contain. */
    private readonly knownSecrets: (agentId: string) => readonly string[] = () => [],
  ) {}

  /**
   * `value` with the agent's real secret values replaced by `[redacted]`: for anything that came
   * from the guest (or its console) before it is stored or shown.
   */
  redact<T>(agentId: string, value: T): T {
    return redactKnownValues(value, this.knownSecrets(agentId));
  }

  /** The agent's record; AGENT_NOT_FOUND when it does not exist (any more). */
  record(id: string): AgentRecord {
    const record = this.store.getAgent(id);
    if (!record) throw new AgentvmError('AGENT_NOT_FOUND', `no agent with id "${id}"`);

    return record;
  }

  transition(id: string, to: AgentState, rawChanges: Partial<AgentRecord>): AgentRecord {
    const from = this.record(id).state;
    // Before onTerminal: releasing the agent's policy forgets its secret values.
    const changes =
      typeof rawChanges.stateReason === 'string'
        ? { ...rawChanges, stateReason: this.redact(id, rawChanges.stateReason) }
        : rawChanges;
    const record = this.store.updateAgent(id, { ...changes, state: to });
    if (terminalStates.includes(to)) this.onTerminal(id);

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

  removed(id: string): void {
    this.events.emit('removed', id);
  }

  /** INVALID_STATE unless the agent is in one of `allowed`. */
  requireState(record: AgentRecord, allowed: AgentState[], action: string): void {
    if (allowed.includes(record.state)) return;

    throw new AgentvmError(
      'INVALID_STATE',
      `cannot ${action} agent ${record.id}: it is ${record.state} (needs ${allowed.join(' or ')})`,
    );
  }
}
