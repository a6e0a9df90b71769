import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Broker } from '../../../server/Broker';
import { agentDir } from '../../../server/config/paths';
import { silentLogger } from '../../../server/log';
import { ProfileRegistry } from '../../../server/profiles/ProfileRegistry';
import { QemuDriver } from '../../../server/vmm/qemu/QemuDriver';
import {
  FakeDriver,
  fakeImage,
  startFakeVmBroker,
  type FakeVmBroker,
} from '../../helpers/fakeVmDriver';
import { fakeVmProcess } from '../../helpers/fakeVmProcess';
import { useSuiteEnv } from '../../helpers/useSuiteEnv';

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('a spare a killed broker had claimed for a queued agent (unit)', function () {
  this.timeout(30_000);
  // No start ever comes: the agent stays queued, as behind a long queue.
  useSuiteEnv({ AGENTVM_MAX_BOOTS: '0' });
  let leftoverPid: number | undefined;
  let first: FakeVmBroker | undefined;
  let second: Broker | undefined;

  afterEach(async () => {
    if (leftoverPid !== undefined && isAlive(leftoverPid)) process.kill(leftoverPid, 'SIGKILL');
    await second?.stop();
    // Stopped already; this removes the directories the two brokers shared.
    await first?.stop();
    leftoverPid = undefined;
    first = undefined;
    second = undefined;
  });

  it('is ended when the next broker starts, so cancelling the agent leaves no VM process behind', async () => {
    first = await startFakeVmBroker('agentvm-queued-spare', {
      plain: { name: 'plain', command: 'true' },
    });
    const id = await first.delegate('plain');
    // The spare's QEMU in the agent's directory, which the killed broker could not end.
    const dir = agentDir(id, first.dataDir);
    const pidFile = path.join(dir, 'qemu.pid');
    leftoverPid = fakeVmProcess(pidFile);
    fs.writeFileSync(pidFile, String(leftoverPid));
    await first.broker.stop();

    const driver = new FakeDriver();
    driver.stopLeftover = (vmDir) => new QemuDriver({ logger: silentLogger }).stopLeftover(vmDir);
    second = new Broker({
      dataDir: first.dataDir,
      port: 0,
      logger: silentLogger,
      driver,
      loadImage: () => fakeImage,
      profiles: new ProfileRegistry([first.profilesDir]),
      version: 'test',
    });
    await second.start();
    assert.equal(second.store.getAgent(id)?.state, 'queued');

    await second.manager.cancel(id);
    assert.equal(isAlive(leftoverPid), false, `the leftover process ${leftoverPid} still runs`);
    assert.equal(fs.existsSync(dir), true, 'the cancelled agent keeps its directory');
  });
});
