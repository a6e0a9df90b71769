import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { AuditLog, canonicalJson } from '../../../../server/policy/audit/AuditLog';
import { AUDIT_KEY_FILE } from '../../../../server/policy/audit/auditKey';
import { rechainWithPlainSha256 } from '../../../helpers/rechainWithPlainSha256';

describe('AuditLog (unit)', () => {
  let dir: string;
  let db: Database.Database;
  let log: AuditLog;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-audit-'));
    db = new Database(path.join(dir, 'broker.db'));
    log = new AuditLog(db, () => ['hunter2-secret'], { keyDir: dir });
    for (let index = 1; index <= 5; index++) {
      log.append({
        actor: 'alice',
        agentId: index % 2 ? 'a1' : 'a2',
        action: 'egress.request',
        decision: 'allow',
        details: { host: `h${index}.example`, method: 'GET' },
      });
    }
  });

  afterEach(() => {
    db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('verifies an untouched chain', () => {
    assert.deepEqual(log.verify(), {
      ok: true,
      rowsChecked: 5,
      firstBadRowId: null,
      reason: null,
      unkeyedRows: 0,
    });
  });

  it('lists rows in order, filtered by agent', () => {
    assert.deepEqual(
      log.list({ agentId: 'a2' }).map((row) => row.id),
      [2, 4],
    );
    assert.deepEqual(
      log.list({ afterId: 3 }).map((row) => row.id),
      [4, 5],
    );
  });

  it('refuses UPDATE and DELETE through SQL', () => {
    assert.throws(
      () => db.prepare("UPDATE audit SET actor = 'mallory' WHERE id = 2").run(),
      /append-only/,
    );
    assert.throws(() => db.prepare('DELETE FROM audit WHERE id = 2').run(), /append-only/);
  });

  it('names an edited row', () => {
    db.exec('DROP TRIGGER audit_no_update');
    db.prepare(
      `UPDATE audit SET details = '{"host":"elsewhere.example","method":"GET"}' WHERE id = 3`,
    ).run();

    const result = log.verify();

    assert.equal(result.ok, false);
    assert.equal(result.firstBadRowId, 3);
    assert.match(result.reason!, /row 3 was edited/);
  });

  it('names a row whose stored details say something else than what was hashed', () => {
    db.exec('DROP TRIGGER audit_no_update');
    // A repeated key: JSON.parse keeps the last value (what was hashed), SQL's json_extract the
    // first, so anything reading the text directly would see another host.
    db.prepare(
      `UPDATE audit SET details = '{"host":"elsewhere.example",' || substr(details, 2) WHERE id = 3`,
    ).run();
    assert.equal(
      (
        db
          .prepare("SELECT json_extract(details, '$.host') AS host FROM audit WHERE id = 3")
          .get() as {
          host: string;
        }
      ).host,
      'elsewhere.example',
    );

    const result = log.verify();

    assert.equal(result.ok, false);
    assert.equal(result.firstBadRowId, 3);
    assert.match(result.reason!, /row 3 was edited/);
  });

  it('names a row whose details are not JSON any more, instead of failing', () => {
    db.exec('DROP TRIGGER audit_no_update');
    db.prepare(`UPDATE audit SET details = 'not json' WHERE id = 2`).run();

    const result = log.verify();

    assert.equal(result.firstBadRowId, 2);
    assert.match(result.reason!, /row 2 was edited/);
  });

  it('names the row after a deleted one and says which was removed', () => {
    db.exec('DROP TRIGGER audit_no_delete');
    db.prepare('DELETE FROM audit WHERE id = 2').run();

    const result = log.verify();

    assert.equal(result.firstBadRowId, 3);
    assert.match(result.reason!, /rows 2\.\.2 were deleted/);
  });

  it('detects an edit that also recomputes the edited row hash', () => {
    db.exec('DROP TRIGGER audit_no_update');
    db.prepare("UPDATE audit SET actor = 'mallory', hash = ? WHERE id = 2").run('f'.repeat(64));

    assert.equal(log.verify().firstBadRowId, 2);
  });

  it('keeps appending a valid chain after the log is reopened', () => {
    const reopened = new AuditLog(db, undefined, { keyDir: dir });
    reopened.append({ actor: 'bob', agentId: null, action: 'agent.spawn', decision: 'info' });

    assert.equal(reopened.verify().ok, true);
    assert.equal(reopened.verify().rowsChecked, 6);
  });

  it('never stores a known secret value, even when a caller passes one', () => {
    log.append({
      actor: 'alice',
      agentId: 'a1',
      action: 'egress.request',
      decision: 'allow',
      details: { note: 'x hunter2-secret y' },
    });

    const stored = db
      .prepare('SELECT details FROM audit ORDER BY id DESC LIMIT 1')
      .pluck()
      .get() as string;

    assert.ok(!stored.includes('hunter2-secret'));
    assert.equal(log.verify().ok, true);
  });

  it('keeps its key in a 0600 file in the data directory', () => {
    const mode = fs.statSync(path.join(dir, AUDIT_KEY_FILE)).mode & 0o777;
    assert.equal(mode, 0o600);
  });

  it('detects an edited row whose chain was recomputed with plain sha256 from there on', () => {
    db.exec('DROP TRIGGER audit_no_update');
    db.prepare(`UPDATE audit SET details = '{"host":"elsewhere.example"}' WHERE id = 3`).run();
    rechainWithPlainSha256(db, 3, false);

    const result = log.verify();

    assert.equal(result.ok, false);
    assert.equal(result.firstBadRowId, 3);
  });

  it('detects a rewrite that also marks the recomputed rows as unkeyed', () => {
    db.exec('DROP TRIGGER audit_no_update');
    db.prepare(`UPDATE audit SET details = '{"host":"elsewhere.example"}' WHERE id = 3`).run();
    rechainWithPlainSha256(db, 1, true);

    const result = log.verify();

    assert.equal(result.ok, false);
    assert.equal(result.firstBadRowId, 1);
    assert.match(result.reason!, /claims an unkeyed hash/);
  });

  it('fails verification of keyed rows once the key file is lost and replaced', () => {
    fs.rmSync(path.join(dir, AUDIT_KEY_FILE));
    const reopened = new AuditLog(db, undefined, { keyDir: dir });

    assert.equal(reopened.verify().firstBadRowId, 1);
  });
});

