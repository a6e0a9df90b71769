import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import {
  clientStreamMessageSchema,
  type Agent,
  type AgentEvent,
  type ServerStreamMessage,
} from '../../protocol/api';
import { AgentvmError } from '../../protocol/errors';
import type { AgentManager } from '../agents/AgentManager';
import type { Logger } from '../log';
import type { Store } from '../store/Store';
import { agentVmTime, type LiveVmMs } from './agentVmTime';

interface Subscriber {
  socket: WebSocket;
  user: string;
  admin: boolean;
  /** Only this agent's messages, or all the user's agents when undefined. */
  agentId?: string;
  subscribed: boolean;
}

/**
 * Most bytes the broker queues for one stream client that is not reading them, beyond what the
 * kernel holds. Past it the client is let go (close code 1013): it reconnects with `afterEventId`
 * set to the last event it received and loses nothing, and no client can grow the broker's memory.
 */
export const MAX_BUFFERED_BYTES = 16 * 1024 * 1024;

/** Close code for a client let go for falling behind (1013: try again later). */
export const FELL_BEHIND_CLOSE_CODE = 1013;

/** Events read from the store at a time for a replay. */
const REPLAY_PAGE_EVENTS = 1000;

/**
 * WebSocket /v1/events: live agent events and agent updates. A client subscribes to one agent or to
 * all of its user's agents and may ask for a replay of the events after a given id, so a client
 * that reconnects misses nothing. Each subscription is answered with `subscribed` once in effect,
 * so a client can read the current state over HTTP after it without a gap.
 */
