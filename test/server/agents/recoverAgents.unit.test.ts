import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Broker } from '../../../server/Broker';
import { agentDir, storePath } from '../../../server/config/paths';
import { silentLogger } from '../../../server/log';
import { ProfileRegistry } from '../../../server/profiles/ProfileRegistry';
import { Store, type AgentRecord } from '../../../server/store/Store';
import { writeSnapshotSidecar } from '../../../server/vmm/qemu/snapshotFile';
import { checksumFile } from '../../../server/vmm/qemu/stateChecksum';
import type { SnapshotInfo } from '../../../server/vmm/VmmDriver';
import { unusedDriver } from '../../helpers/imagelessBroker';
import { seedEndedAgent } from '../../helpers/seedAgent';

/** A pid that certainly ended: a child that already exited. */
function deadPid(): number {
  const child = spawnSync('true');
  assert.ok(child.pid, 'spawned a process');
  return child.pid;
}

/**
 * Seeds an agent caught between the snapshot rename and the store update: `pausing`, no snapshot
 * recorded, its VM gone, a complete `snapshot.state` and the sidecar QemuVm writes before it.
 */
async function seedUnrecordedSnapshot(dataDir: string, id: string): Promise<SnapshotInfo> {
  seedEndedAgent(dataDir, id, os.userInfo().username);
  const vmDir = agentDir(id, path.resolve(dataDir));
  fs.mkdirSync(vmDir, { recursive: true });
  const statePath = path.join(vmDir, 'snapshot.state');
  const content = crypto.randomBytes(256 * 1024);
  fs.writeFileSync(statePath, content);
  const snapshot: SnapshotInfo = {
    statePath,
    sizeBytes: content.length,
    checksum: await checksumFile(statePath),
    durationMs: 1234,
    migrationCapabilities: ['x-ignore-shared'],
    namedMemoryBackend: true,
  };
  await writeSnapshotSidecar(snapshot);

  const store = new Store(storePath(path.resolve(dataDir)));
  try {
    const pausing: Partial<AgentRecord> = {
      state: 'pausing',
      stateReason: null,
      endedAt: null,
      vmPid: deadPid(),
      snapshot: null,
      review: { requestId: 'r1', message: 'please look', requestedAt: Date.now() },
    };
    store.updateAgent(id, pausing);
  } finally {
    store.close();
  }

  return snapshot;
}

/** Starts a broker on `dataDir` (recovery runs in start), stops it, and returns the agent. */
async function recoverWithBroker(dataDir: string, profilesDir: string, id: string) {
  const broker = new Broker({
    dataDir,
    port: 0,
    logger: silentLogger,
    driver: unusedDriver,
    loadImage: () => {
      throw new Error('recovery of a dead VM must not load an image');
    },
    profiles: new ProfileRegistry([profilesDir]),
    version: 'test',
  });
  await broker.start();
  await broker.stop();
  const store = new Store(storePath(path.resolve(dataDir)));
  try {
    return { record: store.getAgent(id)!, events: store.events(id) };
  } finally {
    store.close();
  }
}

describe('recoverAgents (unit)', () => {
  let dataDir: string;
  let profilesDir: string;

  beforeEach(() => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-recover-'));
    profilesDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-recover-profiles-'));
    fs.writeFileSync(
      path.join(profilesDir, 'plain.json'),
      JSON.stringify({ name: 'plain', command: 'true' }),
    );
  });

  afterEach(() => {
    for (const dir of [dataDir, profilesDir]) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('records a complete snapshot the store missed and leaves the agent awaiting review', async () => {
    const snapshot = await seedUnrecordedSnapshot(dataDir, 'pausedead1');

    const { record, events } = await recoverWithBroker(dataDir, profilesDir, 'pausedead1');

    assert.equal(record.state, 'awaiting_review', record.stateReason ?? '');
    assert.deepEqual(record.snapshot, snapshot);
    assert.equal(record.vmPid, null);
    assert.equal(record.review?.message, 'please look');
    assert.ok(
      events.some((event) =>
        /recovered the snapshot written before the broker/.test(event.message),
      ),
      'an event says where the snapshot came from',
    );
  });

  it('fails the agent when the state file does not match its sidecar', async () => {
    const snapshot = await seedUnrecordedSnapshot(dataDir, 'pausedead2');
    const bytes = fs.readFileSync(snapshot.statePath);
    bytes[bytes.length >> 1] ^= 0x10;
    fs.writeFileSync(snapshot.statePath, bytes);

    const { record } = await recoverWithBroker(dataDir, profilesDir, 'pausedead2');

    assert.equal(record.state, 'failed');
    assert.equal(record.snapshot, null);
    assert.match(record.stateReason ?? '', /ended while the broker was down/);
    assert.match(record.stateReason ?? '', /xxh64 check/);
  });

  it("fails a running agent whose VM died while the broker was down, with the console's last lines", async () => {
    seedEndedAgent(dataDir, 'rundead1', os.userInfo().username);
    const vmDir = agentDir('rundead1', path.resolve(dataDir));
    fs.mkdirSync(vmDir, { recursive: true });
    fs.writeFileSync(
      path.join(vmDir, 'console.log'),
      'booted\nOut of memory: Killed process 42 (node)\n',
    );
    const store = new Store(storePath(path.resolve(dataDir)));
    try {
      store.updateAgent('rundead1', {
        state: 'running',
        stateReason: null,
        endedAt: null,
        vmPid: deadPid(),
      });
    } finally {
      store.close();
    }

    const { record } = await recoverWithBroker(dataDir, profilesDir, 'rundead1');

    assert.equal(record.state, 'failed');
    assert.match(
      record.stateReason ?? '',
      /ended while the broker was down; last console lines:\nbooted\nOut of memory/,
    );
  });

  it('fails the agent when there is a state file but no sidecar', async () => {
    const snapshot = await seedUnrecordedSnapshot(dataDir, 'pausedead3');
    fs.rmSync(path.join(path.dirname(snapshot.statePath), 'snapshot.json'));

    const { record } = await recoverWithBroker(dataDir, profilesDir, 'pausedead3');

    assert.equal(record.state, 'failed');
    assert.match(record.stateReason ?? '', /ended while the broker was down/);
  });
});
