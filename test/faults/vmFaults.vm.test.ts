import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bundleRepository } from '../../client/repoBundle';
import type { CreateAgentRequest } from '../../protocol/api';
import { AgentvmError } from '../../protocol/errors';
import { QemuDriver } from '../../server/vmm/qemu/QemuDriver';
import { checksumFile } from '../../server/vmm/qemu/stateChecksum';
import type { SnapshotInfo, VmSpec } from '../../server/vmm/VmmDriver';
import { makeTempRepo } from '../helpers/repos';
import { qemuPidsMentioning, sharedImage, VmBroker } from '../helpers/vmBroker';
import { faultProfilesDir, killVmsUnder, storedAgent, waitForState } from './faultAgents';
import { useSuiteEnv } from '../helpers/useSuiteEnv';

/** Small enough that a 256 MiB guest's snapshot cannot fit, big enough for overlays and the store. */
const SMALL_FS_MIB = 40;

/**
 * Issue 6, faults 2–4 on one broker whose data directory is a small tmpfs: the disk fills up while
 * a snapshot is written, a VM's QEMU is killed, and snapshots and overlays are damaged.
 */
describe('VM faults: disk full, QEMU killed, corrupt snapshots (vm)', function () {
  this.timeout(20 * 60_000);
  const harness = new VmBroker();
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-faults-'));
  let mounted = false;
  let repoDir = '';
  let repo: CreateAgentRequest['repo'];
  const ids = { sleeper: '', full: '', corrupt: '' };
  const agentDir = (id: string) => path.join(harness.dataDir, 'agents', id);
  const create = async (text: string) =>
    (await harness.client.createAgent({ text, profile: 'faults', repo })).id;

  // A template build would put a 256 MiB memory file on the small filesystem and fill it while
  // the agents start: whichever write came first (the store's included) would hit ENOSPC, not
  // the snapshot this suite means to fill the disk with.
  useSuiteEnv({ AGENTVM_TEMPLATES: 'off' });

  before(async function () {
    this.timeout(40 * 60_000);
    await sharedImage();
    execFileSync('mount', [
      '-t',
      'tmpfs',
      '-o',
      `size=${SMALL_FS_MIB}m,mode=0700`,
      'agentvm-faults',
      harness.dataDir,
    ]);
    mounted = true;
    process.env.AGENTVM_PROFILES_DIR = faultProfilesDir;
    await harness.start();
    repoDir = makeTempRepo({ 'README.md': '# vm faults\n' });
    repo = await bundleRepository(repoDir);
  });

  afterEach(async function () {
    if (this.currentTest?.state !== 'failed') return;

    for (const id of Object.values(ids).filter(Boolean))
      console.error(`agent ${id}:\n${await harness.describe(id)}`);
  });

  after(async () => {
    delete process.env.AGENTVM_PROFILES_DIR;
    if (harness.broker) {
      for (const agent of await harness.client.listAgents().catch(() => [])) {
        await harness.client.remove(agent.id, { force: true }).catch(() => undefined);
      }
      await harness.broker.stop();
    }
    killVmsUnder(harness.dataDir);
    killVmsUnder(scratch);
    if (mounted) execFileSync('umount', [harness.dataDir]);
    fs.rmSync(harness.dataDir, { recursive: true, force: true });
    fs.rmSync(scratch, { recursive: true, force: true });
    if (repoDir) fs.rmSync(repoDir, { recursive: true, force: true });
  });

  it('a snapshot that hits a full disk keeps the VM alive for review, says why, and keeps no partial file', async () => {
    ids.sleeper = await create('sleep: the bystander');
    ids.full = await create('review: the one whose snapshot does not fit');
    const agent = await waitForState(harness.client, ids.full, ['reviewing', 'awaiting_review']);

    assert.equal(
      agent.state,
      'reviewing',
      `the snapshot fitted in ${SMALL_FS_MIB} MiB: make the filesystem smaller`,
    );
    console.log(`      reason: ${agent.stateReason}`);
    assert.match(agent.stateReason ?? '', /snapshot failed/);
    assert.match(agent.stateReason ?? '', /ENOSPC|no space/i);
    const leftovers = fs
      .readdirSync(agentDir(ids.full))
      .filter((name) => name.startsWith('snapshot'));
    assert.deepEqual(leftovers, []);
    assert.equal(qemuPidsMentioning(agentDir(ids.full)).length, 1);
  });

  it('a QEMU killed mid-run fails only its own agent, with the reason and the last console lines', async () => {
    await waitForState(harness.client, ids.sleeper, ['running']);
    const [pid] = qemuPidsMentioning(agentDir(ids.sleeper));
    assert.ok(pid, 'the bystander has a QEMU');
    process.kill(pid, 'SIGKILL');

    const failed = await waitForState(harness.client, ids.sleeper, ['failed'], 60_000).catch(
      async () => harness.client.getAgent(ids.sleeper),
    );
    assert.equal(failed.state, 'failed');
    assert.match(failed.stateReason ?? '', /killed by SIGKILL/);
    assert.match(failed.stateReason ?? '', /last console lines:\n./);

    const other = await harness.client.getAgent(ids.full);
    assert.equal(other.state, 'reviewing');
    const echo = (await harness.client.guest(ids.full, {
      op: 'exec',
      command: 'cat before-review.txt',
    })) as { stdout: string };
    assert.match(echo.stdout, /written before review/);
  });

  it('once space is freed, the agent whose snapshot failed resumes and finishes with nothing lost', async () => {
    execFileSync('mount', ['-o', 'remount,size=1024m', harness.dataDir]);
    await harness.client.resume(ids.full, 'resumed after the disk filled');
    await waitForState(harness.client, ids.full, ['done']);
    const result = await harness.client.result(ids.full);
    assert.match(result.patch, /before-review\.txt/);
    assert.match(result.patch, /resumed after the disk filled/);
  });

  describe('corrupt snapshot inputs', () => {
    let snapshot: SnapshotInfo;
    const driver = new QemuDriver();

    before(async function () {
      this.timeout(10 * 60_000);
      ids.corrupt = await create('review: the one whose snapshot gets damaged');
      await waitForState(harness.client, ids.corrupt, ['awaiting_review']);
      snapshot = storedAgent(harness.dataDir, ids.corrupt).snapshot as SnapshotInfo;
    });

    /** A copy of the paused agent's files in `name` under the scratch dir, and a spec for it. */
    async function copyOf(
      name: string,
      withOverlay: boolean,
    ): Promise<{ spec: VmSpec; info: SnapshotInfo }> {
      const vmDir = path.join(scratch, name);
      fs.mkdirSync(vmDir);
      fs.copyFileSync(snapshot.statePath, path.join(vmDir, 'snapshot.state'));
      if (withOverlay)
        fs.copyFileSync(
          path.join(agentDir(ids.corrupt), 'overlay.qcow2'),
          path.join(vmDir, 'overlay.qcow2'),
        );
      const spec: VmSpec = {
        id: `fault-${name}`,
        vmDir,
        image: await sharedImage(),
        memoryMiB: 256,
        vcpus: 1,
        bootTimeoutMs: 60_000,
      };
      return { spec, info: { ...snapshot, statePath: path.join(vmDir, 'snapshot.state') } };
    }

    it('refuses a truncated snapshot as SNAPSHOT_CORRUPT and leaves no QEMU running', async () => {
      const { spec, info } = await copyOf('truncated', true);
      fs.truncateSync(info.statePath, Math.floor(info.sizeBytes / 2));
      await assert.rejects(
        driver.restore(spec, info),
        (error: AgentvmError) => error.code === 'SNAPSHOT_CORRUPT',
      );
      assert.deepEqual(qemuPidsMentioning(spec.vmDir), []);
    });

    it('refuses a snapshot whose overlay is missing as SNAPSHOT_CORRUPT and leaves no QEMU running', async () => {
      const { spec, info } = await copyOf('no-overlay', false);
      await assert.rejects(
        driver.restore(spec, info),
        (error: AgentvmError) => error.code === 'SNAPSHOT_CORRUPT' && /overlay/.test(error.message),
      );
      assert.deepEqual(qemuPidsMentioning(spec.vmDir), []);
    });

    it('a snapshot cut short before it was hashed fails to load and leaves no QEMU running', async () => {
      const { spec, info } = await copyOf('cut-then-hashed', true);
      fs.truncateSync(info.statePath, Math.floor(info.sizeBytes / 3));
      const recorded = {
        ...info,
        sizeBytes: fs.statSync(info.statePath).size,
        checksum: await checksumFile(info.statePath),
      };
      const error = await driver.restore(spec, recorded).then(
        async (vm) => {
          await vm.stop();
          return undefined;
        },
        (caught: unknown) => caught,
      );
      assert.ok(
        error instanceof AgentvmError,
        `the restore of a cut snapshot succeeded: ${String(error)}`,
      );
      assert.deepEqual(qemuPidsMentioning(spec.vmDir), []);
    });

    it('a bit-flipped snapshot is SNAPSHOT_CORRUPT through the API: the agent fails, nothing runs', async () => {
      const fd = fs.openSync(snapshot.statePath, 'r+');
      const byte = Buffer.alloc(1);
      const offset = Math.floor(snapshot.sizeBytes / 2);
      fs.readSync(fd, byte, 0, 1, offset);
      byte[0] ^= 0x10;
      fs.writeSync(fd, byte, 0, 1, offset);
      fs.closeSync(fd);

      await assert.rejects(
        harness.client.review(ids.corrupt),
        (error: AgentvmError) => error.code === 'SNAPSHOT_CORRUPT',
      );
      const agent = await harness.client.getAgent(ids.corrupt);
      assert.equal(agent.state, 'failed');
      assert.match(agent.stateReason ?? '', /xxh64 check/);
      assert.deepEqual(qemuPidsMentioning(agentDir(ids.corrupt)), []);
    });
  });
});
