import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { AgentvmError } from '../../../protocol/errors';
import { Store, type StoreWriteStatus } from '../../../server/store/Store';
import { anAgentRecord } from '../../helpers/anAgentRecord';
import { fullDiskFor } from './fullDisk';
import { until } from '../../helpers/until';

/** The agent row and timeline as the file holds them: what a broker restart would find. */
function onDisk(file: string, id: string) {
  const db = new Database(file, { readonly: true });
  try {
    const row = db.prepare('SELECT state, vm_pid FROM agents WHERE id = ?').get(id) as
      { state: string; vm_pid: number | null } | undefined;
    const events = db
      .prepare('SELECT id, message FROM events WHERE agent_id = ? ORDER BY id')
      .all(id) as { id: number; message: string }[];
    return { row, events };
  } finally {
    db.close();
  }
}

describe('Store on a full disk (unit)', () => {
  let dir: string;
  let file: string;
  let store: Store;
  const id = 'fulldisk01';

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-store-full-'));
    file = path.join(dir, 'broker.db');
    store = new Store(file);
    store.insertAgent(anAgentRecord({ id, state: 'running' }));
    store.appendEvent(id, { kind: 'state', message: 'running' });
  });

  afterEach(() => {
    store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('holds a state change and a timeline entry SQLITE_FULL refused, and writes them once there is room', async () => {
    const disk = fullDiskFor(store);
    const statuses: StoreWriteStatus[] = [];
    store.onWriteStatus((status) => statuses.push(status));
    disk.full = true;

    const updated = store.updateAgent(id, { state: 'awaiting_review', vmPid: null });
    const event = store.appendEvent(id, { kind: 'state', message: 'awaiting_review' });

    assert.ok(disk.refused > 0, 'the store tried to write');
    assert.equal(updated.state, 'awaiting_review');
    assert.equal(store.getAgent(id)?.state, 'awaiting_review', 'reads see the held change');
    assert.deepEqual(
      store.agentsInStates(['awaiting_review']).map((record) => record.id),
      [id],
    );
    assert.deepEqual(store.agentsInStates(['running']), []);
    assert.equal(store.events(id).at(-1)?.id, event.id);
    assert.equal(onDisk(file, id).row?.state, 'running', 'nothing reached the file yet');
    assert.match(store.writeFailure?.message ?? '', /database or disk is full \(SQLITE_FULL\)/);
    assert.match(
      store.writeFailure?.hint ?? '',
      new RegExp(`Free space on the file system of ${dir}`),
    );
    assert.deepEqual(
      statuses.map((status) => status.kind),
      ['deferred'],
      'one report per agent and outage',
    );

    disk.full = false;
    await until(() => store.writeFailure === null, 'the retry wrote what was held');

    const stored = onDisk(file, id);
    assert.equal(stored.row?.state, 'awaiting_review');
    assert.equal(stored.events.at(-1)?.id, event.id, 'the entry keeps the id clients saw');
    assert.equal(stored.events.at(-1)?.message, 'awaiting_review');
    assert.deepEqual(
      statuses.map((status) => status.kind),
      ['deferred', 'written'],
    );
  });

  it('holds every write of a transaction whose statement found no room, in order', async () => {
    const disk = fullDiskFor(store);
    store.updateAgent(id, { guestSeq: 1 });

    const result = store.transaction(() => {
      const first = store.appendEvent(id, { kind: 'progress', message: 'before the disk filled' });
      disk.full = true;
      store.updateAgent(id, { guestSeq: 2, lastProgress: 'after' });
      const second = store.appendEvent(id, { kind: 'progress', message: 'after' });
      return [first.id, second.id];
    });

    assert.equal(store.getAgent(id)?.guestSeq, 2);
    assert.deepEqual(
      store
        .events(id)
        .slice(-2)
        .map((event) => event.id),
      result,
    );
    assert.equal(result[1], result[0] + 1);

    disk.full = false;
    await until(() => store.writeFailure === null, 'the retry wrote what was held');
    const stored = onDisk(file, id);
    assert.deepEqual(
      stored.events.slice(-2).map((event) => [event.id, event.message]),
      [
        [result[0], 'before the disk filled'],
        [result[1], 'after'],
      ],
    );
  });

  it('gives the entry a listener appends on a full disk an id of its own, when SQLite rolled the transaction back', async () => {
    const disk = fullDiskFor(store);
    disk.rollsBack = true;
    // As AgentJournal does: an agent's first held change gets a timeline entry saying so.
    store.onWriteStatus((status) => {
      if (status.kind === 'deferred')
        store.appendEvent(id, { kind: 'error', message: 'disk full' });
    });

    store.transaction(() => {
      store.updateAgent(id, { guestSeq: 5 });
      store.appendEvent(id, { kind: 'progress', message: 'written, then rolled back' });
      disk.full = true;
      store.updateAgent(id, { guestSeq: 6 });
    });

    const held = store.events(id).map((event) => event.id);
    assert.equal(new Set(held).size, held.length, `ids ${held.join(', ')}`);
    disk.full = false;
    await until(() => store.writeFailure === null, 'the retry wrote what was held');
    assert.deepEqual(
      onDisk(file, id)
        .events.slice(1)
        .map((event) => event.message)
        .sort(),
      ['disk full', 'written, then rolled back'],
    );
  });

  it('refuses a new agent with one error that says to free space under the data directory', () => {
    const disk = fullDiskFor(store);
    disk.full = true;

    assert.throws(
      () => store.insertAgent(anAgentRecord({ id: 'fulldisk02' })),
      (error: unknown) =>
        error instanceof AgentvmError &&
        error.code === 'DISK_FULL' &&
        error.status === 507 &&
        /database or disk is full/.test(error.message) &&
        error.hint.includes(`Free space on the file system of ${dir}`),
    );
    assert.equal(store.getAgent('fulldisk02'), null);
  });

  for (const [code, expected] of [
    ['SQLITE_READONLY', 'STORE_UNWRITABLE'],
    ['SQLITE_CORRUPT', 'STORE_CORRUPT'],
    ['SQLITE_CONSTRAINT_UNIQUE', 'INTERNAL'],
  ] as const) {
    it(`names the cause when held changes then fail with ${code}, not DISK_FULL, and keeps them`, async () => {
      const disk = fullDiskFor(store);
      disk.full = true;
      store.updateAgent(id, { state: 'awaiting_review' });
      disk.failure = { message: `injected ${code}`, code };

      assert.throws(
        () => store.insertAgent(anAgentRecord({ id: 'fulldisk03' })),
        (error: unknown) =>
          error instanceof AgentvmError &&
          error.code === expected &&
          error.message.includes(`injected ${code}`) &&
          !/Free space/.test(error.hint),
      );
      assert.equal(store.writeFailure?.code, expected);
      assert.equal(store.getAgent(id)?.state, 'awaiting_review', 'the change is still held');

      disk.full = false;
      await until(() => store.writeFailure === null, 'the retry wrote what was held');
      assert.equal(onDisk(file, id).row?.state, 'awaiting_review');
    });
  }

  it('reports held changes lost when it closes before there is room', () => {
    const disk = fullDiskFor(store);
    const statuses: StoreWriteStatus[] = [];
    store.onWriteStatus((status) => statuses.push(status));
    disk.full = true;
    store.updateAgent(id, { state: 'awaiting_review' });

    store.close();

    assert.deepEqual(
      statuses.map((status) => status.kind),
      ['deferred', 'lost'],
    );
    assert.equal(onDisk(file, id).row?.state, 'running');
  });
});
