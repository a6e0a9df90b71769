import assert from 'node:assert/strict';
import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket from 'ws';
import { BrokerClient } from '../../../client/BrokerClient';
import { bundleRepository } from '../../../client/repoBundle';
import type { ServerStreamMessage } from '../../../protocol/api';
import { EventStreamServer } from '../../../server/http/eventStream';
import { silentLogger } from '../../../server/log';
import {
  hangingDriver,
  startImagelessBroker,
  type ImagelessBroker,
} from '../../helpers/imagelessBroker';
import { makeTempRepo } from '../../helpers/repos';
import { until } from '../../helpers/until';

/** A raw stream client that keeps every message, in order. */
class StreamClient {
  readonly received: ServerStreamMessage[] = [];
  readonly socket: WebSocket;

  constructor(url: string, token: string) {
    this.socket = new WebSocket(`${url.replace(/^http/, 'ws')}/v1/events`, {
      headers: { authorization: `Bearer ${token}` },
    });
    this.socket.on('message', (data) => this.received.push(JSON.parse(data.toString())));
  }

  subscribe(frame: { agentId?: string; afterEventId?: number }): void {
    this.socket.send(JSON.stringify({ type: 'subscribe', ...frame }));
  }

  acks(): ServerStreamMessage[] {
    return this.received.filter((message) => message.type === 'subscribed');
  }
}

describe('the event stream acknowledges subscriptions (unit)', function () {
  this.timeout(20_000);
  let harness: ImagelessBroker;
  let repo: string;
  const clients: StreamClient[] = [];

  beforeEach(async () => {
    harness = await startImagelessBroker({ driver: hangingDriver });
    repo = makeTempRepo();
  });

  afterEach(async () => {
    for (const client of clients.splice(0)) client.socket.terminate();
    await harness.stop();
    fs.rmSync(repo, { recursive: true, force: true });
  });

  async function streamClient(token = harness.token, url = harness.url): Promise<StreamClient> {
    const client = new StreamClient(url, token);
    clients.push(client);
    await once(client.socket, 'open');
    return client;
  }

  async function newAgent(token = harness.token): Promise<string> {
    const client = new BrokerClient({ url: harness.url, token });
    const upload = await bundleRepository(repo);
    return (await client.createAgent({ text: 'a task', profile: 'plain', repo: upload })).id;
  }

  const newestStoredEventId = () =>
    Math.max(0, ...harness.broker.store.listAgents().flatMap((agent) => eventIds(agent.id)));
  const eventIds = (agentId: string) =>
    harness.broker.store.events(agentId, 0, 1_000_000).map((event) => event.id);

  it('answers a subscription to all agents with `subscribed` and the newest event id', async () => {
    await newAgent();
    const client = await streamClient();

    client.subscribe({});
    await until(() => client.acks().length === 1, 'the subscription was acknowledged');
    assert.deepEqual(client.received, [{ type: 'subscribed', lastEventId: newestStoredEventId() }]);
  });

  it('sends the acknowledgement after the replay, naming the agent and the replay start', async () => {
    const agentId = await newAgent();
    const client = await streamClient();

    client.subscribe({ agentId, afterEventId: 0 });
    await until(() => client.acks().length === 1, 'the subscription was acknowledged');
    const replayed = client.received.flatMap((message) =>
      message.type === 'event' ? [message.event.id] : [],
    );
    assert.deepEqual(replayed, eventIds(agentId));
    assert.deepEqual(client.received.at(-1), {
      type: 'subscribed',
      agentId,
      afterEventId: 0,
      lastEventId: Math.max(...replayed),
    });
  });

  it('sends every event after lastEventId and none before it: reading over HTTP after the ack misses nothing', async () => {
    const agentId = await newAgent();
    const client = await streamClient();
    const api = new BrokerClient({ url: harness.url, token: harness.token });

    client.subscribe({});
    await until(() => client.acks().length === 1, 'the subscription was acknowledged');
    const [ack] = client.acks();
    assert.ok(ack?.type === 'subscribed');
    await api.cancel(agentId);
    await until(
      () => client.received.some((message) => message.type === 'agent'),
      'the cancellation arrived',
    );

    const streamed = client.received.flatMap((message) =>
      message.type === 'event' ? [message.event.id] : [],
    );
    const stored = (await api.events(agentId)).map((event) => event.id);
    assert.ok(streamed.length > 0);
    assert.ok(streamed.every((id) => id > ack.lastEventId));
    assert.deepEqual(
      stored.filter((id) => id > ack.lastEventId),
      streamed,
    );
  });

  it('answers each subscribe frame, and a refused one with an error instead', async () => {
    const agentId = await newAgent();
    const client = await streamClient();

    client.subscribe({ agentId });
    client.subscribe({ agentId: 'nosuchagent' });
    client.subscribe({});
    await until(() => client.received.length === 3, 'three answers arrived');
    assert.deepEqual(
      client.received.map((message) => (message.type === 'error' ? message.code : message)),
      [
        { type: 'subscribed', agentId, lastEventId: newestStoredEventId() },
        'AGENT_NOT_FOUND',
        { type: 'subscribed', lastEventId: newestStoredEventId() },
      ],
    );
  });

  it('counts the events stored before the stream started in lastEventId (a broker restarted with a history)', async () => {
    await newAgent();
    const server = http.createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { store, manager } = harness.broker;
    const restarted = new EventStreamServer({ store, manager, logger: silentLogger }, server);
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const client = await streamClient(harness.token, url);

      client.subscribe({});
      await until(() => client.acks().length === 1, 'the subscription was acknowledged');
      assert.ok(newestStoredEventId() > 0);
      assert.deepEqual(client.acks(), [{ type: 'subscribed', lastEventId: newestStoredEventId() }]);
    } finally {
      restarted.close();
      server.closeAllConnections();
      server.close();
    }
  });
});