describe('AuditLog on a store from before keyed chains (unit)', () => {
  let dir: string;
  let db: Database.Database;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-audit-old-'));
    db = new Database(path.join(dir, 'broker.db'));
    // The table as an older broker left it: no chain column, every link plain sha256.
    db.exec(`CREATE TABLE audit (id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL,
      actor TEXT NOT NULL, agent_id TEXT, action TEXT NOT NULL, decision TEXT NOT NULL,
      details TEXT NOT NULL, hash TEXT NOT NULL)`);
    let previous = '0'.repeat(64);
    for (let id = 1; id <= 3; id++) {
      const content = {
        id,
        at: id,
        actor: 'old',
        agentId: null,
        action: 'agent.spawn',
        decision: 'info',
        details: {},
      };
      const hash = crypto
        .createHash('sha256')
        .update(previous)
        .update(canonicalJson(content))
        .digest('hex');
      db.prepare(
        "INSERT INTO audit (id, at, actor, agent_id, action, decision, details, hash) VALUES (?, ?, 'old', NULL, 'agent.spawn', 'info', '{}', ?)",
      ).run(id, id, hash);
      previous = hash;
    }
  });

  afterEach(() => {
    db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('verifies the old rows as unkeyed and chains new rows after them with the key', () => {
    const log = new AuditLog(db, undefined, { keyDir: dir });
    log.append({ actor: 'new', agentId: null, action: 'agent.spawn', decision: 'info' });

    const result = log.verify();

    assert.deepEqual(result, {
      ok: true,
      rowsChecked: 4,
      firstBadRowId: null,
      reason: null,
      unkeyedRows: 3,
    });
    const key = JSON.parse(fs.readFileSync(path.join(dir, AUDIT_KEY_FILE), 'utf8'));
    assert.equal(key.keyedFromId, 4);
    assert.equal(db.prepare('SELECT chain FROM audit WHERE id = 4').pluck().get(), 'hmac-sha256');
  });

  it('still names an edited old row', () => {
    const log = new AuditLog(db, undefined, { keyDir: dir });
    db.exec('DROP TRIGGER audit_no_update');
    db.prepare("UPDATE audit SET actor = 'mallory' WHERE id = 2").run();

    assert.equal(log.verify().firstBadRowId, 2);
  });
});
