import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { bundleRepository } from '../../client/repoBundle';
import { makeTempRepo } from '../helpers/repos';
import { qemuPidsMentioning, VmBroker } from '../helpers/vmBroker';
import { faultProfilesDir, waitForState } from './faultAgents';

const CYCLES = 10;

/**
 * Issue 6, item 7: one agent through ten pause → snapshot → restore → resume cycles. Its files and
 * a background process it started must come through every one of them.
 */
describe('one agent through ten review cycles (vm)', function () {
  this.timeout(30 * 60_000);
  const harness = new VmBroker();
  let repoDir = '';
  let agentId = '';

  before(async function () {
    this.timeout(40 * 60_000);
    process.env.AGENTVM_PROFILES_DIR = faultProfilesDir;
    await harness.start();
    repoDir = makeTempRepo({ 'README.md': '# cycles\n' });
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed' && agentId)
      console.error(`agent ${agentId}:\n${await harness.describe(agentId)}`);
  });

  after(async () => {
    delete process.env.AGENTVM_PROFILES_DIR;
    await harness.stop();
    if (repoDir) fs.rmSync(repoDir, { recursive: true, force: true });
  });

  it(`keeps the workspace and a background process through ${CYCLES} snapshot/restore cycles`, async () => {
    const repo = await bundleRepository(repoDir);
    agentId = (await harness.client.createAgent({ text: 'cycles', profile: 'faults', repo })).id;
    const agentDir = path.join(harness.dataDir, 'agents', agentId);
    let keeperPid = '';

    for (let cycle = 1; cycle <= CYCLES; cycle++) {
      const paused = await waitForState(harness.client, agentId, ['awaiting_review']);
      assert.equal(paused.review?.message, `cycle ${cycle}`);
      assert.deepEqual(
        qemuPidsMentioning(agentDir),
        [],
        `cycle ${cycle}: no QEMU while awaiting review`,
      );

      await harness.client.review(agentId);
      const exec = async (command: string) =>
        (
          (await harness.client.guest(agentId, { op: 'exec', command })) as {
            stdout: string;
            exitCode?: number;
          }
        ).stdout.trim();
      const lines = await exec('cat cycles.txt');
      assert.equal(lines.split('\n').length, cycle, `cycle ${cycle}: ${lines}`);
      const pid = await exec('cat /tmp/keeper.pid');
      keeperPid ||= pid;
      assert.equal(pid, keeperPid);
      assert.equal(
        await exec(`kill -0 ${pid} && echo alive`),
        'alive',
        `cycle ${cycle}: the background process lives`,
      );

      await harness.client.resume(agentId, `answer ${cycle}`);
    }

    const done = await waitForState(harness.client, agentId, ['done']);
    assert.equal(done.state, 'done');
    const result = await harness.client.result(agentId);
    for (let cycle = 1; cycle <= CYCLES; cycle++)
      assert.match(result.patch, new RegExp(`\\+answer ${cycle}\\n`));
    assert.equal(result.commits.length, CYCLES + 1);
  });
});
