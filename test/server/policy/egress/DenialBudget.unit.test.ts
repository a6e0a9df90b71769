import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AuditRecord } from '../../../../server/policy/audit/AuditLog';
import { CertificateAuthority } from '../../../../server/policy/egress/CertificateAuthority';
import {
  DenialBudget,
  MAX_DENIAL_ROWS_PER_SECOND,
  type DenialSummary,
} from '../../../../server/policy/egress/DenialBudget';
import { EgressProxy } from '../../../../server/policy/egress/EgressProxy';
import { viaProxy } from './egressTestClients';

describe('DenialBudget (unit)', function () {
  it('admits the first refusals of each second and counts the rest into one summary', () => {
    let nowMs = 0;
    const summaries: DenialSummary[] = [];
    const budget = new DenialBudget(
      (summary) => summaries.push(summary),
      () => nowMs,
    );

    const admitted = Array.from({ length: 50 }, (_, index) =>
      budget.admit('egress.request', `h${index % 12}.test`, 80),
    );
    budget.flush();
    nowMs = 1000;
    const nextSecond = budget.admit('egress.connect', 'h.test', 443);

    assert.equal(admitted.filter(Boolean).length, MAX_DENIAL_ROWS_PER_SECOND);
    assert.equal(nextSecond, true);
    assert.equal(summaries.length, 1);
    assert.equal(summaries[0]!.coalesced, 50 - MAX_DENIAL_ROWS_PER_SECOND);
    assert.deepEqual(summaries[0]!.actions, { 'egress.request': 30 });
    assert.equal(summaries[0]!.hosts.length, 10);
  });

  it('names no host in a summary for refusals that had none (h17: "undefined:undefined" for headers that came too late)', () => {
    const summaries: DenialSummary[] = [];
    const budget = new DenialBudget(
      (summary) => summaries.push(summary),
      () => 0,
    );

    for (let index = 0; index <= MAX_DENIAL_ROWS_PER_SECOND; index++)
      budget.admit('egress.request', undefined, undefined);
    budget.flush();

    assert.equal(summaries[0]!.coalesced, 1);
    assert.deepEqual(summaries[0]!.hosts, []);
  });
});

describe('EgressProxy refusal rows (unit)', function () {
  let dir: string;
  let proxy: EgressProxy;
  const audit: AuditRecord[] = [];

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-egress-denials-'));
    const ca = await CertificateAuthority.loadOrCreate(path.join(dir, 'ca'));
    proxy = new EgressProxy({ ca, audit: (record) => void audit.push(record) });
  });

  after(async () => {
    await proxy.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('writes a bounded number of rows for a guest refused in a loop, and counts every refusal (h14: 1098 rows/s, 65 GB/hour)', async () => {
    const { socketPath } = await proxy.addAgent(
      'a1',
      { actor: 'alice', allowedHosts: ['example.com'] },
      path.join(dir, 'a1', 'proxy.sock'),
    );
    const startedMs = performance.now();

    for (let index = 0; index < 100; index++) {
      const answer = await viaProxy(socketPath, `http://denied${index}.test/${'p'.repeat(5000)}`);
      assert.equal(answer.status, 403);
    }
    const elapsedMs = performance.now() - startedMs;
    await proxy.removeAgent('a1');

    const single = audit.filter((row) => row.action === 'egress.request');
    const summaries = audit.filter((row) => row.action === 'egress.denied');
    const counted = summaries.reduce((sum, row) => sum + Number(row.details?.coalesced), 0);
    assert.equal(single.length + counted, 100);
    assert.ok(
      single.length <= MAX_DENIAL_ROWS_PER_SECOND * Math.ceil(elapsedMs / 1000 + 1),
      `${single.length} rows of their own in ${elapsedMs} ms`,
    );
    assert.ok(summaries.length >= 1);
    assert.equal(summaries[0]!.decision, 'deny');
    // Guest text is cut in the rows that are written.
    assert.ok(String(single[0]!.details?.path).length < 1100);
    assert.match(String(single[0]!.details?.path), /more characters cut\]$/);
  });
});
