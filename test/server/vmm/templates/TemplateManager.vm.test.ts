import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bundleRepository } from '../../../../client/repoBundle';
import type { AgentvmError } from '../../../../protocol/errors';
import { readSnapshotSidecar } from '../../../../server/vmm/qemu/snapshotFile';
import { makeDemoRepo, qemuPidsMentioning, VmBroker } from '../../../helpers/vmBroker';
import { useSuiteEnv } from '../../../helpers/useSuiteEnv';

/** Records, as the very first thing the agent command does, its clock and 16 random bytes. */
const recordStart =
  'date +%s.%N > /tmp/start-time; head -c 16 /dev/urandom | od -An -tx1 | tr -d " \\n" > /tmp/start-random';

const profiles = {
  // Records its start, asks for review once, then idles.
  'tpl-idle': `${recordStart}; agentctl review "first look"; sleep 3600`,
};

describe('template clones and clone safety (vm)', function () {
  this.timeout(15 * 60_000);
  const harness = new VmBroker();
  const profilesDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-tpl-profiles-'));
  // Templates are built here, explicitly, never behind an agent's back (fewer boots).
  useSuiteEnv({ AGENTVM_PROFILES_DIR: profilesDir, AGENTVM_TEMPLATES: 'manual' });
  let demoRepo = '';
  let repo: Awaited<ReturnType<typeof bundleRepository>>;
  const agentIds: string[] = [];

  before(async function () {
    this.timeout(30 * 60_000);
    for (const [name, command] of Object.entries(profiles)) {
      const profile = {
        name,
        command,
        memoryMiB: 256,
        vcpus: 1,
        bootTimeoutMs: 120_000,
        timeLimitMs: 0,
      };
      fs.writeFileSync(path.join(profilesDir, `${name}.json`), JSON.stringify(profile));
    }
    await harness.start();
    demoRepo = makeDemoRepo();
    repo = await bundleRepository(demoRepo);

    await harness.ensureTemplate();
    // Let the template's frozen clock fall behind, so a clone that skipped `sync` would show it.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
  });

  afterEach(async function () {
    if (this.currentTest?.state !== 'failed') return;

    for (const id of agentIds) console.error(`agent ${id}:\n${await harness.describe(id)}`);
  });

  after(async () => {
    await harness.stop();
    fs.rmSync(profilesDir, { recursive: true, force: true });
    if (demoRepo) fs.rmSync(path.dirname(demoRepo), { recursive: true, force: true });
  });

  async function exec(id: string, command: string): Promise<string> {
    const result = (await harness.client.guest(id, { op: 'exec', command })) as {
      stdout: string;
      code: number;
    };
    assert.equal(result.code, 0, `${command} failed in ${id}`);
    return result.stdout.trim();
  }

  function assertNearHostClock(guestSeconds: string, what: string): void {
    const skewMs = Math.abs(Number(guestSeconds) * 1000 - Date.now());
    assert.ok(
      skewMs < 2_000,
      `${what}: guest clock is ${Math.round(skewMs)} ms away from the host's`,
    );
  }

  it('starts two agents from one template; each applied fresh time and entropy before its command ran', async () => {
    const startedAt = Date.now();
    const created = await Promise.all([
      harness.client.createAgent({ text: 'clone one', profile: 'tpl-idle', repo }),
      harness.client.createAgent({ text: 'clone two', profile: 'tpl-idle', repo }),
    ]);
    agentIds.push(...created.map((agent) => agent.id));
    const agents = await Promise.all(
      created.map((agent) => harness.waitFor(agent.id, ['awaiting_review'])),
    );
    for (const agent of agents)
      assert.equal(agent.bootPath, 'template', `agent ${agent.id} was cloned`);

    // Open both for review: the restores must answer on the first request.
    for (const agent of agents) await harness.client.review(agent.id);
    const starts = await Promise.all(agents.map((agent) => exec(agent.id, 'cat /tmp/start-time')));
    const randoms = await Promise.all(
      agents.map((agent) => exec(agent.id, 'cat /tmp/start-random')),
    );
    for (const start of starts) {
      const startMs = Number(start) * 1000;
      assert.ok(
        startMs >= startedAt - 2_000 && startMs <= Date.now() + 2_000,
        `command started at ${start}, test at ${startedAt / 1000}`,
      );
    }
    assert.equal(randoms[0].length, 32);
    assert.notEqual(randoms[0], randoms[1], 'the clones read different random bytes');

    const now = await Promise.all(
      agents.map((agent) =>
        exec(agent.id, 'head -c 16 /dev/urandom | od -An -tx1 | tr -d " \\n"; echo; date +%s.%N'),
      ),
    );
    const [randomA, clockA] = now[0].split('\n');
    const [randomB, clockB] = now[1].split('\n');
    assert.notEqual(randomA, randomB);
    assertNearHostClock(clockA, 'clone one');
    assertNearHostClock(clockB, 'clone two');

    // Each clone's first sync had to correct the clock the template stopped at, seconds ago.
    const events = await harness.client.events(agents[0].id);
    const firstSync = events.find((event) => /guest clock synced/.test(event.message));
    assert.ok(firstSync, 'the guest reported its first sync');
    const corrected = Number(/corrected (-?\d+) ms/.exec(firstSync.message)?.[1]);
    assert.ok(corrected >= 2_000, `the first sync corrected ${corrected} ms`);
  });

  it('corrects the clock after a resume from review that comes a while after the snapshot', async () => {
    const id = agentIds[0];
    await harness.client.resume(id, 'go on');
    // The agent is now in `sleep`: ask for a second review from inside, as an agent would.
    await exec(id, 'nohup agentctl review "second look" >/dev/null 2>&1 &');
    await harness.waitFor(id, ['awaiting_review']);
    // While the VM is saved its clock stands still; 4 s later it is 4 s behind until `sync`.
    await new Promise((resolve) => setTimeout(resolve, 4_000));
    await harness.client.review(id);
    assertNearHostClock(await exec(id, 'date +%s.%N'), 'after the resume');
    const syncs = (await harness.client.events(id)).filter((event) =>
      /guest clock synced/.test(event.message),
    );
    const corrected = Number(/corrected (-?\d+) ms/.exec(syncs.at(-1)!.message)?.[1]);
    assert.ok(corrected >= 3_000, `the sync after the resume corrected ${corrected} ms`);
  });

  // Ten review cycles on one agent (issue 7's test too) live in test/faults/reviewCycles.vm.test.ts.

  it('keeps a review asked while another is open, and pauses for it once that one is answered', async () => {
    const id = agentIds[1];
    assert.equal((await harness.client.getAgent(id)).state, 'reviewing');
    await exec(id, 'nohup agentctl review "asked during the review" >/dev/null 2>&1 &');
    const timeline = async () => (await harness.client.events(id)).map((event) => event.message);
    for (let attempt = 0; attempt < 100; attempt++) {
      if ((await timeline()).some((message) => /while another is open/.test(message))) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    assert.ok((await timeline()).some((message) => /while another is open/.test(message)));
    assert.equal((await harness.client.getAgent(id)).state, 'reviewing');

    await harness.client.resume(id, 'answer to the first');
    const paused = await harness.waitFor(id, ['awaiting_review']);
    assert.equal(paused.review?.message, 'asked during the review');
  });

  it('refuses to resume a clone whose snapshot was damaged where it holds changed RAM: the agent fails, nothing runs', async () => {
    const id = agentIds[1];
    await harness.client.resume(id, 'go on');
    await exec(id, 'nohup agentctl review "look again" >/dev/null 2>&1 &');
    await harness.waitFor(id, ['awaiting_review']);
    const agentDir = path.join(harness.dataDir, 'agents', id);
    const snapshot = readSnapshotSidecar(agentDir);
    assert.ok(snapshot?.memoryBase, 'the clone’s snapshot builds on its template’s memory');
    assert.equal(snapshot.memory, undefined);

    // Past the first megabyte, the state file is the pages the clone changed.
    const fd = fs.openSync(snapshot.statePath, 'r+');
    const offset = Math.floor(snapshot.sizeBytes * 0.75);
    const byte = Buffer.alloc(1);
    fs.readSync(fd, byte, 0, 1, offset);
    byte[0] ^= 0x04;
    fs.writeSync(fd, byte, 0, 1, offset);
    fs.closeSync(fd);

    await assert.rejects(
      harness.client.review(id),
      (error: AgentvmError) => error.code === 'SNAPSHOT_CORRUPT',
    );
    const agent = await harness.client.getAgent(id);
    assert.equal(agent.state, 'failed');
    assert.match(agent.stateReason ?? '', /snapshot file .* fails its .* check/);
    assert.deepEqual(qemuPidsMentioning(agentDir), []);
  });

  it('does not use a template built for another image: the agent cold-boots and says why', async () => {
    harness.imageOverride = (image) => ({ ...image, key: `${image.key}-rebuilt` });
    try {
      const agent = await harness.client.createAgent({
        text: 'changed image',
        profile: 'tpl-idle',
        repo,
      });
      agentIds.push(agent.id);
      const paused = await harness.waitFor(agent.id, ['awaiting_review']);
      assert.equal(paused.bootPath, 'cold');
      const events = await harness.client.events(agent.id);
      const boot = events.find((event) => event.data?.bootPath === 'cold');
      assert.ok(boot, 'an event records the boot path');
      assert.match(boot.message, /built for image .* but the image is now .*not used/);
    } finally {
      harness.imageOverride = undefined;
    }
  });
});
