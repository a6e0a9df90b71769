import * as vscode from 'vscode';
import type { Agent, AgentEvent, ServerStreamMessage } from '../../../protocol/api';
import { AgentvmError } from '../../../protocol/errors';
import {
  SUBSCRIBE_ACK_TIMEOUT_MS,
  type BrokerClient,
  type EventStream,
} from '../../../client/BrokerClient';
import type { BrokerConnection } from '../broker/BrokerConnection';
import type { ComponentLog } from '../log';
import { backoffDelayMs } from './backoff';

/** Whether the broker answers, as the tree's welcome views show it. */
export type BrokerStatus = 'idle' | 'connecting' | 'connected' | 'unreachable' | 'unauthorized';

/** A change of one agent; `previous` is undefined for an agent seen for the first time. */
export interface AgentChange {
  agent: Agent;
  previous: Agent | undefined;
}

/** What the stream said about agents while a list request was on its way. */
interface ListTracker {
  touched: Set<string>;
  removed: Set<string>;
}

/**
 * The extension's picture of the user's agents: the list from the broker, kept current by the
 * event stream, which starts on the first {@link start} and reconnects with backoff. The list is
 * read only once the broker has acknowledged the subscription, so no change falls between the two;
 * the stream replays no history (panels load their own timeline), and after a gap
 * {@link onDidReconnect} tells listeners to fetch what they missed.
 */
export class AgentStore implements vscode.Disposable {
  private readonly agents = new Map<string, Agent>();
  /** When each agent's current version arrived (epoch milliseconds), for its VM time. */
  private readonly receivedAtMs = new Map<string, number>();
  private stream: EventStream | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private attempt = 0;
  private started = false;
  private disposed = false;
  private statusValue: BrokerStatus = 'idle';
  private connectedOnce = false;
  private disconnectedAtMs: number | undefined;
  /** Bumped when the broker URL or token changes: a connection attempt made before is void. */
  private generation = 0;
  private connecting: Promise<void> | undefined;
  private readonly listTrackers = new Set<ListTracker>();
  private markLoaded: () => void = () => undefined;
  private readonly loaded = new Promise<void>((resolve) => (this.markLoaded = resolve));

  private readonly changedEmitter = new vscode.EventEmitter<void>();
  private readonly agentEmitter = new vscode.EventEmitter<AgentChange>();
  private readonly eventEmitter = new vscode.EventEmitter<AgentEvent>();
  private readonly removedEmitter = new vscode.EventEmitter<string>();
  private readonly reconnectedEmitter = new vscode.EventEmitter<void>();
  private readonly disposables: vscode.Disposable[] = [
    this.changedEmitter,
    this.agentEmitter,
    this.eventEmitter,
    this.removedEmitter,
    this.reconnectedEmitter,
  ];

  /** Any change: list, status. */
  readonly onDidChange = this.changedEmitter.event;
  readonly onDidChangeAgent = this.agentEmitter.event;
  /** Live timeline events; none are replayed after a gap (see {@link onDidReconnect}). */
  readonly onDidReceiveEvent = this.eventEmitter.event;
  readonly onDidRemoveAgent = this.removedEmitter.event;
  /** The stream is back after a gap and the list is current again; events of the gap were lost. */
  readonly onDidReconnect = this.reconnectedEmitter.event;

  private readonly subscribeAckTimeoutMs: number;

  constructor(
    private readonly connection: BrokerConnection,
    private readonly log: ComponentLog,
    options: { subscribeAckTimeoutMs?: number } = {},
  ) {
    this.subscribeAckTimeoutMs = options.subscribeAckTimeoutMs ?? SUBSCRIBE_ACK_TIMEOUT_MS;
    this.disposables.push(connection.onDidChange(() => this.restart()));
  }

  get status(): BrokerStatus {
    return this.statusValue;
  }

  /** When the stream was lost (ms since the epoch), while it is down; undefined otherwise. */
  get disconnectedAt(): number | undefined {
    return this.statusValue === 'connected' ? undefined : this.disconnectedAtMs;
  }

  get all(): Agent[] {
    return [...this.agents.values()];
  }

