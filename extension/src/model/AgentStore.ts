import * as vscode from 'vscode';
import type { Agent, AgentEvent, ServerStreamMessage } from '../../../protocol/api';
import { AgentvmError } from '../../../protocol/errors';
import type { EventStream } from '../../../client/BrokerClient';
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

/**
 * The extension's picture of the user's agents: the list from the broker, kept current by the
 * event stream, which starts on the first {@link start} and reconnects with backoff.
 */
export class AgentStore implements vscode.Disposable {
  private readonly agents = new Map<string, Agent>();
  private stream: EventStream | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private attempt = 0;
  private started = false;
  private disposed = false;
  private statusValue: BrokerStatus = 'idle';
  private lastEventId = 0;

  private readonly changedEmitter = new vscode.EventEmitter<void>();
  private readonly agentEmitter = new vscode.EventEmitter<AgentChange>();
  private readonly eventEmitter = new vscode.EventEmitter<AgentEvent>();
  private readonly removedEmitter = new vscode.EventEmitter<string>();
  private readonly disposables: vscode.Disposable[] = [
    this.changedEmitter,
    this.agentEmitter,
    this.eventEmitter,
    this.removedEmitter,
  ];

  /** Any change: list, status. */
  readonly onDidChange = this.changedEmitter.event;
  readonly onDidChangeAgent = this.agentEmitter.event;
  readonly onDidReceiveEvent = this.eventEmitter.event;
  readonly onDidRemoveAgent = this.removedEmitter.event;

  constructor(
    private readonly connection: BrokerConnection,
    private readonly log: ComponentLog,
  ) {
    this.disposables.push(connection.onDidChange(() => this.restart()));
  }

  get status(): BrokerStatus {
    return this.statusValue;
  }

  get all(): Agent[] {
    return [...this.agents.values()];
  }

  get(id: string): Agent | undefined {
    return this.agents.get(id);
  }

  /** Starts loading and live updates; later calls do nothing. */
  start(): void {
    if (this.started || this.disposed) return;

    this.started = true;
    void this.connect();
  }

  /** Reloads the list now (and reconnects the stream if it is down). */
  async refresh(): Promise<void> {
    this.start();
    const client = await this.connection.getClient();
    this.replaceAll(await client.listAgents());
  }

  /** Records an agent the extension got from an API call, before the stream reports it. */
  upsert(agent: Agent): void {
    const previous = this.agents.get(agent.id);
    if (previous && previous.updatedAt > agent.updatedAt) return;

    this.agents.set(agent.id, agent);
    this.agentEmitter.fire({ agent, previous });
    this.changedEmitter.fire();
  }

  private async connect(): Promise<void> {
    if (this.disposed) return;

    this.setStatus('connecting');
    try {
      const client = await this.connection.getClient();
      this.replaceAll(await client.listAgents());
      this.stream = client.stream(
        { afterEventId: this.lastEventId },
        {
          onOpen: () => {
            this.attempt = 0;
            this.setStatus('connected');
            this.log.info('event stream open');
          },
          onMessage: (message) => this.handle(message),
          onClose: (error) => {
            this.stream = undefined;
            this.log.warn(`event stream closed${error ? `: ${error.message}` : ''}`);
            this.scheduleReconnect(error);
          },
        },
      );
    } catch (error) {
      this.log.warn(`broker not reachable: ${(error as Error).message}`);
      this.scheduleReconnect(error);
    }
  }

  private scheduleReconnect(error: unknown): void {
    if (this.disposed || !this.started) return;

    const unauthorized = error instanceof AgentvmError && error.code === 'UNAUTHORIZED';
    this.setStatus(unauthorized ? 'unauthorized' : 'unreachable');

    const delayMs = backoffDelayMs(this.attempt++);
    this.log.debug(`reconnecting in ${delayMs} ms (attempt ${this.attempt})`);
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => void this.connect(), delayMs);
  }

  private restart(): void {
    if (!this.started) return;

    this.stream?.close();
    this.stream = undefined;
    clearTimeout(this.reconnectTimer);
    this.attempt = 0;
    void this.connect();
  }

  private handle(message: ServerStreamMessage): void {
    switch (message.type) {
      case 'agent':
        this.upsert(message.agent);
        break;
      case 'removed':
        if (this.agents.delete(message.agentId)) {
          this.removedEmitter.fire(message.agentId);
          this.changedEmitter.fire();
        }
        break;
      case 'event':
        this.lastEventId = Math.max(this.lastEventId, message.event.id);
        this.eventEmitter.fire(message.event);
        break;
      case 'error':
        this.log.warn(`stream error ${message.code}: ${message.message}`);
        break;
    }
  }

  private replaceAll(agents: Agent[]): void {
    const seen = new Set<string>();
    for (const agent of agents) {
      seen.add(agent.id);
      const previous = this.agents.get(agent.id);
      this.agents.set(agent.id, agent);
      if (!previous || previous.updatedAt !== agent.updatedAt || previous.state !== agent.state) {
        this.agentEmitter.fire({ agent, previous });
      }
    }
    for (const id of [...this.agents.keys()]) {
      if (seen.has(id)) continue;

      this.agents.delete(id);
      this.removedEmitter.fire(id);
    }
    this.changedEmitter.fire();
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
