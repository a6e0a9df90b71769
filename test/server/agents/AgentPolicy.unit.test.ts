import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { profileSchema, type ProfileInput } from '../../../protocol/api';
import { AgentvmError } from '../../../protocol/errors';
import { AgentPolicy } from '../../../server/agents/AgentPolicy';
import { silentLogger } from '../../../server/log';
import type { AgentRecord } from '../../../server/store/Store';

function record(id: string, profile: Partial<ProfileInput>, vmSeconds = 0): AgentRecord {
  const profileSpec = profileSchema.parse({ name: 'p', command: 'true', ...profile });
  return { id, owner: 'alice', profile: 'p', profileSpec, vmSeconds } as AgentRecord;
}

describe('AgentPolicy (unit)', () => {
  let dir: string;
  let db: Database.Database;
  const policies: AgentPolicy[] = [];
  const env = { KEY: 'real-value-123456' };

  const newPolicy = async () => {
    const policy = new AgentPolicy({
      db,
      dataDir: dir,
      logger: silentLogger,
      profileBaseDir: () => dir,
      env,
    });
    await policy.start();
    policies.push(policy);
    return policy;
  };

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-agentpolicy-'));
    db = new Database(':memory:');
  });

  afterEach(async () => {
    for (const policy of policies.splice(0)) await policy.close();
    db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a VM shape over the limits before anything starts, naming the limit', async () => {
    const policy = await newPolicy();
    const profile = record('a', { memoryMiB: 1024, limits: { maxMemoryMiB: 512 } }).profileSpec;
    assert.throws(
      () => policy.admit(profile),
      (error: unknown) =>
        error instanceof AgentvmError &&
        error.code === 'LIMIT_EXCEEDED' &&
        /1024 MiB.*512 MiB/.test(error.message),
    );
  });

  it('refuses a profile whose secret has no value, naming the source and no value', async () => {
    const policy = await newPolicy();
    const profile = record('a', {
      secrets: { TOKEN: { source: { env: 'NOT_SET' }, hosts: ['example.com'] } },
    }).profileSpec;
    assert.throws(
      () => policy.admit(profile),
      (error: unknown) =>
        error instanceof AgentvmError &&
        error.code === 'SECRET_MISSING' &&
        /NOT_SET/.test(error.message),
    );
  });

  it('gives the guest placeholders and the proxy environment, and keeps placeholders and port across a restart', async () => {
    const agent = record('a1', {
      secrets: { KEY: { source: { env: 'KEY' }, hosts: ['example.com'] } },
    });
    fs.mkdirSync(path.join(dir, 'agents', 'a1'), { recursive: true });
    const first = await newPolicy();
    const egress = await first.prepare(agent);
    const env1 = first.guestEnv('a1');
    assert.match(env1.KEY, /^agentvm-secret-KEY-/);
    assert.equal(env1.https_proxy, 'http://10.0.2.100:3128');
    assert.ok(!JSON.stringify(env1).includes('real-value'));
    assert.deepEqual(await first.prepare(agent), egress, 'prepare is idempotent');
    await first.close();

    const second = await newPolicy();
    assert.deepEqual(await second.prepare(agent), egress);
    assert.equal(second.guestEnv('a1').KEY, env1.KEY);
    assert.ok(
      !fs
        .readFileSync(path.join(dir, 'agents', 'a1', 'policy.json'), 'utf8')
        .includes('real-value'),
    );
  });

  it('arms for the nearer of the time limit and the cost budget, and grants the budget again after a cost hit', async () => {
    const policy = await newPolicy();
    fs.mkdirSync(path.join(dir, 'agents', 'c1'), { recursive: true });
    // 1 vCPU + 1 GiB = 2 units; 100 unit-seconds = 50 s of running, 20 s already used.
    const agent = record(
      'c1',
      { memoryMiB: 1024, vcpus: 1, timeLimitMs: 600_000, limits: { costBudgetUnitSeconds: 100 } },
      20,
    );
    assert.equal(policy.limits.msUntilLimit(agent, 0), 30_000);
    assert.equal(policy.limits.limitReached(agent, 10_000, 10_000), null);

    const hit = policy.limits.limitReached(agent, 30_000, 30_000);
    assert.equal(hit?.limit, 'cost');
    policy.limits.limitHit(agent, hit!, 30_000);
    assert.equal(policy.limits.msUntilLimit({ ...agent, vmSeconds: 50 }, 0), 50_000);
    assert.equal(policy.audit.list({ agentId: 'c1' })[0].action, 'limit.hit');
  });

  it('changes the allowlist of an agent and audits who changed it', async () => {
    const policy = await newPolicy();
    fs.mkdirSync(path.join(dir, 'agents', 'e1'), { recursive: true });
    const agent = record('e1', { allowedHosts: ['a.example'] });
    await policy.prepare(agent);
    const changed = policy.setAllowedHosts(agent, ['*.example.org'], 'bob');
    assert.deepEqual(changed.allowedHosts, ['*.example.org']);
    assert.deepEqual(policy.describe(agent).allowedHosts, ['*.example.org']);
    const row = policy.audit.list({ agentId: 'e1' }).at(-1)!;
    assert.equal(row.actor, 'bob');
    assert.deepEqual(row.details, { before: ['a.example'], after: ['*.example.org'] });
    assert.throws(() => policy.setAllowedHosts(agent, ['not a host'], 'bob'), /not a host name/);
  });
});
