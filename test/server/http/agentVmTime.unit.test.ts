import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import WebSocket from 'ws';
import { agentSchema, serverStreamMessageSchema, type Agent } from '../../../protocol/api';
import { createApp } from '../../../server/http/createApp';
import { EventStreamServer } from '../../../server/http/eventStream';
import { silentLogger } from '../../../server/log';
import { publicAgent } from '../../../server/store/Store';
import { anAgentRecord } from '../../helpers/anAgentRecord';
import {
  hangingDriver,
  startImagelessBroker,
  type ImagelessBroker,
} from '../../helpers/imagelessBroker';
import { until } from '../../helpers/until';

/**
 * `vmSeconds` of the Agents the API sends: the seconds charged to the agent's record plus the run
 * segment its VM is in now, which the broker charges only when the segment ends. The app and the
 * stream are built here on a real store, with the running segment given as the broker gives it.
 */
describe('the VM time of agents in the API (unit)', function () {
  this.timeout(20_000);
  let harness: ImagelessBroker;
  /** The agent's VM has run 12.5 s in segments that ended, and 3.25 s in the one running now. */
  const liveVmMs = (agentId: string) => (agentId === 'ran1' ? 3_250 : 0);

  beforeEach(async () => {
    harness = await startImagelessBroker({ driver: hangingDriver });
    const owner = os.userInfo().username;
    harness.broker.store.insertAgent(anAgentRecord({ id: 'ran1', owner, vmSeconds: 12.5 }));
    harness.broker.store.insertAgent(
      anAgentRecord({ id: 'idle1', owner, state: 'done', vmSeconds: 4 }),
    );
  });

  afterEach(async () => {
    await harness.stop();
  });

  function app(withLiveSegment: boolean) {
    const { store, manager, profiles, policy } = harness.broker;
    return createApp({
      store,
      manager,
      profiles,
      policy,
      logger: silentLogger,
      version: 'test',
      liveVmMs: withLiveSegment ? liveVmMs : undefined,
    });
  }

  async function get(withLiveSegment: boolean, path: string): Promise<unknown> {
    const response = await app(withLiveSegment).request(path, {
      headers: { authorization: `Bearer ${harness.token}` },
    });
    assert.equal(response.status, 200, await response.clone().text());
    return response.json();
  }

  it('counts the segment running now on top of the charged seconds (regression: the Agent had no VM time)', async () => {
    const one = agentSchema.parse(await get(true, '/v1/agents/ran1'));
    const all = agentSchema.array().parse(await get(true, '/v1/agents'));

    assert.equal(one.vmSeconds, 15.75);
    const byId = Object.fromEntries(all.map((agent) => [agent.id, agent.vmSeconds]));
    assert.equal(byId.ran1, 15.75);
    assert.equal(byId.idle1, 4);
  });

  it('counts only the segments that ended when it is not told of a running one', async () => {
    const one = agentSchema.parse(await get(false, '/v1/agents/ran1'));

    assert.equal(one.vmSeconds, 12.5);
  });

  it('sends the VM time with the agent updates of the event stream too', async () => {
    const server = http.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { store, manager } = harness.broker;
    const stream = new EventStreamServer(
      { store, manager, logger: silentLogger, liveVmMs },
      server,
    );
    const { port } = server.address() as AddressInfo;
    const socket = new WebSocket(`ws://127.0.0.1:${port}/v1/events`, {
      headers: { authorization: `Bearer ${harness.token}` },
    });
    try {
      const updates: Agent[] = [];
      const subscribed = new Promise<void>((resolve) =>
        socket.on('message', (data) => {
          const message = serverStreamMessageSchema.parse(JSON.parse(data.toString()));
          if (message.type === 'subscribed') resolve();
          if (message.type === 'agent') updates.push(message.agent);
        }),
      );
      await new Promise((resolve) => socket.once('open', resolve));
      socket.send(JSON.stringify({ type: 'subscribe', agentId: 'ran1' }));
      await subscribed;

      manager.events.emit('agent', publicAgent(store.getAgent('ran1')!));
      await until(() => updates.length > 0, 'the update arrived');

      assert.equal(updates[0]!.vmSeconds, 15.75);
    } finally {
      socket.terminate();
      stream.close();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
