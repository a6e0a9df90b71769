import assert from 'node:assert/strict';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import WebSocket from 'ws';
import { bundleRepository } from '../../../client/repoBundle';
import { BrokerClient } from '../../../client/BrokerClient';
import type { AgentEvent, ServerStreamMessage } from '../../../protocol/api';
import { MAX_BUFFERED_BYTES } from '../../../server/http/eventStream';
import {
  hangingDriver,
  startImagelessBroker,
  type ImagelessBroker,
} from '../../helpers/imagelessBroker';
import { makeTempRepo } from '../../helpers/repos';
import { until } from '../../helpers/until';

/** A WebSocket client of the broker's stream that keeps every message it receives. */
class Follower {
  readonly received: ServerStreamMessage[] = [];
  closeCode: number | undefined;
  readonly socket: WebSocket;

  constructor(url: string, token: string) {
    this.socket = new WebSocket(`${url.replace(/^http/, 'ws')}/v1/events`, {
      headers: { authorization: `Bearer ${token}` },
    });
    this.socket.on('message', (data) => this.received.push(JSON.parse(data.toString())));
    this.socket.on('close', (code) => (this.closeCode = code));
  }

  async opened(): Promise<this> {
    await once(this.socket, 'open');
    return this;
  }

  events(): AgentEvent[] {
    return this.received.flatMap((message) => (message.type === 'event' ? [message.event] : []));
  }

  errors(): string[] {
    return this.received.flatMap((message) => (message.type === 'error' ? [message.code] : []));
  }
}

