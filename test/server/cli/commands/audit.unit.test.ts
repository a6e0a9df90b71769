import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Broker } from '../../../../server/Broker';
import { formatVerifyResult } from '../../../../server/cli/commands/audit';
import { packageRoot } from '../../../../server/config/paths';
import { createImagelessBroker } from '../../../helpers/imagelessBroker';
import { rechainWithPlainSha256 } from '../../../helpers/rechainWithPlainSha256';

describe('agentvm audit --verify (unit)', function () {
  this.timeout(60_000);
  let dataDir: string;
  let broker: Broker;
  let url: string;
  let token: string;

  beforeEach(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-audit-cli-'));
    broker = createImagelessBroker(dataDir, { image: 'missing' });
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
    rechainWithPlainSha256(db, 1, true);

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