  get(id: string): Agent | undefined {
    return this.agents.get(id);
  }

  /**
   * When the agent as {@link get} returns it arrived from the broker (epoch milliseconds): its
   * `vmSeconds` was true then.
   */
  receivedAt(id: string): number | undefined {
    return this.receivedAtMs.get(id);
  }

  /** Starts loading and live updates; later calls do nothing. */
  start(): void {
    if (this.started || this.disposed) return;

    this.started = true;
    void this.connect().catch(() => undefined);
  }

  /**
   * Resolves once the first list of agents has arrived (starting live updates if they had not
   * started), or after `timeoutMs` at the latest.
   */
  async whenLoaded(timeoutMs: number): Promise<void> {
    this.start();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
    await Promise.race([this.loaded, timeout]);
    clearTimeout(timer);
  }

  /**
   * Reloads the list now; when the stream is down, reconnects it at once instead of waiting out
   * the backoff. Rejects when the broker does not answer (a reconnect stays scheduled).
   */
  async refresh(): Promise<void> {
    if (this.disposed) return;

    this.started = true;
    if (this.stream && this.statusValue === 'connected') {
      await this.load(await this.connection.getClient());
      return;
    }

    clearTimeout(this.reconnectTimer);
    this.attempt = 0;
    await this.connect();
  }

  /** Records an agent the extension got from an API call, before the stream reports it. */
  upsert(agent: Agent): void {
    for (const tracker of this.listTrackers) tracker.touched.add(agent.id);
    const previous = this.agents.get(agent.id);
    if (previous && previous.updatedAt > agent.updatedAt) return;

    this.agents.set(agent.id, agent);
    this.receivedAtMs.set(agent.id, Date.now());
    this.agentEmitter.fire({ agent, previous });
    this.changedEmitter.fire();
  }

  /** One connection attempt at a time; later callers share it. */
  private connect(): Promise<void> {
    if (!this.connecting) {
      const attempt = this.openStreamAndLoad().finally(() => {
        if (this.connecting === attempt) this.connecting = undefined;
      });
      this.connecting = attempt;
    }
    return this.connecting;
  }

  private async openStreamAndLoad(): Promise<void> {
    if (this.disposed) return;

    const generation = this.generation;
    const current = () => generation === this.generation && !this.disposed;
    let stream: EventStream | undefined;
    this.setStatus('connecting');
    try {
      const client = await this.connection.getClient();
      stream = await this.openStream(client, current);
      if (!current()) return stream.close();

      this.stream = stream;
      // Subscribed first, then listed: a change made in between arrives by the stream.
      await this.load(client);
      // The stream may have closed while the list was on its way; its close scheduled a retry.
      if (!current() || this.stream !== stream) return;

      this.attempt = 0;
      this.setStatus('connected');
      this.log.info('event stream open; agent list loaded');
      if (this.connectedOnce) this.reconnectedEmitter.fire();
      this.connectedOnce = true;
    } catch (error) {
      if (!current()) return;

      stream?.close();
      if (this.stream === stream) this.stream = undefined;
      this.log.warn(`broker not reachable: ${(error as Error).message}`);
      this.scheduleReconnect(error);
      throw error;
    }
  }

  /**
   * Resolves with the stream once its subscription is in effect (see `onSubscribed`: the
   * broker's acknowledgement, an older broker's first message, or a timeout); rejects if the
   * stream closes before. An error refusing the subscription is logged, and the list read as
   * before.
   */
  private openStream(client: BrokerClient, current: () => boolean): Promise<EventStream> {
    return new Promise((resolve, reject) => {
      let subscribed = false;
      /** The message that showed the subscription in effect, before the caller holds the stream. */
      let subscribingMessage = false;
      const stream: EventStream = client.stream(
        { subscribeAckTimeoutMs: this.subscribeAckTimeoutMs },
        {
          onSubscribed: (by) => {
            if (by === 'timeout') {
              this.log.debug(
                `no acknowledgement of the subscription in ${this.subscribeAckTimeoutMs} ms; listing agents anyway`,
              );
            }
            subscribed = true;
            subscribingMessage = by !== 'timeout';
            resolve(stream);
          },
          onMessage: (message) => {
            // Before the list starts, what the stream says is applied too: the list is newer.
            if (subscribingMessage) {
              subscribingMessage = false;
              if (current()) this.handle(message);
              return;
            }
            if (this.stream === stream) this.handle(message);
          },
          onClose: (error) => {
            if (!subscribed) {
              reject(error ?? new AgentvmError('BROKER_UNREACHABLE', 'the event stream closed'));
              return;
            }
            if (this.stream !== stream || !current()) return;

            this.stream = undefined;
            this.log.warn(`event stream closed${error ? `: ${error.message}` : ''}`);
            this.scheduleReconnect(error);
          },
        },
      );
    });
  }

