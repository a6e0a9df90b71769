import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { HostMessage } from '../../../protocol/control';
import type { Broker } from '../../../server/Broker';
import { startFakeVmBroker, type FakeDriver, type FakeVmBroker } from '../../helpers/fakeVmDriver';
import { until } from '../../helpers/until';

/** The text of `guestPath` in the task the broker sent its guest. */
function sentFile(sent: HostMessage[], guestPath: string): string | undefined {
  const task = sent.find((message) => message.type === 'task');
  if (task?.type !== 'task') return undefined;

  const file = task.task.files.find((entry) => entry.path === guestPath);
  return file && Buffer.from(file.data, 'base64').toString('utf8');
}

describe("an agent's profile files are those of its delegation (unit)", function () {
  this.timeout(30_000);
  let harness: FakeVmBroker;
  let driver: FakeDriver;
  let broker: Broker;
  const tool = () => path.join(harness.profilesDir, 'tool.sh');

  beforeEach(async () => {
    harness = await startFakeVmBroker(
      'agentvm-profile-files',
      { tooled: { name: 'tooled', command: 'true', files: { '/opt/tool.sh': 'tool.sh' } } },
      { 'tool.sh': 'echo version one\n' },
    );
    ({ driver, broker } = harness);
  });

  afterEach(async () => {
    await harness.stop();
  });

  const delegate = () => harness.delegate('tooled');

  it('sends the files as they were when the agent was delegated, not as they are when it starts', async () => {
    // The profile's file changes (or goes) between delegation and the VM's start, as it may for
    // an agent that waits in the queue.
    driver.beforeReady = () => fs.writeFileSync(tool(), 'echo version two\n');

    const id = await delegate();
    await until(() => broker.manager.get(id, '', true).state === 'running', 'the agent runs');

    assert.equal(sentFile(driver.vms[0]!.sent, '/opt/tool.sh'), 'echo version one\n');
  });

  it('starts an agent whose profile file was removed after its delegation', async () => {
    driver.beforeReady = () => fs.rmSync(tool());

    const id = await delegate();
    await until(() => broker.manager.get(id, '', true).state !== 'queued', 'the agent started');
    await until(() => broker.manager.get(id, '', true).state !== 'starting', 'the start ended');

    assert.equal(broker.manager.get(id, '', true).state, 'running');
    assert.equal(sentFile(driver.vms[0]!.sent, '/opt/tool.sh'), 'echo version one\n');
  });
});
