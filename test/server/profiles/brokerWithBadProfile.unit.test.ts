import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BrokerClient } from '../../../client/BrokerClient';
import { bundleRepository } from '../../../client/repoBundle';
import { AgentvmError } from '../../../protocol/errors';
import type { Broker } from '../../../server/Broker';
import { packageRoot } from '../../../server/config/paths';
import { createImagelessBroker } from '../../helpers/imagelessBroker';
import { makeTempRepo } from '../../helpers/repos';

describe('broker with a bad profile file (unit)', function () {
  this.timeout(60_000);
  let dataDir: string;
  let profilesDir: string;
  let repo: string;
  let broker: Broker;
  let client: BrokerClient;
  let url: string;

  beforeEach(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-broker-'));
    profilesDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-profiles-'));
    repo = makeTempRepo();
    fs.writeFileSync(
      path.join(profilesDir, 'plain.json'),
      JSON.stringify({ name: 'plain', command: 'true' }),
    );
    fs.writeFileSync(
      path.join(profilesDir, 'broken.json'),
      JSON.stringify({ name: 'broken', memoryMiB: 'lots' }),
    );
    broker = createImagelessBroker(dataDir, { profileDirs: [profilesDir] });
    let token: string;
    ({ url, token } = await broker.start());
    client = new BrokerClient({ url, token });
  });

  afterEach(async () => {
    await broker?.stop();
    for (const dir of [dataDir, profilesDir, repo])
      fs.rmSync(dir, { recursive: true, force: true });
  });

  it('starts, lists the good profile, and reports the bad file with its path and reason', async () => {
    assert.deepEqual(
      (await client.profiles()).map((profile) => profile.name),
      ['plain'],
    );
    const [problem, ...more] = await client.profileProblems();

    assert.equal(more.length, 0);
    assert.equal(problem.name, 'broken');
    assert.equal(problem.file, path.join(profilesDir, 'broken.json'));
    assert.match(problem.reason, /memoryMiB/);
  });

  it('refuses delegation with the bad profile as PROFILE_INVALID, creating nothing', async () => {
    const upload = await bundleRepository(repo);
    const error = await client.createAgent({ text: 'do it', profile: 'broken', repo: upload }).then(
      () => assert.fail('expected PROFILE_INVALID'),
      (caught: unknown) => caught,
    );

    assert.ok(error instanceof AgentvmError);
    assert.equal(error.code, 'PROFILE_INVALID');
    assert.ok(error.message.includes(path.join(profilesDir, 'broken.json')), error.message);
    assert.deepEqual(await client.listAgents(), []);
  });

  it('uses a fixed file at once, while an agent keeps the profile it was created with', async () => {
    const upload = await bundleRepository(repo);
    const agent = await client.createAgent({ text: 'do it', profile: 'plain', repo: upload });
    fs.writeFileSync(
      path.join(profilesDir, 'plain.json'),
      JSON.stringify({ name: 'plain', command: 'true', memoryMiB: 256 }),
    );
    fs.writeFileSync(
      path.join(profilesDir, 'broken.json'),
      JSON.stringify({ name: 'broken', command: 'true' }),
    );

    assert.deepEqual(await client.profileProblems(), []);
    assert.equal((await client.profiles()).find((p) => p.name === 'plain')?.memoryMiB, 256);
    assert.equal(broker.store.getAgent(agent.id)?.profileSpec.memoryMiB, 512);
    const second = await client.createAgent({ text: 'do it', profile: 'broken', repo: upload });
    assert.equal(second.profile, 'broken');
  });

  it('shows the bad file in `agentvm profiles`', async function () {
    const entry = path.join(packageRoot(), 'dist', 'cli.js');
    if (!fs.existsSync(entry)) this.skip();

    const token = broker.ensureLocalToken();
    const stdout = await new Promise<string>((resolve, reject) =>
      execFile(
        'node',
        [entry, 'profiles'],
        { env: { ...process.env, AGENTVM_URL: url, AGENTVM_TOKEN: token } },
        (error, output) => (error ? reject(error) : resolve(output)),
      ),
    );

    assert.match(stdout, /^plain /m);
    assert.match(stdout, /not usable until fixed/);
    assert.ok(stdout.includes(path.join(profilesDir, 'broken.json')), stdout);
    assert.match(stdout, /memoryMiB/);
  });
});
