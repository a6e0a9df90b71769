import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { Store } from '../../../server/store/Store';
import { migrations } from '../../../server/store/migrations';

describe('Store (unit)', () => {
  let dir: string;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-store-'));
  });

  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('brings a store file from the first schema up to date and keeps its rows', () => {
    const file = path.join(dir, 'broker.db');
    const old = new Database(file);
    old.exec(migrations[0]);
    old.pragma('user_version = 1');
    old.prepare("INSERT INTO users (name, admin, created_at) VALUES ('ada', 1, 1)").run();
    old.close();

    const store = new Store(file);
    try {
      assert.equal(store.schemaVersion, migrations.length);
      const columns = store.db.prepare("SELECT name FROM pragma_table_info('agents')").all() as {
        name: string;
      }[];
      assert.ok(columns.some((column) => column.name === 'issue_ref'));
      assert.equal(
        (store.db.prepare('SELECT count(*) AS n FROM users').get() as { n: number }).n,
        1,
      );
    } finally {
      store.close();
    }
  });

  it('knows a created token, stores only its hash, and rejects any other token', () => {
    const store = new Store(path.join(dir, 'broker.db'));
    try {
      const token = store.createToken('ada', true);
      assert.deepEqual(store.userForToken(token), { user: 'ada', admin: true });
      assert.equal(store.userForToken(token + 'x'), null);
      const stored = store.db.prepare('SELECT token_hash FROM tokens').all() as {
        token_hash: string;
      }[];
      assert.ok(stored.every((row) => row.token_hash !== token));
    } finally {
      store.close();
    }
  });

  it('returns the events of one agent after a given id, in order', () => {
    const store = new Store(path.join(dir, 'broker.db'));
    try {
      const first = store.appendEvent('a', { kind: 'info', message: 'one' });
      store.appendEvent('b', { kind: 'info', message: 'other agent' });
      store.appendEvent('a', { kind: 'progress', message: 'two', data: { n: 2 } });
      assert.deepEqual(
        store.events('a').map((event) => event.message),
        ['one', 'two'],
      );
      assert.deepEqual(
        store.events('a', first.id).map((event) => event.data),
        [{ n: 2 }],
      );
    } finally {
      store.close();
    }
  });

  it("counts an agent's stored output in UTF-8 bytes and sees its output-cap notice, not other agents' or other limits", () => {
    const store = new Store(path.join(dir, 'broker.db'));
    try {
      assert.deepEqual(store.storedOutput('a'), { bytes: 0, capped: false });
      store.appendEvent('a', { kind: 'output', message: 'héllo\n', data: { stream: 'stdout' } });
      store.appendEvent('a', { kind: 'output', message: '✓', data: { stream: 'stderr' } });
      store.appendEvent('a', { kind: 'progress', message: 'not output' });
      store.appendEvent('a', { kind: 'limit', message: 'time', data: { limit: 'time' } });
      store.appendEvent('b', {
        kind: 'output',
        message: 'other agent',
        data: { stream: 'stdout' },
      });
      assert.deepEqual(store.storedOutput('a'), { bytes: 7 + 3, capped: false });

      store.appendEvent('a', {
        kind: 'limit',
        message: 'output passed',
        data: { limit: 'output' },
      });
      assert.deepEqual(store.storedOutput('a'), { bytes: 10, capped: true });
      assert.deepEqual(store.storedOutput('b'), { bytes: 11, capped: false });
    } finally {
      store.close();
    }
  });
});
