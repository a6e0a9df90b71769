import assert from 'node:assert/strict';
import type { FakeVmBroker } from '../../helpers/fakeVmDriver';
import { startFakeVmBroker } from '../../helpers/fakeVmDriver';
import { until } from '../../helpers/until';

describe("an ended agent's VM pid in the store (unit)", function () {
  this.timeout(30_000);
  let harness: FakeVmBroker;

  beforeEach(async () => {
    harness = await startFakeVmBroker('agentvm-vmpid', {
      plain: { name: 'plain', command: 'true' },
      short: { name: 'short', command: 'true', timeLimitMs: 300, onLimit: 'stop' },
    });
  });

  afterEach(async () => {
    await harness.stop();
  });

  const row = (id: string) => harness.broker.store.getAgent(id)!;

  async function runningAgent(profile = 'plain'): Promise<string> {
    const id = await harness.delegate(profile);
    await until(() => row(id).state === 'running', 'the agent runs');
    assert.equal(row(id).vmPid, process.pid, 'a running agent names its VM');
    return id;
  }

  it('clears the pid of a cancelled agent (regression: `cancel` left vm_pid set after its VM was stopped)', async () => {
    const id = await runningAgent();

    await harness.broker.manager.cancel(id);

    assert.equal(row(id).state, 'cancelled');
    assert.equal(row(id).vmPid, null);
  });

  it('clears the pid of an agent failed because its VM ended unexpectedly', async () => {
    const id = await runningAgent();

    await harness.driver.vms.at(-1)!.stop();
    await until(() => row(id).state === 'failed', 'the agent failed');

    assert.equal(row(id).vmPid, null);
  });

  it('clears the pid of an agent its time limit stopped', async () => {
    const id = await runningAgent('short');

    await until(() => row(id).state === 'failed', 'the time limit stopped the agent');

    assert.equal(row(id).vmPid, null);
  });
});
