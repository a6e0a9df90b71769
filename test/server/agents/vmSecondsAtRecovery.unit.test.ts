import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bundleRepository } from '../../../client/repoBundle';
import { Broker } from '../../../server/Broker';
import { agentDir, storePath } from '../../../server/config/paths';
import { silentLogger } from '../../../server/log';
import { ProfileRegistry } from '../../../server/profiles/ProfileRegistry';
import { Store, type AgentRecord } from '../../../server/store/Store';
import { isProcessAlive } from '../../../server/vmm/pidLock';
import type { Vm, VmmDriver, VmSpec } from '../../../server/vmm/VmmDriver';
import { FakeDriver, FakeVm, fakeImage } from '../../helpers/fakeVmDriver';
import { anAgentRecord } from '../../helpers/anAgentRecord';
import { fakeVmProcess } from '../../helpers/fakeVmProcess';
import { makeTempRepo } from '../../helpers/repos';
import { until } from '../../helpers/until';

/** A FakeDriver that also takes over a VM left running by an earlier broker. */
function reattachingDriver(): FakeDriver {
  const driver = new FakeDriver();
  (driver as VmmDriver).attach = async (spec: VmSpec, pid: number): Promise<Vm> => {
    const vm = new FakeVm(spec.id, pid, spec.vmDir, () => Promise.resolve());
    driver.vms.push(vm);
    return vm;
  };
  return driver;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('VM-seconds of a run segment a broker restart cut (unit)', function () {
  this.timeout(30_000);
  let dataDir: string;
  let profilesDir: string;
  let repoDir: string;
  const brokers: Broker[] = [];
  const started: number[] = [];

  beforeEach(() => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-vmseconds-'));
    profilesDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-vmseconds-profiles-'));
    fs.writeFileSync(
      path.join(profilesDir, 'plain.json'),
      JSON.stringify({ name: 'plain', command: 'true' }),
    );
    repoDir = makeTempRepo();
  });

  afterEach(async () => {
    for (const broker of brokers.splice(0)) await broker.stop();
    for (const pid of started.splice(0)) if (isProcessAlive(pid)) process.kill(pid, 'SIGKILL');
    for (const dir of [dataDir, profilesDir, repoDir]) {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  async function startBroker(stopVmsOnShutdown = false): Promise<Broker> {
    const broker = new Broker({
      dataDir,
      port: 0,
      logger: silentLogger,
      driver: reattachingDriver(),
      loadImage: () => fakeImage,
      profiles: new ProfileRegistry([profilesDir]),
      version: 'test',
      stopVmsOnShutdown,
    });
    brokers.push(broker);
    await broker.start();
    return broker;
  }

  async function stopBroker(broker: Broker): Promise<void> {
    brokers.splice(brokers.indexOf(broker), 1);
    await broker.stop();
  }

  async function runningAgent(broker: Broker): Promise<string> {
    const agent = await broker.manager.create(os.userInfo().username, {
      text: 'a task',
      profile: 'plain',
      repo: await bundleRepository(repoDir),
    });
    await until(() => broker.store.getAgent(agent.id)?.state === 'running', 'the agent runs');
    return agent.id;
  }

  /** Writes a running agent into the store, its run begun `ranMs` ago, the newest entry then. */
  function seedRunningAgent(id: string, ranMs: number, changes: Partial<AgentRecord>): void {
    fs.mkdirSync(agentDir(id, path.resolve(dataDir)), { recursive: true });
    const store = new Store(storePath(path.resolve(dataDir)));
    try {
      const createdAt = Date.now() - ranMs - 1_000;
      store.insertAgent(
        anAgentRecord({
          id,
          owner: os.userInfo().username,
          state: 'running',
          createdAt,
          ...changes,
        }),
      );
      store.appendEvent(id, {
        kind: 'state',
        message: 'running',
        data: { from: 'starting', to: 'running' },
        at: Date.now() - ranMs,
      });
    } finally {
      store.close();
    }
  }

  it('charges a reattached VM from the start of its run, not from the reattach (regression: the time the broker was down was never charged)', async () => {
    const qemu = fakeVmProcess(path.join(dataDir, 'no.pid'));
    started.push(qemu);
    seedRunningAgent('reattach1', 10_000, { vmPid: qemu });

    const broker = await startBroker();
    await broker.manager.cancel('reattach1');

    const { vmSeconds } = broker.store.getAgent('reattach1')!;
    assert.ok(vmSeconds >= 10 && vmSeconds < 15, `charged ${vmSeconds} s`);
  });

  it("charges a VM that ended while the broker was down up to the agent's newest timeline entry", async () => {
    const dead = spawnSync('true').pid as number;
    seedRunningAgent('gone1', 10_000, { vmPid: dead });
    const store = new Store(storePath(path.resolve(dataDir)));
    try {
      store.appendEvent('gone1', {
        kind: 'progress',
        message: 'still at it',
        at: Date.now() - 4_000,
      });
    } finally {
      store.close();
    }

    const broker = await startBroker();

    const record = broker.store.getAgent('gone1')!;
    assert.equal(record.state, 'failed');
    assert.ok(Math.abs(record.vmSeconds - 6) < 0.5, `charged ${record.vmSeconds} s`);
    assert.equal(record.vmPid, null, 'the pid of the VM that ended is cleared');
  });

  it('charges a run that went on across a broker stop and start once, with the time between', async () => {
    const first = await startBroker();
    const id = await runningAgent(first);
    const runFrom = Date.now();
    await sleep(300);
    await stopBroker(first);
    await sleep(500);

    const second = await startBroker();
    await second.manager.cancel(id);

    const { vmSeconds } = second.store.getAgent(id)!;
    const most = (Date.now() - runFrom) / 1000 + 0.2;
    assert.ok(vmSeconds >= 0.8 && vmSeconds <= most, `charged ${vmSeconds} s, at most ${most}`);
  });

  it('does not charge again a VM the stopping broker ended and charged', async () => {
    const first = await startBroker(true);
    const id = await runningAgent(first);
    await sleep(300);
    await stopBroker(first);
    const charged = new Store(storePath(path.resolve(dataDir)));
    const { vmSeconds } = charged.getAgent(id)!;
    charged.close();
    assert.ok(vmSeconds >= 0.3, `charged ${vmSeconds} s at the stop`);

    const second = await startBroker();

    assert.equal(second.store.getAgent(id)!.vmSeconds, vmSeconds);
  });
});
