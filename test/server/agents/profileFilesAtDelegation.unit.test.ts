import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bundleRepository } from '../../../client/repoBundle';
import type { HostMessage } from '../../../protocol/control';
import { Broker } from '../../../server/Broker';
import { silentLogger } from '../../../server/log';
import { ProfileRegistry } from '../../../server/profiles/ProfileRegistry';
import { FakeDriver, fakeImage } from '../../helpers/fakeVmDriver';
import { makeTempRepo } from '../../helpers/repos';
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
  let dataDir: string;
  let profilesDir: string;
  let repoDir: string;
  let driver: FakeDriver;
  let broker: Broker;
  const tool = () => path.join(profilesDir, 'tool.sh');

  beforeEach(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-profile-files-'));
    profilesDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-profile-files-profiles-'));
    fs.writeFileSync(
      path.join(profilesDir, 'tooled.json'),
      JSON.stringify({ name: 'tooled', command: 'true', files: { '/opt/tool.sh': 'tool.sh' } }),
    );
    fs.writeFileSync(tool(), 'echo version one\n', { mode: 0o755 });
    repoDir = makeTempRepo();
    driver = new FakeDriver();
    broker = new Broker({
      dataDir,
      port: 0,
      logger: silentLogger,
      driver,
      loadImage: () => fakeImage,
      profiles: new ProfileRegistry([profilesDir]),
      version: 'test',
    });
    await broker.start();
  });

  afterEach(async () => {
    await broker.stop();
    for (const dir of [dataDir, profilesDir, repoDir]) {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  async function delegate(): Promise<string> {
    const repo = await bundleRepository(repoDir);
    const agent = await broker.manager.create(os.userInfo().username, {
      text: 'a task',
      profile: 'tooled',
      repo,
    });
    return agent.id;
  }

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