  private async load(client: BrokerClient): Promise<void> {
    const tracker: ListTracker = { touched: new Set(), removed: new Set() };
    this.listTrackers.add(tracker);
    try {
      this.replaceAll(await client.listAgents(), tracker);
    } finally {
      this.listTrackers.delete(tracker);
    }
  }

  private scheduleReconnect(error: unknown): void {
    if (this.disposed || !this.started) return;

    if (this.statusValue === 'connected') this.disconnectedAtMs = Date.now();
    const unauthorized = error instanceof AgentvmError && error.code === 'UNAUTHORIZED';
    this.setStatus(unauthorized ? 'unauthorized' : 'unreachable');

    const delayMs = backoffDelayMs(this.attempt++);
    this.log.debug(`reconnecting in ${delayMs} ms (attempt ${this.attempt})`);
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => void this.connect().catch(() => undefined), delayMs);
  }

  private restart(): void {
    if (!this.started) return;

    this.generation++;
    this.stream?.close();
    this.stream = undefined;
    this.connecting = undefined;
    clearTimeout(this.reconnectTimer);
    this.attempt = 0;
    void this.connect().catch(() => undefined);
  }

  private handle(message: ServerStreamMessage): void {
    switch (message.type) {
      case 'agent':
        this.upsert(message.agent);
        break;
      case 'removed':
        for (const tracker of this.listTrackers) tracker.removed.add(message.agentId);
        this.receivedAtMs.delete(message.agentId);
        if (this.agents.delete(message.agentId)) {
          this.removedEmitter.fire(message.agentId);
          this.changedEmitter.fire();
        }
        break;
      case 'event':
        this.eventEmitter.fire(message.event);
        break;
      case 'error':
        this.log.warn(`stream error ${message.code}: ${message.message}`);
        break;
      case 'subscribed':
        break;
    }
  }

  /**
   * Takes a list from the broker as the truth, except where the stream said something newer while
   * the list was on its way: a newer version of an agent, an agent created, an agent removed.
   */
  private replaceAll(agents: Agent[], tracker: ListTracker): void {
    const seen = new Set<string>();
    for (const agent of agents) {
      if (tracker.removed.has(agent.id)) continue;

      seen.add(agent.id);
      const previous = this.agents.get(agent.id);
      if (previous && previous.updatedAt > agent.updatedAt) continue;

      this.agents.set(agent.id, agent);
      this.receivedAtMs.set(agent.id, Date.now());
      if (!previous || previous.updatedAt !== agent.updatedAt || previous.state !== agent.state) {
        this.agentEmitter.fire({ agent, previous });
      }
    }
    for (const id of [...this.agents.keys()]) {
      if (seen.has(id) || tracker.touched.has(id)) continue;

      this.agents.delete(id);
      this.receivedAtMs.delete(id);
      this.removedEmitter.fire(id);
    }
    this.changedEmitter.fire();
    this.markLoaded();
  }

  private setStatus(status: BrokerStatus): void {
    if (this.statusValue === status) return;

    this.statusValue = status;
    void vscode.commands.executeCommand('setContext', 'agentvm.brokerStatus', status);
    this.changedEmitter.fire();
  }

  dispose(): void {
    this.disposed = true;
    clearTimeout(this.reconnectTimer);
    this.stream?.close();
    for (const disposable of this.disposables) disposable.dispose();
  }
}
