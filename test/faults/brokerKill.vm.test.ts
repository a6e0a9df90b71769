import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { bundleRepository } from '../../client/repoBundle';
import type { CreateAgentRequest } from '../../protocol/api';
import { imagesDir } from '../../server/config/paths';
import type { ChildBroker } from '../helpers/childBroker';
import { makeTempRepo } from '../helpers/repos';
import { removeVmChildBroker, startVmChildBroker } from '../helpers/vmChildBroker';
import { qemuPidsMentioning } from '../helpers/vmBroker';
import { faultProfilesDir, storedAgent, waitForState, waitForAnyFile } from './faultAgents';

/**
 * Issue 6, fault 1: the broker process (`agentvm serve`) is SIGKILLed while agents are starting,
 * running, writing a snapshot and awaiting review; a new broker on the same data directory must
 * put each one in a defined state and lose nothing that was awaiting review.
 */
describe('broker killed with SIGKILL and restarted (vm)', function () {
  this.timeout(20 * 60_000);
  let broker: ChildBroker;
  let repoDir = '';
  let repo: CreateAgentRequest['repo'];
  const ids = { awaiting: '', running: '', pausing: '', starting: '' };
  let runningPid = 0;
  let awaitingSnapshot: { checksum: string } | undefined;

  const agentDir = (id: string) => path.join(broker.dataDir, 'agents', id);
  const create = async (text: string) =>
    (await broker.client.createAgent({ text, profile: 'faults', repo })).id;

  before(async function () {
    this.timeout(40 * 60_000);
    broker = await startVmChildBroker(faultProfilesDir);
    assert.equal(imagesDir(broker.dataDir), path.join(broker.dataDir, 'images'));
    repoDir = makeTempRepo({ 'README.md': '# broker kill\n' });
    repo = await bundleRepository(repoDir);
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') {
      console.error(
        `agents ${JSON.stringify(ids)} in ${broker.dataDir}\nbroker output:\n${broker.output.slice(-6000)}`,
      );
    }
  });

  after(async () => {
    await removeVmChildBroker(broker);
    if (repoDir) fs.rmSync(repoDir, { recursive: true, force: true });
  });

  it('kills the broker while one agent awaits review, one runs and one writes its snapshot', async () => {
    ids.awaiting = await create('review: the one that waits');
    ids.running = await create('sleep: the one that runs');
    await waitForState(broker.client, ids.awaiting, ['awaiting_review']);
    await waitForState(broker.client, ids.running, ['running']);
    awaitingSnapshot = storedAgent(broker.dataDir, ids.awaiting).snapshot as { checksum: string };
    runningPid = storedAgent(broker.dataDir, ids.running).vmPid ?? 0;
    assert.ok(awaitingSnapshot?.checksum && runningPid > 0);

    ids.pausing = await create('review: the one caught mid-snapshot');
    // A snapshot writes its state file all along; one of a VM restored from an older agentvm's
    // snapshot writes its memory file first. Either temp file means mid-snapshot.
    await waitForAnyFile(
      ['snapshot.memory.tmp', 'snapshot.state.tmp'].map((name) =>
        path.join(agentDir(ids.pausing), name),
      ),
      300_000,
    );
    await broker.kill('SIGKILL');

    assert.equal(
      storedAgent(broker.dataDir, ids.pausing).state,
      'pausing',
      'the kill landed during the snapshot',
    );
    assert.equal(storedAgent(broker.dataDir, ids.running).state, 'running');
    assert.equal(storedAgent(broker.dataDir, ids.awaiting).state, 'awaiting_review');
  });

  it('after a restart the running agent is reattached to the same VM, not rebooted', async () => {
    await broker.start();
    const running = await broker.client.getAgent(ids.running);
    assert.equal(running.state, 'running');
    assert.equal(storedAgent(broker.dataDir, ids.running).vmPid, runningPid);
    const messages = (await broker.client.events(ids.running)).map((event) => event.message);
    assert.ok(
      messages.some((message) => message.includes(`reattached to VM pid ${runningPid}`)),
      messages.join('\n'),
    );
  });

  it('the agent awaiting review keeps its snapshot untouched', async () => {
    const awaiting = await broker.client.getAgent(ids.awaiting);
    assert.equal(awaiting.state, 'awaiting_review');
    assert.deepEqual(storedAgent(broker.dataDir, ids.awaiting).snapshot, { ...awaitingSnapshot });
    assert.deepEqual(qemuPidsMentioning(agentDir(ids.awaiting)), []);
  });

  it('the agent caught mid-snapshot ends awaiting review on a fresh, complete snapshot; the partial file is gone', async () => {
    const paused = await waitForState(broker.client, ids.pausing, ['awaiting_review'], 120_000);
    assert.equal(paused.state, 'awaiting_review');
    assert.equal(fs.existsSync(path.join(agentDir(ids.pausing), 'snapshot.state.tmp')), false);
    assert.equal(fs.existsSync(path.join(agentDir(ids.pausing), 'snapshot.memory.tmp')), false);
    const snapshot = storedAgent(broker.dataDir, ids.pausing).snapshot as { sizeBytes: number };
    assert.equal(
      fs.statSync(path.join(agentDir(ids.pausing), 'snapshot.state')).size,
      snapshot.sizeBytes,
    );
    assert.deepEqual(qemuPidsMentioning(agentDir(ids.pausing)), []);
  });

  it('kills the broker while an agent is starting; after a restart it boots again from scratch', async () => {
    ids.starting = await create('review: the one caught booting');
    await waitForState(broker.client, ids.starting, ['starting'], 60_000);
    await broker.kill('SIGKILL');
    assert.equal(storedAgent(broker.dataDir, ids.starting).state, 'starting');

    await broker.start();
    const paused = await waitForState(broker.client, ids.starting, ['awaiting_review']);
    const messages = (await broker.client.events(ids.starting)).map((event) => event.message);
    assert.ok(
      messages.some((message) => message.includes('requeued after a broker restart')),
      messages.join('\n'),
    );
    // The half-booted VM of the first broker was ended, not left behind.
    assert.deepEqual(qemuPidsMentioning(agentDir(paused.id)), []);
  });

  it('every paused agent restores and finishes with its work and the answer in the result', async () => {
    for (const id of [ids.awaiting, ids.pausing, ids.starting]) {
      const reviewing = await broker.client.review(id);
      assert.equal(reviewing.state, 'reviewing');
      await broker.client.resume(id, `answer for ${id}`);
      await waitForState(broker.client, id, ['done']);
      const result = await broker.client.result(id);
      assert.match(result.patch, /before-review\.txt/);
      assert.match(result.patch, new RegExp(`answer for ${id}`));
    }

    const running = await broker.client.cancel(ids.running);
    assert.equal(running.state, 'cancelled');
  });
});
