import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { agentDir } from '../../../server/config/paths';
import type { FakeVmBroker } from '../../helpers/fakeVmDriver';
import { startFakeVmBroker } from '../../helpers/fakeVmDriver';
import { until } from '../../helpers/until';

describe('what a queued agent finds in its directory when it starts (unit)', function () {
  this.timeout(30_000);
  let harness: FakeVmBroker;
  let stopped: string[];
  let spareDirs: Set<string>;

  beforeEach(async () => {
    harness = await startFakeVmBroker('agentvm-queued-leftover', {
      plain: { name: 'plain', command: 'true' },
    });
    stopped = [];
    spareDirs = new Set();
    harness.driver.stopLeftover = (vmDir: string) => {
      stopped.push(vmDir);
      return Promise.resolve(false);
    };
    harness.driver.hasSpare = (vmDir: string) => spareDirs.has(vmDir);
  });

  afterEach(async () => {
    await harness.stop();
  });

  const row = (id: string) => harness.broker.store.getAgent(id)!;

  it('stops whatever VM process a previous broker left there (a spare it had claimed) before starting', async () => {
    const id = await harness.delegate('plain');
    await until(() => row(id).state === 'running', 'the agent runs');
    assert.deepEqual(stopped, [agentDir(id, harness.dataDir)]);
  });

  it('leaves this broker’s own spare there for the start to take, with its disk', async () => {
    // The spare is prepared in the directory before the agent is admitted into it.
    const reserved = 'spare0000001';
    const dir = agentDir(reserved, harness.dataDir);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'overlay.qcow2'), 'the spare QEMU has this disk open');
    spareDirs.add(dir);
    const manager = harness.broker.manager as unknown as {
      spares?: { claim(): string | undefined; release(): Promise<void>; close(): Promise<void> };
    };
    manager.spares = {
      claim: () => reserved,
      release: () => Promise.resolve(),
      close: () => Promise.resolve(),
    };

    const id = await harness.delegate('plain');
    assert.equal(id, reserved);
    await until(() => row(id).state === 'running', 'the agent runs');
    assert.deepEqual(stopped, []);
    assert.equal(fs.existsSync(path.join(dir, 'overlay.qcow2')), true);
  });
});
