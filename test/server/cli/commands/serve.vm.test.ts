import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { bundleRepository } from '../../../../client/repoBundle';
import { REQUEUED_AT_SHUTDOWN } from '../../../../server/agents/BootQueue';
import { faultProfilesDir, storedAgent, waitForState } from '../../../faults/faultAgents';
import { ChildBroker } from '../../../helpers/childBroker';
import { makeTempRepo } from '../../../helpers/repos';
import { qemuPidsMentioning, sharedImage } from '../../../helpers/vmBroker';
import { useSuiteEnv } from '../../../helpers/useSuiteEnv';

/** Polls every 20 ms, at most `timeoutMs`, until `check` returns a value. */
async function pollFor<T>(what: string, timeoutMs: number, check: () => T | undefined): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; attempt < 50_000; attempt++) {
    const value = check();
    if (value !== undefined) return value;

    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`${what} never happened`);
}

/**
 * `agentvm serve` stopped with SIGTERM while an agent's VM is starting: the start is called off,
 * the broker process exits by itself (no forced exit), no QEMU of that agent is left, and the next
 * broker starts the agent again. Then stopped while that agent runs: it exits by itself and leaves
 * the VM to the next broker. One 256 MiB VM at a time; templates off, so no template build.
 */
describe('agentvm serve stopped while a VM starts (vm)', function () {
  this.timeout(10 * 60_000);
  let broker: ChildBroker | undefined;
  let repoDir = '';
  let agentId = '';
  useSuiteEnv({ AGENTVM_TEMPLATES: 'off' });

  afterEach(function () {
    if (this.currentTest?.state === 'failed' && broker) {
      console.error(
        `agent ${agentId} in ${broker.dataDir}\nbroker output:\n${broker.output.slice(-6000)}`,
      );
    }
  });

  after(async () => {
    if (broker?.alive && agentId)
      await broker.client.remove(agentId, { force: true }).catch(() => undefined);
    // Only this test's VMs: those whose command line names its data directory.
    if (broker) for (const pid of qemuPidsMentioning(broker.dataDir)) process.kill(pid, 'SIGKILL');
    await broker?.cleanup();
    if (repoDir) fs.rmSync(repoDir, { recursive: true, force: true });
  });

  it('exits by itself after SIGTERM, leaves no QEMU, and the next broker starts the agent again', async () => {
    const image = await sharedImage();
    broker = new ChildBroker({
      profilesDir: faultProfilesDir,
      imagesDir: path.dirname(path.dirname(image.rootfsPath)),
    });
    await broker.start();
    repoDir = makeTempRepo({ 'README.md': '# serve stop\n' });
    const repo = await bundleRepository(repoDir);
    agentId = (
      await broker.client.createAgent({ text: 'sleep: started twice', profile: 'faults', repo })
    ).id;
    const vmDir = path.join(broker.dataDir, 'agents', agentId);

    // QEMU is up and the broker holds its sockets, but the guest has not said `ready` yet.
    const [qemuPid] = await pollFor('QEMU starting', 120_000, () => {
      const pids = qemuPidsMentioning(vmDir);
      return pids.length > 0 && fs.existsSync(path.join(vmDir, 'qmp.sock')) ? pids : undefined;
    });
    assert.equal(storedAgent(broker.dataDir, agentId).state, 'starting');

    const child = broker.process!;
    const exited = new Promise<number | null>((resolve) =>
      child.once('exit', (code) => resolve(code)),
    );
    const stoppedAt = performance.now();
    child.kill('SIGTERM');
    const code = await Promise.race([
      exited,
      new Promise<'hung'>((r) => setTimeout(() => r('hung'), 60_000).unref()),
    ]);
    const exitMs = Math.round(performance.now() - stoppedAt);
    assert.equal(code, 0, `the broker exited on its own (after ${exitMs} ms)`);
    console.log(`      broker exited ${exitMs} ms after SIGTERM`);

    assert.deepEqual(
      qemuPidsMentioning(vmDir),
      [],
      `QEMU ${qemuPid} of the cancelled start is gone`,
    );
    const stored = storedAgent(broker.dataDir, agentId);
    assert.equal(stored.state, 'queued');
    assert.equal(stored.vmPid, null);

    await broker.start();
    const agent = await waitForState(broker.client, agentId, ['running']);
    assert.equal(agent.state, 'running');
    const timeline = (await broker.client.events(agentId)).map((event) => event.message);
    assert.ok(
      timeline.some((message) => message.includes(REQUEUED_AT_SHUTDOWN)),
      timeline.join('\n'),
    );
    const restartedPid = storedAgent(broker.dataDir, agentId).vmPid;
    assert.ok(restartedPid !== null && restartedPid !== qemuPid, 'a new VM was started');
  });

  it('exits by itself after SIGTERM while the agent runs, leaving its VM for the next broker', async () => {
    assert.ok(broker?.alive && agentId, 'the test before left a running agent');
    const vmPid = storedAgent(broker.dataDir, agentId).vmPid;
    assert.ok(vmPid !== null);

    const child = broker.process!;
    const exited = new Promise<number | null>((resolve) =>
      child.once('exit', (code) => resolve(code)),
    );
    child.kill('SIGTERM');
    const code = await Promise.race([
      exited,
      new Promise<'hung'>((r) => setTimeout(() => r('hung'), 60_000).unref()),
    ]);
    // A broker that kept its monitor connection open never got here: QMP held the event loop.
    assert.equal(code, 0, 'the broker exited on its own with a VM running');
    assert.deepEqual(qemuPidsMentioning(path.join(broker.dataDir, 'agents', agentId)), [vmPid]);

    // The next broker attaches to the same VM (QEMU serves one monitor client at a time).
    await broker.start();
    const agent = await waitForState(broker.client, agentId, ['running']);
    assert.equal(agent.state, 'running');
    assert.equal(storedAgent(broker.dataDir, agentId).vmPid, vmPid);
  });
});
