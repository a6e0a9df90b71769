import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { BrokerClient } from '../../client/BrokerClient';
import { bundleRepository } from '../../client/repoBundle';
import { AgentvmError } from '../../protocol/errors';
import { packageRoot, storePath } from '../../server/config/paths';
import { FakeGitHub } from '../server/github/fakeGitHub';
import { useVmAgentSuite, type TestProfile } from '../helpers/useVmAgentSuite';
import { probeScript } from './policyProbe';

const execFileAsync = promisify(execFile);

interface Recorded {
  path: string;
  authorization?: string;
}

/** A plain HTTP upstream on the host's loopback that records what arrives. */
async function startUpstream(name: string, received: Recorded[]): Promise<http.Server> {
  const server = http.createServer((request, response) => {
    received.push({ path: request.url ?? '', authorization: request.headers.authorization });
    response.end(`${name} saw ${request.url}\n`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

const portOf = (server: http.Server) => (server.address() as AddressInfo).port;

function fileContains(file: string, needle: string): boolean {
  return fs.readFileSync(file).includes(Buffer.from(needle));
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(
    promise,
    (error: unknown) => error instanceof AgentvmError && error.code === code,
  );
}

describe('per-agent permissions, enforced on a real microVM (vm)', function () {
  this.timeout(15 * 60_000);
  const apiKey = `api-key-${randomBytes(12).toString('hex')}`;
  const githubToken = `gh-token-${randomBytes(12).toString('hex')}`;
  const received: Recorded[] = [];
  const laterReceived: Recorded[] = [];
  const github = new FakeGitHub(githubToken);
  let upstream: http.Server;
  let laterUpstream: http.Server;
  let agentId = '';
  let probe: Record<string, any> = {};
  let probeProfile: TestProfile;

  before(async function () {
    this.timeout(30 * 60_000);
    upstream = await startUpstream('upstream', received);
    laterUpstream = await startUpstream('later', laterReceived);
    const githubUrl = await github.start();
    github.addRepo('octo', 'app');
    github.addIssue('octo', 'app', {
      number: 1,
      title: 'Probe issue',
      body: 'read me',
      labels: [],
      user: 'octocat',
      comments: [],
    });

    const upstreamPort = portOf(upstream);
    const githubPort = Number(new URL(githubUrl).port);
    const command = [
      `agentctl progress "PROBE $(node /opt/probe/probe.js ${upstreamPort} ${portOf(laterUpstream)} ${githubPort})"`,
      'sync',
      'agentctl review "probes done"',
      'agentctl progress "resumed"',
    ].join(' && ');
    const profile = {
      name: 'policy-probe',
      command,
      memoryMiB: 256,
      timeLimitMs: 0,
      files: { '/opt/probe/probe.js': 'probe.js' },
      allowedHosts: [`127.0.0.1:${upstreamPort}`],
      secrets: {
        // The loopback upstreams speak plain HTTP, which a secret is sent over only when allowed.
        API_KEY: {
          source: { env: 'PROBE_API_KEY' },
          hosts: [`127.0.0.1:${upstreamPort}`],
          allowPlainHttp: true,
        },
      },
      github: {
        scopes: ['issues:read'],
        token: { env: 'PROBE_GH_TOKEN' },
        apiHost: `127.0.0.1:${githubPort}`,
        allowPlainHttp: true,
      },
    };
    probeProfile = { profile, files: { 'probe.js': probeScript } };
  });

  const suite = useVmAgentSuite({
    agentId: () => agentId,
    profiles: () => [probeProfile],
    secretEnv: { PROBE_API_KEY: apiKey, PROBE_GH_TOKEN: githubToken },
  });
  const { harness } = suite;

  after(async () => {
    await github.close();
    upstream?.close();
    laterUpstream?.close();
  });

  it('runs the probe agent, which reports its findings and pauses for review', async () => {
    const repo = await bundleRepository(suite.demoRepo);
    const agent = await harness.client.createAgent({
      text: 'Probe the sandbox.',
      profile: 'policy-probe',
      repo,
    });
    agentId = agent.id;

    await harness.waitFor(agentId, ['awaiting_review']);
    const report = (await harness.client.events(agentId)).find(
      (event) => event.kind === 'progress' && event.message.startsWith('PROBE '),
    );
    assert.ok(report, 'the probe reported with agentctl progress');
    probe = JSON.parse(report.message.slice('PROBE '.length));
  });

  it('reaches an allowed host through the proxy, with the real secret swapped into the header there', () => {
    assert.equal(probe.allowed.status, 200, JSON.stringify(probe.allowed));
    assert.match(probe.allowed.body, /upstream saw \/allowed/);
    assert.deepEqual(received, [{ path: '/allowed', authorization: `Bearer ${apiKey}` }]);
  });

  it('refuses any other host at once with a readable reason, and audits the refusal', async () => {
    assert.equal(probe.denied.status, 403);
    assert.match(probe.denied.reason, /not in this agent's allowedHosts/);
    assert.deepEqual(laterReceived, []);

    const rows = await harness.client.audit({ agentId });
    const refused = rows.find((row) => row.action === 'egress.request' && row.decision === 'deny');
    assert.equal(refused?.details.port, portOf(laterUpstream));
    assert.equal(refused?.details.path, '/denied');
  });

  it('cannot reach the gateway, the host loopback or QEMU DNS directly', () => {
    for (const key of ['gatewayDirect', 'loopbackDirect', 'dnsDirect']) {
      assert.notEqual(probe[key], 'connected', `${key}: ${probe[key]}`);
    }
  });

  it('sees only placeholders, and the secret values are nowhere on its disk or in its memory dump', async () => {
    assert.match(probe.apiKey, /^agentvm-secret-API_KEY-[0-9a-f]{32}$/);
    assert.match(probe.ghToken, /^agentvm-secret-GITHUB_TOKEN-[0-9a-f]{32}$/);
    assert.ok(probe.dumped > 0);

    const agent = harness.broker.store.getAgent(agentId)!;
    const statePath = agent.snapshot!.statePath;
    const overlay = path.join(harness.dataDir, 'agents', agentId, 'overlay.qcow2');
    // The placeholders must be found, or the search itself proves nothing.
    assert.ok(fileContains(statePath, probe.apiKey), 'placeholder in the memory dump');
    assert.ok(fileContains(overlay, probe.apiKey), 'placeholder in the process dump on disk');
    for (const secret of [apiKey, githubToken]) {
      assert.ok(!fileContains(statePath, secret), 'secret value in the memory dump');
      assert.ok(!fileContains(overlay, secret), 'secret value on the VM disk');
      assert.ok(
        !fileContains(harness.broker.manager.consolePath(agentId), secret),
        'secret value on the console',
      );
    }
  });

  it('trusts the broker CA inside the guest', () => {
    assert.equal(probe.caTrusted, true);
  });

  it('with issues:read reads an issue but cannot create a label', async () => {
    assert.equal(probe.issue.status, 200, JSON.stringify(probe.issue));
    assert.match(probe.issue.body, /Probe issue/);
    assert.equal(probe.label.status, 403);
    assert.match(probe.label.reason, /labels/);
    assert.deepEqual(
      github.calls.map((call) => `${call.method} ${call.path}`),
      ['GET /repos/octo/app/issues/1'],
    );

    const rows = await harness.client.audit({ agentId });
    const calls = rows
      .filter((row) => row.action === 'github.call')
      .map((row) => `${row.decision} ${row.details.method}`);
    assert.deepEqual(calls, ['allow GET', 'deny POST']);
  });

  it("does not let one user's token list, read, review, resume or cancel another user's agent", async () => {
    const mallory = new BrokerClient({
      url: harness.url,
      token: harness.broker.store.createToken('mallory'),
    });
    assert.deepEqual(await mallory.listAgents(), []);
    // Another user's agent is answered like an id that does not exist.
    await expectCode(mallory.getAgent(agentId), 'AGENT_NOT_FOUND');
    await expectCode(mallory.events(agentId), 'AGENT_NOT_FOUND');
    await expectCode(mallory.review(agentId), 'AGENT_NOT_FOUND');
    await expectCode(mallory.resume(agentId, 'go'), 'AGENT_NOT_FOUND');
    await expectCode(mallory.cancel(agentId), 'AGENT_NOT_FOUND');
    await expectCode(mallory.setAllowedHosts(agentId, ['*.example.com']), 'AGENT_NOT_FOUND');
    await expectCode(mallory.audit({ agentId }), 'AGENT_NOT_FOUND');
    assert.deepEqual(await mallory.audit(), []);
    await expectCode(mallory.verifyAudit(), 'FORBIDDEN');

    const refused = (await harness.client.audit({ agentId })).filter(
      (row) => row.actor === 'mallory',
    );
    assert.deepEqual(
      refused.map((row) => `${row.decision} ${row.action}`),
      [
        'deny agent.read',
        'deny agent.read',
        'deny agent.review',
        'deny agent.resume',
        'deny agent.cancel',
        'deny egress.allowlist',
        'deny audit.read',
      ],
    );
    assert.equal((await harness.client.getAgent(agentId)).state, 'awaiting_review');
  });

  it('applies an allowlist change to the restored VM, then finishes after resume', async () => {
    await harness.client.review(agentId);
    const policy = await harness.client.setAllowedHosts(agentId, [
      `127.0.0.1:${portOf(laterUpstream)}`,
    ]);
    assert.deepEqual(policy.allowedHosts, [`127.0.0.1:${portOf(laterUpstream)}`]);

    const fetchLater = `printf 'GET http://127.0.0.1:${portOf(laterUpstream)}/later HTTP/1.0\\r\\n\\r\\n' | /opt/agentvm/busybox nc -w 10 10.0.2.100 3128`;
    const result = (await harness.client.guest(agentId, { op: 'exec', command: fetchLater })) as {
      stdout: string;
    };
    assert.match(result.stdout, /later saw \/later/);
    assert.deepEqual(
      laterReceived.map((entry) => entry.path),
      ['/later'],
    );

    await harness.client.resume(agentId, 'carry on');
    await harness.waitFor(agentId, ['done']);
    const actions = (await harness.client.audit({ agentId })).map(
      (row) => `${row.decision} ${row.action}`,
    );
    for (const expected of [
      'allow agent.spawn',
      'allow agent.review',
      'allow egress.allowlist',
      'allow agent.resume',
    ]) {
      assert.ok(actions.includes(expected), `audit has ${expected}: ${actions.join(', ')}`);
    }
    assert.equal(
      harness.broker.policy.egress(agentId),
      undefined,
      'the listener closes when the agent ends',
    );
  });

  it('makes `agentvm audit --verify` fail and name the row after one row is edited', async () => {
    const cli = (args: string[]) =>
      execFileAsync('npx', ['tsx', path.join(packageRoot(), 'server/cli/main.ts'), ...args], {
        env: { ...process.env, AGENTVM_URL: harness.url, AGENTVM_TOKEN: harness.token },
      });
    const intact = await cli(['audit', '--verify']);
    assert.match(intact.stdout, /audit log intact/);

    const rows = await harness.client.audit({ agentId });
    const victim = rows.find((row) => row.action === 'egress.request' && row.decision === 'deny')!;
    const db = new Database(storePath(harness.dataDir));
    try {
      db.exec('DROP TRIGGER audit_no_update');
      db.prepare('UPDATE audit SET decision = ? WHERE id = ?').run('allow', victim.id);
    } finally {
      db.close();
    }

    const broken = await cli(['audit', '--verify']).then(
      () => assert.fail('verify succeeded on an edited log'),
      (error: { code: number; stdout: string }) => error,
    );
    assert.equal(broken.code, 1);
    assert.match(broken.stdout, new RegExp(`BROKEN at row ${victim.id}\\b`));
  });
});
