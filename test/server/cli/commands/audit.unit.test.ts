import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AgentvmError } from '../../../../protocol/errors';
import { Broker } from '../../../../server/Broker';
import { formatVerifyResult } from '../../../../server/cli/commands/audit';
import { packageRoot } from '../../../../server/config/paths';
import { silentLogger } from '../../../../server/log';
import { canonicalJson } from '../../../../server/policy/audit/AuditLog';
import { ProfileRegistry } from '../../../../server/profiles/ProfileRegistry';
import type { VmmDriver } from '../../../../server/vmm/VmmDriver';

const noVms: VmmDriver = {
  name: 'none',
  boot: () => Promise.reject(new Error('no VM in this test')),
  restore: () => Promise.reject(new Error('no VM in this test')),
  attach: () => Promise.reject(new Error('no VM in this test')),
};

describe('agentvm audit --verify (unit)', function () {
  this.timeout(60_000);
  let dataDir: string;
  let broker: Broker;
  let url: string;
  let token: string;

  beforeEach(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-audit-cli-'));
    broker = new Broker({
      dataDir,
      port: 0,
      logger: silentLogger,
      driver: noVms,
      loadImage: () => {
        throw new AgentvmError('IMAGE_MISSING', 'no image in this test');
      },
      profiles: new ProfileRegistry([]),
      version: 'test',
    });
    ({ url, token } = await broker.start());
    for (let index = 1; index <= 4; index++) {
      broker.policy.audit.append({
        actor: 'alice',
        agentId: 'a1',
        action: 'egress.request',
        decision: 'allow',
        details: { host: `h${index}.example` },
      });
    }
  });

  afterEach(async () => {
    await broker.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  // Asynchronous: the broker answering the CLI runs in this very process.
  const verify = () =>
    new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(
        'node',
        [path.join(packageRoot(), 'dist', 'cli.js'), 'audit', '--verify'],
        {
          env: { ...process.env, AGENTVM_URL: url, AGENTVM_TOKEN: token },
          timeout: 30_000,
        },
      );
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
      child.on('close', (status) => resolve({ status, stdout, stderr }));
    });

  it('says intact for an untouched log', async () => {
    const result = await verify();
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /audit log intact: 4 rows checked/);
  });

  it('exits 1 after a row is edited and the chain recomputed with plain sha256 over broker.db', async () => {
    // Only broker.db is written, as someone who cannot read the data directory's audit.key would.
    const db = broker.store.db;
    db.exec('DROP TRIGGER audit_no_update');
    db.prepare(`UPDATE audit SET details = '{"host":"innocent.example"}' WHERE id = 2`).run();
    const rows = db.prepare('SELECT * FROM audit ORDER BY id').all() as Array<
      Record<string, string & number>
    >;
    let previous = '0'.repeat(64);
    for (const row of rows) {
      const content = {
        id: row.id,
        at: row.at,
        actor: row.actor,
        agentId: row.agent_id,
        action: row.action,
        decision: row.decision,
        details: JSON.parse(row.details),
      };
      const hash = crypto
        .createHash('sha256')
        .update(previous)
        .update(canonicalJson(content))
        .digest('hex');
      db.prepare("UPDATE audit SET hash = ?, chain = 'sha256' WHERE id = ?").run(hash, row.id);
      previous = hash;
    }

    const result = await verify();

    assert.equal(result.status, 1, result.stdout + result.stderr);
    assert.match(result.stdout, /audit log BROKEN at row 1/);
  });
});

describe('formatVerifyResult (unit)', () => {
  const intact = { ok: true, firstBadRowId: null, reason: null };

  it('says how many rows predate the keyed chain when some do', () => {
    assert.equal(
      formatVerifyResult({ ...intact, rowsChecked: 32, unkeyedRows: 5 }),
      'audit log intact: 32 rows checked (5 from before the keyed chain, checked with sha256)',
    );
  });

  it('says nothing of the keyed chain when every row is keyed or an older broker did not count', () => {
    assert.equal(
      formatVerifyResult({ ...intact, rowsChecked: 32, unkeyedRows: 0 }),
      'audit log intact: 32 rows checked',
    );
    assert.equal(
      formatVerifyResult({ ...intact, rowsChecked: 1 }),
      'audit log intact: 1 row checked',
    );
  });

  it('names the first bad row of a broken chain', () => {
    assert.equal(
      formatVerifyResult({
        ok: false,
        rowsChecked: 3,
        firstBadRowId: 2,
        reason: 'hash mismatch',
        unkeyedRows: 1,
      }),
      'audit log BROKEN at row 2: hash mismatch',
    );
  });
});
