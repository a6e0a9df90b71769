import assert from 'node:assert/strict';
import { BrokerClient } from '../../../client/BrokerClient';
import type { FakeVmBroker } from '../../helpers/fakeVmDriver';
import { startFakeVmBroker } from '../../helpers/fakeVmDriver';
import { until } from '../../helpers/until';

describe("a running agent's VM time through the broker's API (unit)", function () {
  this.timeout(30_000);
  let harness: FakeVmBroker;

  before(async () => {
    harness = await startFakeVmBroker('agentvm-livevmtime', {
      plain: { name: 'plain', command: 'true' },
    });
  });

  after(async () => {
    await harness.stop();
  });

  it('counts the run going on now, not only the runs that ended (regression: the broker did not pass its live runs to the API)', async () => {
    const id = await harness.delegate('plain');
    await until(() => harness.broker.store.getAgent(id)!.state === 'running', 'the agent runs');
    assert.equal(harness.broker.store.getAgent(id)!.vmSeconds, 0, 'nothing charged yet');
    await new Promise((resolve) => setTimeout(resolve, 300));

    const client = new BrokerClient({ url: harness.url, token: harness.token });
    const agent = await client.getAgent(id);
    assert.ok((agent.vmSeconds ?? 0) >= 0.3, `vmSeconds ${agent.vmSeconds}`);
    const listed = (await client.listAgents()).find((entry) => entry.id === id);
    assert.ok((listed?.vmSeconds ?? 0) >= 0.3, `listed vmSeconds ${listed?.vmSeconds}`);
  });
});
