import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { AuditLog } from '../../../../server/policy/audit/AuditLog';

describe('AuditLog (unit)', () => {
  let dir: string;
  let db: Database.Database;
  let log: AuditLog;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-audit-'));
    db = new Database(path.join(dir, 'broker.db'));
    log = new AuditLog(db, () => ['hunter2-secret']);
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
    assert.deepEqual(log.verify(), { ok: true, rowsChecked: 5, firstBadRowId: null, reason: null });
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
    const reopened = new AuditLog(db);
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
});
