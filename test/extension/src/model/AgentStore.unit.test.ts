import '../../support/vscodeStub';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { BrokerClient } from '../../../../client/BrokerClient';
import { bundleRepository } from '../../../../client/repoBundle';
import type { BrokerConnection } from '../../../../extension/src/broker/BrokerConnection';
import type { ComponentLog } from '../../../../extension/src/log';
import { AgentStore } from '../../../../extension/src/model/AgentStore';
import {
  hangingDriver,
  startImagelessBroker,
  type ImagelessBroker,
} from '../../../helpers/imagelessBroker';
import { makeTempRepo } from '../../../helpers/repos';
import { holdSubscriptions, withoutAcknowledgements } from '../../../helpers/streamServerHooks';
import { until } from '../../../helpers/until';

describe('AgentStore (unit)', function () {
  this.timeout(20_000);
  let harness: ImagelessBroker;
  let repo: string;
  let api: BrokerClient;
  const logLines: string[] = [];
  const stores: AgentStore[] = [];

  const log: ComponentLog = {
    trace: (message) => logLines.push(`trace ${message}`),
    debug: (message) => logLines.push(`debug ${message}`),
    info: (message) => logLines.push(`info ${message}`),
    warn: (message) => logLines.push(`warn ${message}`),
    error: (message) => logLines.push(`error ${message}`),
  };

  function newStore(options: { subscribeAckTimeoutMs?: number } = {}): AgentStore {
    const connection = {
      getClient: async () => new BrokerClient({ url: harness.url, token: harness.token }),
      onDidChange: () => ({ dispose: () => undefined }),
    } as unknown as BrokerConnection;
    const store = new AgentStore(connection, log, options);
    stores.push(store);
    return store;
  }

  async function newAgent(): Promise<string> {
    const upload = await bundleRepository(repo);
    return (await api.createAgent({ text: 'a task', profile: 'plain', repo: upload })).id;
  }

  beforeEach(async () => {
    harness = await startImagelessBroker({ driver: hangingDriver });
    repo = makeTempRepo();
    api = new BrokerClient({ url: harness.url, token: harness.token });
  });

  afterEach(async function () {
    for (const store of stores.splice(0)) store.dispose();
    await harness.stop();
    fs.rmSync(repo, { recursive: true, force: true });
    if (this.currentTest?.state === 'failed') console.error(logLines.join('\n'));
    logLines.length = 0;
  });

  it('gets a change made after its list was read but before the broker took up its subscription (regression: it listed as the socket opened, and kept the old state)', async () => {
    const agentId = await newAgent();
    const gate = holdSubscriptions(harness);
    const store = newStore({ subscribeAckTimeoutMs: 10_000 });

    // A store that lists without waiting for the acknowledgement has its list by now.
    await store.whenLoaded(500);
    assert.equal((await api.cancel(agentId)).state, 'cancelled');
    gate.release();

    await until(() => store.status === 'connected', 'the store connected');
    await until(
      () => store.get(agentId)?.state === 'cancelled',
      'the store has the agent cancelled',
      3_000,
    );
  });

  it('lists agents only once the broker acknowledged the subscription', async () => {
    const agentId = await newAgent();
    const gate = holdSubscriptions(harness);
    const store = newStore({ subscribeAckTimeoutMs: 10_000 });

    await store.whenLoaded(500);
    assert.equal(store.get(agentId), undefined, 'no list before the acknowledgement');
    assert.equal(store.status, 'connecting');

    gate.release();
    await store.whenLoaded(5_000);
    assert.equal(store.get(agentId)?.state, 'starting');
  });

  it('still lists, after a bounded wait, from a broker that never acknowledges, and follows its changes', async () => {
    const agentId = await newAgent();
    withoutAcknowledgements(harness);
    const store = newStore({ subscribeAckTimeoutMs: 300 });

    const startedAt = Date.now();
    await store.whenLoaded(5_000);
    assert.equal(store.get(agentId)?.state, 'starting');
    assert.ok(Date.now() - startedAt >= 300, 'it waited for an acknowledgement first');
    await until(() => store.status === 'connected', 'the store connected');
    assert.ok(logLines.some((line) => line.includes('no acknowledgement of the subscription')));

    await api.cancel(agentId);
    await until(() => store.get(agentId)?.state === 'cancelled', 'the change arrived', 3_000);
  });

  it('knows when each agent arrived, listed or streamed, so a running VM time can be counted on from then', async () => {
    const agentId = await newAgent();
    const store = newStore();

    const beforeList = Date.now();
    await store.whenLoaded(5_000);
    const listedAt = store.receivedAt(agentId);
    assert.ok(listedAt !== undefined && listedAt >= beforeList && listedAt <= Date.now());
    assert.equal(typeof store.get(agentId)?.vmSeconds, 'number', 'the broker sends vmSeconds');
    await until(() => store.status === 'connected', 'the store connected');

    await new Promise((resolve) => setTimeout(resolve, 20));
    await api.cancel(agentId);
    await until(() => store.get(agentId)?.state === 'cancelled', 'the change arrived', 3_000);
    assert.ok(
      Number(store.receivedAt(agentId)) > listedAt,
      'the streamed version has its own time',
    );

    await api.remove(agentId);
    await until(() => store.get(agentId) === undefined, 'the removal arrived', 3_000);
    assert.equal(store.receivedAt(agentId), undefined);
  });
});