export class EventStreamServer {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });
  private readonly subscribers = new Set<Subscriber>();
  private readonly unsubscribe: Array<() => void> = [];
  /**
   * Each agent's newest event id: read once from the store, then raised by every event as it is
   * published (an event is stored and published in the same turn, so none falls between).
   */
  private readonly newestEventIds: Map<string, number>;

  constructor(
    private readonly deps: {
      store: Store;
      manager: AgentManager;
      logger: Logger;
      /** As createApp's: the current segment of each agent's VM time. */
      liveVmMs?: LiveVmMs;
    },
    server: Server,
  ) {
    server.on('upgrade', (request, socket, head) => this.onUpgrade(request, socket, head));
    this.newestEventIds = deps.store.newestEventIds();
    const onEvent = (event: AgentEvent) => {
      const newest = this.newestEventIds.get(event.agentId) ?? 0;
      this.newestEventIds.set(event.agentId, Math.max(newest, event.id));
      this.broadcast(event.agentId, { type: 'event', event });
    };
    const withVmTime = agentVmTime(deps.store, deps.liveVmMs);
    const onAgent = (agent: Agent) => {
      // Its VM time is read from the store: not for nobody.
      if (this.subscribers.size === 0) return;

      this.broadcast(agent.id, { type: 'agent', agent: withVmTime(agent) }, agent.owner);
    };
    // The record is deleted by now, so the owner comes with the announcement.
    const onRemoved = (agentId: string, owner: string) => {
      this.newestEventIds.delete(agentId);
      this.broadcast(agentId, { type: 'removed', agentId }, owner);
    };
    deps.manager.events.on('event', onEvent);
    deps.manager.events.on('agent', onAgent);
    deps.manager.events.on('removed', onRemoved);
    this.unsubscribe.push(
      () => deps.manager.events.off('event', onEvent),
      () => deps.manager.events.off('agent', onAgent),
      () => deps.manager.events.off('removed', onRemoved),
    );
  }

  close(): void {
    for (const dispose of this.unsubscribe) dispose();
    for (const subscriber of this.subscribers)
      subscriber.socket.close(1001, 'broker shutting down');
    this.subscribers.clear();
    this.wss.close();
  }

  private onUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    // A request target that is not a valid URL must not throw here: nothing would catch it.
    const url = URL.parse(request.url ?? '/', 'http://localhost');
    if (url?.pathname !== '/v1/events') {
      const error = new AgentvmError(
        'NOT_FOUND',
        'WebSocket upgrades are served on /v1/events only',
      );
      refuseUpgrade(socket, error);
      return;
    }

    const bearer = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '')?.[1];
    const identity = this.deps.store.userForToken(bearer ?? url.searchParams.get('token') ?? '');
    if (!identity) {
      const error = new AgentvmError(
        'UNAUTHORIZED',
        'missing or unknown token for the event stream',
      );
      refuseUpgrade(socket, error);
      return;
    }

    this.wss.handleUpgrade(request, socket, head, (ws) => this.onConnection(ws, identity));
  }

  private onConnection(socket: WebSocket, identity: { user: string; admin: boolean }): void {
    const subscriber: Subscriber = { socket, ...identity, subscribed: false };
    this.subscribers.add(subscriber);
    socket.on('close', () => this.subscribers.delete(subscriber));
    socket.on('error', () => this.subscribers.delete(subscriber));
    socket.on('message', (data) => this.onClientMessage(subscriber, data.toString()));
  }

  private onClientMessage(subscriber: Subscriber, text: string): void {
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      return this.send(subscriber, {
        type: 'error',
        code: 'BAD_REQUEST',
        message: 'messages must be JSON',
      });
    }

    const parsed = clientStreamMessageSchema.safeParse(raw);
    if (!parsed.success) {
      return this.send(subscriber, {
        type: 'error',
        code: 'VALIDATION_FAILED',
        message: parsed.error.issues[0]?.message ?? 'invalid message',
      });
    }

    const { agentId, afterEventId } = parsed.data;
    if (agentId !== undefined) {
      const record = this.deps.store.getAgent(agentId);
      if (!record || (!subscriber.admin && record.owner !== subscriber.user)) {
        return this.send(subscriber, {
          type: 'error',
          code: 'AGENT_NOT_FOUND',
          message: `no agent with id "${agentId}"`,
        });
      }
    }

    subscriber.agentId = agentId;
    subscriber.subscribed = true;
    const agents = agentId ? [agentId] : this.visibleAgentIds(subscriber);
    if (afterEventId !== undefined) {
      for (const id of agents) this.replay(subscriber, id, afterEventId);
    }

    // Same turn as the subscription: nothing is published between it and this answer. The id is
    // the newest of the subscribed agents only, so it tells nothing of other users' agents.
    const lastEventId = agents.reduce(
      (newest, id) => Math.max(newest, this.newestEventIds.get(id) ?? 0),
      0,
    );
    this.send(subscriber, { type: 'subscribed', agentId, afterEventId, lastEventId });
  }

  /** Sends the agent's events after `afterEventId`, page by page, while the client keeps up. */
  private replay(subscriber: Subscriber, agentId: string, afterEventId: number): void {
    let afterId = afterEventId;
    for (;;) {
      const page = this.deps.store.events(agentId, afterId, REPLAY_PAGE_EVENTS);
      for (const event of page) this.send(subscriber, { type: 'event', event });
      if (page.length < REPLAY_PAGE_EVENTS || !this.subscribers.has(subscriber)) return;

      afterId = page[page.length - 1]!.id;
    }
  }

  private visibleAgentIds(subscriber: Subscriber): string[] {
    return this.deps.store
      .listAgents(subscriber.admin ? undefined : subscriber.user)
      .map((agent) => agent.id);
  }

  private broadcast(agentId: string, message: ServerStreamMessage, knownOwner?: string): void {
    let owner = knownOwner;
    for (const subscriber of this.subscribers) {
      if (!subscriber.subscribed) continue;
      if (subscriber.agentId !== undefined && subscriber.agentId !== agentId) continue;

      if (!subscriber.admin) {
        owner ??= this.deps.store.getAgent(agentId)?.owner;
        if (owner !== subscriber.user && subscriber.agentId !== agentId) continue;
      }

      this.send(subscriber, message);
    }
  }

  private send(subscriber: Subscriber, message: ServerStreamMessage): void {
    const { socket } = subscriber;
    if (socket.readyState !== socket.OPEN) return;

    if (socket.bufferedAmount > MAX_BUFFERED_BYTES) {
      this.letGo(subscriber);
      return;
    }

    socket.send(JSON.stringify(message));
  }

  /**
   * Ends the stream of a client that has fallen too far behind. What is queued for it still goes
   * out before the close frame; ws destroys the connection if the client never reads it.
   */
  private letGo(subscriber: Subscriber): void {
    this.subscribers.delete(subscriber);
    this.deps.logger.warn('stream.client_behind', {
      user: subscriber.user,
      bufferedBytes: subscriber.socket.bufferedAmount,
    });
    subscriber.socket.close(
      FELL_BEHIND_CLOSE_CODE,
      'fell too far behind: reconnect with afterEventId set to the last event id received',
    );
  }
}

/** Ends an upgrade request with the registry's status and error body. */
function refuseUpgrade(socket: Duplex, error: AgentvmError): void {
  const body = JSON.stringify(error.toBody());
  socket.end(
    `HTTP/1.1 ${error.status} ${error.code}\r\ncontent-type: application/json\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}