describe('the event stream under a hostile or careless client (unit)', function () {
  this.timeout(30_000);
  let harness: ImagelessBroker;
  let repo: string;
  const followers: Follower[] = [];

  beforeEach(async () => {
    harness = await startImagelessBroker({ driver: hangingDriver });
    repo = makeTempRepo();
  });

  afterEach(async () => {
    for (const follower of followers.splice(0)) follower.socket.terminate();
    await harness.stop();
    fs.rmSync(repo, { recursive: true, force: true });
  });

  async function follower(token = harness.token): Promise<Follower> {
    const made = new Follower(harness.url, token);
    followers.push(made);
    return made.opened();
  }

  async function newAgent(token = harness.token): Promise<string> {
    const client = new BrokerClient({ url: harness.url, token });
    const upload = await bundleRepository(repo);
    return (await client.createAgent({ text: 'a task', profile: 'plain', repo: upload })).id;
  }

  it('answers malformed frames with one error each and keeps the connection usable', async () => {
    const agentId = await newAgent();
    const client = await follower();

    client.socket.send('{not json');
    client.socket.send(JSON.stringify({ type: 'subscribe', afterEventId: -1 }));
    client.socket.send(JSON.stringify({ type: 'unsubscribe' }));
    client.socket.send(JSON.stringify([1, 2, 3]));
    client.socket.send(Buffer.from([0xff, 0xfe, 0x00]));
    client.socket.send(JSON.stringify({ type: 'subscribe', agentId: '../../etc/passwd' }));
    client.socket.send(JSON.stringify({ type: 'subscribe', agentId: '\u0000💥' }));
    await until(() => client.errors().length === 7, 'seven errors arrived');
    assert.deepEqual(client.errors(), [
      'BAD_REQUEST',
      'VALIDATION_FAILED',
      'VALIDATION_FAILED',
      'VALIDATION_FAILED',
      'BAD_REQUEST',
      'AGENT_NOT_FOUND',
      'AGENT_NOT_FOUND',
    ]);

    client.socket.send(JSON.stringify({ type: 'subscribe', agentId, afterEventId: 0 }));
    await until(() => client.events().length > 0, 'the replay arrived after the bad frames');
    assert.equal(client.closeCode, undefined);
  });

  it('closes a frame over 64 KiB with 1009 and goes on serving other clients', async () => {
    const big = await follower();
    big.socket.send(JSON.stringify({ type: 'subscribe', agentId: 'x'.repeat(70 * 1024) }));
    await until(() => big.closeCode !== undefined, 'the oversized frame closed its connection');
    assert.equal(big.closeCode, 1009);

    const health = await fetch(`${harness.url}/v1/health`);
    assert.equal(health.status, 200);
  });

  it("refuses a subscription to another user's agent like an unknown id and sends it nothing of hers", async () => {
    const aliceToken = harness.broker.store.createToken('alice');
    const bobToken = harness.broker.store.createToken('bob');
    const alicesAgent = await newAgent(aliceToken);
    const bob = await follower(bobToken);

    bob.socket.send(JSON.stringify({ type: 'subscribe', agentId: alicesAgent, afterEventId: 0 }));
    bob.socket.send(JSON.stringify({ type: 'subscribe', afterEventId: 0 }));
    await new Promise((resolve) => setTimeout(resolve, 200));
    await newAgent(aliceToken);
    await new Promise((resolve) => setTimeout(resolve, 300));

    assert.deepEqual(bob.errors(), ['AGENT_NOT_FOUND']);
    // Not even how many events her agents have: his acknowledgement counts his agents only.
    assert.deepEqual(
      bob.received.filter((message) => message.type !== 'error'),
      [{ type: 'subscribed', afterEventId: 0, lastEventId: 0 }],
      'bob heard nothing of alice',
    );
  });

  it('subscribing twice replaces the subscription: later events arrive once, not twice', async () => {
    const agentId = await newAgent();
    const client = await follower();
    client.socket.send(JSON.stringify({ type: 'subscribe', agentId }));
    client.socket.send(JSON.stringify({ type: 'subscribe', agentId }));
    await new Promise((resolve) => setTimeout(resolve, 200));

    harness.broker.store.appendEvent(agentId, { kind: 'info', message: 'once' });
    const [event] = harness.broker.store.events(agentId).slice(-1);
    harness.broker.manager.events.emit('event', event);
    await until(() => client.events().length > 0, 'the event arrived');
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(client.events().filter((seen) => seen.message === 'once').length, 1);
  });

  it('replays every event after afterEventId, also past 10 000 (regression: the replay stopped at 10 000 and the rest was never sent)', async () => {
    const agentId = await newAgent();
    const { store } = harness.broker;
    store.transaction(() => {
      for (let index = 0; index < 10_050; index++)
        store.appendEvent(agentId, { kind: 'output', message: `line ${index}`, data: {} });
    });
    const stored = store.events(agentId, 0, 1_000_000).length;
    assert.ok(stored > 10_050);

    const client = await follower();
    client.socket.send(JSON.stringify({ type: 'subscribe', agentId, afterEventId: 0 }));
    await until(() => client.events().length >= stored, `all ${stored} events arrived`, 15_000);
    const ids = client.events().map((event) => event.id);
    assert.equal(new Set(ids).size, stored);
  });

  it('does not buffer without bound for a client that never reads: it lets it go (regression: 92 of the 96 MiB sent to it stayed queued)', async () => {
    const socket = net.connect(Number(new URL(harness.url).port), '127.0.0.1');
    try {
      await once(socket, 'connect');
      socket.write(
        'GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n' +
          `Authorization: Bearer ${harness.token}\r\n\r\n`,
      );
      const [answer] = (await once(socket, 'data')) as [Buffer];
      assert.match(answer.toString(), /^HTTP\/1\.1 101/);
      socket.write(maskedTextFrame(JSON.stringify({ type: 'subscribe' })));
      // From here on the client reads nothing.
      socket.pause();
      await new Promise((resolve) => setTimeout(resolve, 100));

      const stream = serverSockets(harness);
      assert.equal(stream.size, 1);
      const [serverSide] = stream;
      const chunk = 'x'.repeat(512 * 1024);
      for (let index = 0; index < 192; index++) {
        const event: AgentEvent = {
          id: 1_000_000 + index,
          agentId: 'flood',
          at: Date.now(),
          kind: 'output',
          message: chunk,
          data: {},
        };
        harness.broker.manager.events.emit('event', event);
      }

      assert.ok(
        serverSide!.bufferedAmount <= MAX_BUFFERED_BYTES + 1024 * 1024,
        `${(serverSide!.bufferedAmount / 1048576).toFixed(1)} MiB queued for a client that reads nothing`,
      );
      assert.notEqual(serverSide!.readyState, WebSocket.OPEN, 'the slow client was let go');
    } finally {
      socket.destroy();
    }
  });
});

/** The broker's server-side WebSockets (private to EventStreamServer: read for the bound only). */
function serverSockets(harness: ImagelessBroker): Set<WebSocket> {
  const stream = (harness.broker as unknown as { stream: { wss: { clients: Set<WebSocket> } } })
    .stream;
  return stream.wss.clients;
}

/** A client-to-server text frame (clients must mask), for a payload under 126 bytes. */
function maskedTextFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  assert.ok(payload.length < 126);
  const mask = Buffer.from([1, 2, 3, 4]);
  const masked = Buffer.from(payload.map((byte, index) => byte ^ mask[index % 4]!));
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]);
}
