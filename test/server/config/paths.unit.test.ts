import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { secureDataDir, storePath } from '../../../server/config/paths';
import { Store } from '../../../server/store/Store';

describe('paths (unit)', function () {
  let parent: string;

  beforeEach(() => {
    parent = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-paths-'));
  });

  afterEach(() => fs.rmSync(parent, { recursive: true, force: true }));

  it('creates a new data directory with mode 0700', function () {
    const root = path.join(parent, 'data');

    assert.equal(secureDataDir(root), null);

    assert.equal(fs.statSync(root).mode & 0o777, 0o700);
  });

  it('tightens a world-readable data directory and reports its old mode (red-team finding 2)', function () {
    const root = path.join(parent, 'data');
    fs.mkdirSync(root);
    fs.chmodSync(root, 0o755);

    assert.equal(secureDataDir(root), 0o755);

    assert.equal(fs.statSync(root).mode & 0o777, 0o700);
    assert.equal(secureDataDir(root), null);
  });

  it('keeps broker.db and its WAL files readable by their owner only', function () {
    const root = path.join(parent, 'data');
    const store = new Store(storePath(root));
    try {
      store.createToken('alice');
      for (const file of ['broker.db', 'broker.db-wal', 'broker.db-shm']) {
        const stat = fs.statSync(path.join(root, file), { throwIfNoEntry: false });
        if (file === 'broker.db') assert.ok(stat, 'broker.db was not created');
        if (stat) assert.equal(stat.mode & 0o777, 0o600, file);
      }
      assert.equal(fs.statSync(root).mode & 0o777, 0o700);
    } finally {
      store.close();
    }
  });

  it('takes group and other access away from a store an older broker left 0644', function () {
    const root = path.join(parent, 'data');
    new Store(storePath(root)).close();
    fs.chmodSync(storePath(root), 0o644);

    new Store(storePath(root)).close();

    assert.equal(fs.statSync(storePath(root)).mode & 0o777, 0o600);
  });
});
