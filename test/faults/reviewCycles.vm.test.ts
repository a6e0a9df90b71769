import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { bundleRepository } from '../../client/repoBundle';
import type { SnapshotInfo } from '../../server/vmm/VmmDriver';
import { makeTempRepo } from '../helpers/repos';
import { qemuPidsMentioning, VmBroker } from '../helpers/vmBroker';
import { faultProfilesDir, storedAgent, waitForState } from './faultAgents';
import { useSuiteEnv } from '../helpers/useSuiteEnv';

const CYCLES = 10;

/**
 * Issue 6, item 7: one agent through ten pause → snapshot → restore → resume cycles. Its files and
 * a background process it started must come through every one of them. The agent is a template
 * clone, as agents normally are, so every snapshot keeps guest RAM in its own sparse file: the
 * first from the template's mapping, the rest from the previous snapshot's.
 */
describe('one agent through ten review cycles (vm)', function () {
  this.timeout(30 * 60_000);
  const harness = new VmBroker();
  let repoDir = '';
  let agentId = '';
  useSuiteEnv({ AGENTVM_PROFILES_DIR: faultProfilesDir, AGENTVM_TEMPLATES: 'manual' });

  before(async function () {
    this.timeout(40 * 60_000);
    await harness.start();
    repoDir = makeTempRepo({ 'README.md': '# cycles\n' });
    await harness.ensureTemplate();
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed' && agentId)
      console.error(`agent ${agentId}:\n${await harness.describe(agentId)}`);
  });

  after(async () => {
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
      if (cycle === 1) assert.equal(paused.bootPath, 'template');
      const snapshot = storedAgent(harness.dataDir, agentId).snapshot as SnapshotInfo;
      // A clone's snapshot (and that of every VM restored from one) carries only the pages that
      // differ from its template's memory, which the restore maps again.
      assert.equal(snapshot.memory, undefined, `cycle ${cycle}: no RAM file of its own`);
      assert.ok(snapshot.memoryBase, `cycle ${cycle}: RAM builds on the template's memory`);
      assert.match(snapshot.memoryBase.path, /templates.*memory\.ram$/);
      assert.ok(
        snapshot.sizeBytes < 64 * 2 ** 20,
        `cycle ${cycle}: ${snapshot.sizeBytes}-byte state, far less than the guest's RAM in use`,
      );
      if (cycle === 1) {
        const events = await harness.client.events(agentId);
        const line = events.map((event) => event.message).find((m) => /snapshot written/.test(m));
        assert.match(line ?? '', /the memory pages that differ from its template/);
      }

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
