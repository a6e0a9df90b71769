import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { AgentvmError } from '../../../protocol/errors';
import type { Broker } from '../../../server/Broker';
import { storePath } from '../../../server/config/paths';
import {
  askForReview,
  startFakeVmBroker,
  type FakeDriver,
  type FakeVm,
  type FakeVmBroker,
} from '../../helpers/fakeVmDriver';
import { fullDiskFor, type FullDisk } from '../store/fullDisk';
import { until } from '../../helpers/until';

describe('agents when the store cannot write: a full disk (unit)', function () {
  this.timeout(30_000);
  let harness: FakeVmBroker;
  let dataDir: string;
  let driver: FakeDriver;
  let broker: Broker;
  let disk: FullDisk;

  beforeEach(async () => {
    harness = await startFakeVmBroker('agentvm-fulldisk', {
      plain: { name: 'plain', command: 'true' },
    });
    ({ dataDir, driver, broker } = harness);
    disk = fullDiskFor(broker.store);
  });

  afterEach(async () => {
    disk.full = false;
    await harness.stop();
  });

  const delegate = () => harness.delegate('plain');

  /** The agent as the broker shows it (to the API and the event stream). */
  const shown = (id: string) => broker.manager.get(id, '', true);

  /** The agent's state as the store file holds it: what a broker restart would find. */
  function storedState(id: string): string | undefined {
    const db = new Database(storePath(dataDir), { readonly: true });
    try {
      const row = db.prepare('SELECT state FROM agents WHERE id = ?').get(id) as
        { state: string } | undefined;
      return row?.state;
    } finally {
      db.close();
    }
  }

  async function runningAgent(): Promise<{ id: string; vm: FakeVm }> {
    const id = await delegate();
    await until(() => shown(id).state === 'running', 'the agent runs');
    return { id, vm: driver.vms.at(-1)! };
  }

  it('keeps the VM of an agent whose start met a full disk, and stores it running once there is room', async () => {
    driver.beforeReady = () => (disk.full = true);

    const id = await delegate();

    await until(() => shown(id).state === 'running', 'the agent runs');
    const vm = driver.vms[0];
    assert.equal(vm.stopped, false, 'the VM was not stopped for a row that could not be written');
    assert.ok(
      vm.sent.some((message) => message.type === 'task'),
      'the guest got its task',
    );
    assert.equal(storedState(id), 'starting', 'the store file is behind while the disk is full');
    const timeline = broker.manager.timeline(id).map((event) => event.message);
    assert.ok(
      timeline.some((line) => /database or disk is full.*held in memory.*Free space/.test(line)),
      `the timeline says why the store is behind:\n${timeline.join('\n')}`,
    );

    disk.full = false;

    await until(() => storedState(id) === 'running', 'the store file says running');
    assert.equal(broker.store.writeFailure, null);
    assert.ok(
      broker.manager
        .timeline(id)
        .some((event) => /changes held in memory are stored/.test(event.message)),
    );
  });

  it('ends an agent whose snapshot was written as the disk filled awaiting review, and stores it so', async () => {
    const { id, vm } = await runningAgent();
    driver.onSnapshot = async () => {
      disk.full = true;
    };

    askForReview(vm);

    await until(() => shown(id).state === 'awaiting_review', 'the agent awaits review');
    assert.equal(shown(id).review?.message, 'please look');
    assert.equal(shown(id).snapshot?.statePath, path.join(dataDir, 'agents', id, 'snapshot.state'));
    assert.notEqual(storedState(id), 'awaiting_review');

    disk.full = false;

    await until(() => storedState(id) === 'awaiting_review', 'the store file says awaiting_review');
    const db = new Database(storePath(dataDir), { readonly: true });
    try {
      const row = db.prepare('SELECT snapshot_json FROM agents WHERE id = ?').get(id) as {
        snapshot_json: string | null;
      };
      assert.match(row.snapshot_json ?? '', /snapshot\.state/);
    } finally {
      db.close();
    }
  });

  it('keeps an agent whose snapshot failed for lack of room reviewable, though the store is full too', async () => {
    const { id, vm } = await runningAgent();
    driver.onSnapshot = async () => {
      disk.full = true;
      throw new Error('ENOSPC: no space left on device, write');
    };

    askForReview(vm);

    await until(() => shown(id).state === 'reviewing', 'the agent is reviewable');
    assert.match(shown(id).stateReason ?? '', /snapshot failed \(ENOSPC/);
    assert.equal(vm.stopped, false);

    disk.full = false;

    await until(() => storedState(id) === 'reviewing', 'the store file says reviewing');
  });

  it('refuses new work with one error naming the data directory, and takes new agents once there is room', async () => {
    const { id, vm } = await runningAgent();
    driver.onSnapshot = async () => {
      disk.full = true;
    };
    askForReview(vm);
    await until(() => shown(id).state === 'awaiting_review', 'the agent awaits review');

    const fullError = (error: unknown) =>
      error instanceof AgentvmError &&
      error.code === 'DISK_FULL' &&
      /cannot write .*broker\.db: database or disk is full/.test(error.message) &&
      error.hint.includes(`Free space on the file system of ${dataDir}`);
    await assert.rejects(delegate(), fullError);
    await assert.rejects(broker.manager.resume(id, 'yes'), fullError);
    assert.deepEqual(
      fs.readdirSync(path.join(dataDir, 'agents')),
      [id],
      'nothing is left of the refused agent',
    );
    assert.equal(shown(id).state, 'awaiting_review', 'a refused resume changes nothing');

    disk.full = false;
    await until(() => broker.store.writeFailure === null, 'the store writes again');

    const next = await delegate();
    await until(() => shown(next).state === 'running', 'a new agent runs');
    assert.equal(storedState(next), 'running');
  });
});
