import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { AgentvmError } from '../../protocol/errors';
import { packageRoot, storePath } from '../../server/config/paths';
import { migrations } from '../../server/store/migrations';
import { Store } from '../../server/store/Store';
import { createImagelessBroker } from '../helpers/imagelessBroker';

const profile = {
  name: 'plain',
  command: 'true',
  memoryMiB: 256,
  vcpus: 1,
  timeLimitMs: 0,
  bootTimeoutMs: 1000,
  env: {},
  files: {},
  onLimit: 'pause',
  allowedHosts: [],
  image: 'default',
};

/** Writes a store file as the first released schema left it, with agents in several states. */
function writeFirstSchemaStore(file: string, dataDir: string): void {
  const db = new Database(file);
  db.exec(migrations[0]);
  db.pragma('user_version = 1');
  const insert = db.prepare(
    `INSERT INTO agents (id, owner, title, text, profile, profile_json, state, state_reason, created_at, updated_at,
       ended_at, repo_json, review_json, last_progress, last_output_json, result_json, snapshot_json, exit_code)
     VALUES (@id, 'ada', @title, 'task', 'plain', @profile, @state, NULL, 1, 2, @endedAt,
       @repo, @review, 'last progress', '["line one"]', @result, @snapshot, @exitCode)`,
  );
  const repo = JSON.stringify({
    baseCommit: 'a'.repeat(40),
    branch: 'main',
    uncommitted: [],
    uncommittedIncluded: false,
  });
  const snapshotPath = path.join(dataDir, 'agents', 'oldpaused1', 'snapshot.state');
  fs.mkdirSync(path.dirname(snapshotPath), { recursive: true });
  fs.writeFileSync(snapshotPath, 'state');
  const common = {
    profile: JSON.stringify(profile),
    repo,
    review: null,
    result: null,
    snapshot: null,
    exitCode: null,
    endedAt: null,
  };
  insert.run({
    ...common,
    id: 'olddone001',
    title: 'finished long ago',
    state: 'done',
    endedAt: 3,
    exitCode: 0,
    result: JSON.stringify({ headCommit: 'b'.repeat(40), commits: [], exitCode: 0 }),
  });
  insert.run({
    ...common,
    id: 'oldpaused1',
    title: 'waiting for review',
    state: 'awaiting_review',
    review: JSON.stringify({ requestId: 'r1', message: 'look', requestedAt: 2 }),
    snapshot: JSON.stringify({
      statePath: snapshotPath,
      sizeBytes: 5,
      sha256: 'f'.repeat(64),
      durationMs: 1,
    }),
  });
  insert.run({
    ...common,
    id: 'oldlost001',
    title: 'its snapshot was deleted',
    state: 'awaiting_review',
    snapshot: JSON.stringify({
      statePath: path.join(dataDir, 'nowhere'),
      sizeBytes: 5,
      sha256: 'f'.repeat(64),
      durationMs: 1,
    }),
  });
  db.prepare(
    "INSERT INTO events (agent_id, at, kind, message) VALUES ('olddone001', 1, 'progress', 'old event')",
  ).run();
  db.close();
}

/** Issue 6, fault 4: a store file from an older agentvm, and one that is not a database at all. */
describe('store files from older versions and damaged ones (unit)', () => {
  let dataDir: string;

  beforeEach(() => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-oldstore-'));
  });

  afterEach(() => {
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('a broker started on a first-schema store migrates it and keeps every agent and event', async () => {
    writeFirstSchemaStore(storePath(dataDir), dataDir);
    const broker = createImagelessBroker(dataDir, { image: 'missing' });
    try {
      await broker.start();
      assert.equal(broker.store.schemaVersion, migrations.length);
      const done = broker.store.getAgent('olddone001');
      assert.equal(done?.state, 'done');
      assert.equal(done?.result?.headCommit, 'b'.repeat(40));
      assert.equal(done?.vmSeconds, 0);
      assert.equal(done?.issueRef, null);
      assert.deepEqual(
        broker.store.events('olddone001').map((event) => event.message),
        ['old event'],
      );

      const paused = broker.store.getAgent('oldpaused1');
      assert.equal(paused?.state, 'awaiting_review');
      assert.equal(paused?.review?.message, 'look');
      assert.equal(
        paused?.snapshot?.checksum,
        `sha256:${'f'.repeat(64)}`,
        'the bare sha256 of a first-schema snapshot now names its algorithm',
      );
      assert.equal(paused?.snapshot && 'sha256' in paused.snapshot, false);

      const lost = broker.store.getAgent('oldlost001');
      assert.equal(lost?.state, 'failed');
      assert.match(lost?.stateReason ?? '', /snapshot is missing/);
    } finally {
      await broker.stop();
    }
  });

  it('`agentvm serve` on a store file that is not a database refuses to start and leaves the file as it was', () => {
    const garbage = Buffer.concat([Buffer.from('SQLite format 3\0'), Buffer.alloc(4096, 0xa5)]);
    fs.writeFileSync(storePath(dataDir), garbage);
    const serve = spawnSync(
      'node',
      [path.join(packageRoot(), 'dist', 'cli.js'), 'serve', '--port', '0'],
      {
        env: { ...process.env, AGENTVM_DATA_DIR: dataDir },
        encoding: 'utf8',
        timeout: 30_000,
      },
    );

    assert.notEqual(serve.status, 0);
    assert.equal(serve.signal, null, 'it exited by itself');
    assert.match(serve.stderr, /STORE_CORRUPT/);
    assert.match(serve.stderr, /broker\.db/);
    assert.doesNotMatch(serve.stderr, /INTERNAL/);
    assert.deepEqual(fs.readFileSync(storePath(dataDir)), garbage);
  });

  it('a store from a newer schema is refused with STORE_CORRUPT instead of being used blindly', () => {
    const db = new Database(storePath(dataDir));
    for (const migration of migrations) db.exec(migration);
    db.pragma(`user_version = ${migrations.length + 1}`);
    db.close();

    assert.throws(
      () => new Store(storePath(dataDir)),
      (error: unknown) =>
        error instanceof AgentvmError &&
        error.code === 'STORE_CORRUPT' &&
        /newer agentvm/.test(error.message),
    );
  });
});
