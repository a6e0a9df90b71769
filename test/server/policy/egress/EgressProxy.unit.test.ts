import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import type { AuditRecord } from '../../../../server/policy/audit/AuditLog';
import { CertificateAuthority } from '../../../../server/policy/egress/CertificateAuthority';
import { EgressProxy, type AgentEgressPolicy } from '../../../../server/policy/egress/EgressProxy';
import { resolveSecrets } from '../../../../server/policy/secrets/SecretBindings';
import { startUpstream, viaConnect, viaProxy } from './egressTestClients';

describe('EgressProxy (unit)', function () {
  let dir: string;
  let brokerCa: CertificateAuthority;
  let testCa: CertificateAuthority;
  let proxy: EgressProxy;
  let audit: AuditRecord[];
  let plain: Awaited<ReturnType<typeof startUpstream>>;
  let secure: Awaited<ReturnType<typeof startUpstream>>;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-egress-'));
    brokerCa = await CertificateAuthority.loadOrCreate(path.join(dir, 'broker-ca'));
    // Stands in for a public CA: the upstream's certificate chains to it, and only the proxy trusts it.
    testCa = await CertificateAuthority.loadOrCreate(
      path.join(dir, 'test-ca'),
      'agentvm test upstream CA',
    );
    plain = await startUpstream();
    secure = await startUpstream(await testCa.issueCertificate('127.0.0.1'));
  });

  after(async () => {
    plain?.server.close();
    secure?.server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  beforeEach(() => {
    audit = [];
    plain.received.length = 0;
    secure.received.length = 0;
    proxy = new EgressProxy({
      ca: brokerCa,
      audit: (record) => audit.push(record),
      upstreamCa: [testCa.certPem],
    });
  });

  afterEach(() => proxy.close());

  const socketFor = (agentId: string) => path.join(dir, 'sockets', agentId, 'proxy.sock');

  const policy = (
    allowedHosts: string[],
    extra: Partial<AgentEgressPolicy> = {},
  ): AgentEgressPolicy => ({
    actor: 'alice',
    allowedHosts,
    ...extra,
  });

  it('keeps the CA private key mode 0600 under its directory', () => {
    assert.equal(fs.statSync(path.join(dir, 'broker-ca', 'ca.key')).mode & 0o777, 0o600);
    assert.equal(fs.statSync(path.join(dir, 'broker-ca', 'leaf.key')).mode & 0o777, 0o600);
  });

  it('forwards a plain HTTP request to an allowed host and audits it', async () => {
    const { socketPath } = await proxy.addAgent(
      'a1',
      policy([`127.0.0.1:${plain.port}`]),
      socketFor('a1'),
    );

    const answer = await viaProxy(socketPath, `http://127.0.0.1:${plain.port}/hello?x=1`);

    assert.equal(answer.status, 200);
    assert.equal(plain.received[0].url, '/hello?x=1');
    assert.deepEqual(
      audit.map((row) => [row.action, row.decision, row.agentId, row.actor, row.details?.path]),
      [['egress.request', 'allow', 'a1', 'alice', '/hello']],
    );
  });

  it('refuses a plain HTTP request to a host not on the list with a readable 403', async () => {
    const { socketPath } = await proxy.addAgent('a1', policy(['example.com']), socketFor('a1'));

    const answer = await viaProxy(socketPath, `http://127.0.0.1:${plain.port}/`);

    assert.equal(answer.status, 403);
    assert.match(
      answer.body,
      /refused.*127\.0\.0\.1:\d+ is not in this agent's allowedHosts \(allowed: example\.com\)/,
    );
    assert.equal(plain.received.length, 0);
    assert.equal(audit[0].decision, 'deny');
  });

  it('tunnels CONNECT to an allowed HTTPS host untouched', async () => {
    const { socketPath } = await proxy.addAgent(
      'a1',
      policy([`127.0.0.1:${secure.port}`]),
      socketFor('a1'),
    );

    const answer = await viaConnect(socketPath, `127.0.0.1:${secure.port}`, testCa.certPem, {
      path: '/tunnel',
    });

    assert.equal(answer.status, 200);
    assert.equal(
      answer.issuer,
      new crypto.X509Certificate(testCa.certPem).subject.replace(/^CN=/, ''),
    );
    assert.equal(secure.received[0].url, '/tunnel');
    assert.deepEqual(audit[0].details, { host: '127.0.0.1', port: secure.port, inspected: false });
  });

  it('refuses CONNECT to a host not on the list, and the reason reaches the client', async () => {
    const { socketPath } = await proxy.addAgent('a1', policy(['example.com']), socketFor('a1'));

    const answer = await viaConnect(socketPath, `127.0.0.1:${secure.port}`, testCa.certPem);

    assert.equal(answer.status, 403);
    assert.match(String(answer.headers['x-agentvm-egress']), /not in this agent's allowedHosts/);
    assert.equal(secure.received.length, 0);
    assert.deepEqual([audit[0].action, audit[0].decision], ['egress.connect', 'deny']);
  });

  it('refuses a listed name that resolves to the host loopback', async () => {
    const { socketPath } = await proxy.addAgent(
      'a1',
      policy([`localhost:${plain.port}`]),
      socketFor('a1'),
    );

    const answer = await viaProxy(socketPath, `http://localhost:${plain.port}/`);

    assert.equal(answer.status, 502);
    assert.match(answer.body, /host-local address/);
    assert.equal(plain.received.length, 0);
    // The allow row is written before the name is resolved; the deny row follows it.
    assert.deepEqual(
      audit.map((row) => [row.action, row.decision, row.details?.addressClass]),
      [
        ['egress.request', 'allow', undefined],
        ['egress.request', 'deny', 'loopback'],
      ],
    );
    assert.match(String(audit[1].details?.reason), /localhost resolves to a loopback address/);
  });

  it('denies CONNECT to a listed name that resolves to the host loopback, audited with the address class (red team 2, finding 5)', async () => {
    const { socketPath } = await proxy.addAgent(
      'a1',
      policy([`localhost:${secure.port}`]),
      socketFor('a1'),
    );

    const answer = await viaConnect(socketPath, `localhost:${secure.port}`, testCa.certPem);

    assert.equal(answer.status, 502);
    assert.match(String(answer.headers['x-agentvm-egress']), /loopback address.*allowedHosts/);
    assert.equal(secure.received.length, 0);
    assert.deepEqual(
      audit.map((row) => [row.action, row.decision, row.details?.addressClass]),
      [['egress.connect', 'deny', 'loopback']],
    );
  });

  it('denies an inspected CONNECT (a bound secret) to a name that resolves to the host loopback before terminating TLS', async () => {
    const [secret] = resolveSecrets(
      { S: { source: { env: 'K' }, hosts: [`localhost:${secure.port}`] } },
      { env: { K: 'loopback-secret-value' } },
    );
    const { socketPath } = await proxy.addAgent(
      'a1',
      policy([`localhost:${secure.port}`], { secrets: [secret] }),
      socketFor('a1'),
    );

    const answer = await viaConnect(socketPath, `localhost:${secure.port}`, brokerCa.certPem, {
      headers: { authorization: `Bearer ${secret.placeholder}` },
    });

    assert.equal(answer.status, 502);
    assert.equal(secure.received.length, 0);
    assert.deepEqual(
      audit.map((row) => [row.action, row.decision, row.details?.addressClass]),
      [['egress.connect', 'deny', 'loopback']],
    );
  });

  it('applies an allowlist change to a running agent', async () => {
    const { socketPath } = await proxy.addAgent(
      'a1',
      policy([`127.0.0.1:${plain.port}`]),
      socketFor('a1'),
    );
    assert.equal((await viaProxy(socketPath, `http://127.0.0.1:${plain.port}/`)).status, 200);

    proxy.setAllowedHosts('a1', []);

    assert.equal((await viaProxy(socketPath, `http://127.0.0.1:${plain.port}/`)).status, 403);
  });

  it('keeps agents apart: each listener applies its own agent policy', async () => {
    const first = await proxy.addAgent('a1', policy([`127.0.0.1:${plain.port}`]), socketFor('a1'));
    const second = await proxy.addAgent('a2', policy([]), socketFor('a2'));

    assert.equal((await viaProxy(first.socketPath, `http://127.0.0.1:${plain.port}/`)).status, 200);
    assert.equal(
      (await viaProxy(second.socketPath, `http://127.0.0.1:${plain.port}/`)).status,
      403,
    );
    assert.deepEqual(
      audit.map((row) => row.agentId),
      ['a1', 'a2'],
    );
  });

  it('swaps a secret into HTTPS headers for its bound host only, terminating TLS with the broker CA', async () => {
    const [secret] = resolveSecrets(
      { API_KEY: { source: { env: 'K' }, hosts: [`127.0.0.1:${secure.port}`] } },
      { env: { K: 'real-api-key-value' } },
    );
    const { socketPath } = await proxy.addAgent(
      'a1',
      policy([`127.0.0.1:${secure.port}`, `127.0.0.1:${plain.port}`], { secrets: [secret] }),
      socketFor('a1'),
    );
    const authorization = `Bearer ${secret.placeholder}`;

    const bound = await viaConnect(socketPath, `127.0.0.1:${secure.port}`, brokerCa.certPem, {
      headers: { authorization },
    });
    const unbound = await viaProxy(socketPath, `http://127.0.0.1:${plain.port}/`, {
      authorization,
    });

    assert.equal(bound.status, 200);
    assert.match(bound.issuer!, /agentvm egress proxy CA/);
    assert.equal(secure.received[0].headers.authorization, 'Bearer real-api-key-value');
    assert.equal(unbound.status, 200);
    assert.equal(plain.received[0].headers.authorization, authorization);
    assert.deepEqual(
      audit.find((row) => row.action === 'egress.request' && row.details?.tls)?.details?.injected,
      ['API_KEY'],
    );
    assert.deepEqual(audit.find((row) => row.details?.port === plain.port)?.details?.withheld, [
      'API_KEY',
    ]);
    assert.ok(!JSON.stringify(audit).includes('real-api-key-value'));
  });

  it('verifies upstream certificates against the system roots unless a CA is passed in', async () => {
    const strict = new EgressProxy({ ca: brokerCa, audit: () => undefined });
    const [secret] = resolveSecrets(
      { S: { source: { env: 'K' }, hosts: [`127.0.0.1:${secure.port}`] } },
      { env: { K: 'v-value' } },
    );
    try {
      const { socketPath } = await strict.addAgent(
        'a1',
        policy([`127.0.0.1:${secure.port}`], { secrets: [secret] }),
        socketFor('a1'),
      );

      const answer = await viaConnect(socketPath, `127.0.0.1:${secure.port}`, brokerCa.certPem);

      assert.equal(answer.status, 502);
      assert.match(answer.body, /cannot reach 127\.0\.0\.1:\d+: .*certificate/i);
      assert.equal(secure.received.length, 0);
    } finally {
      await strict.close();
    }
  });

  it('swaps a secret into the header it names in a plain HTTP request when the binding allows plain HTTP', async () => {
    const [secret] = resolveSecrets(
      {
        T: {
          source: { env: 'K' },
          hosts: [`127.0.0.1:${plain.port}`],
          headers: ['X-Api-Key'],
          allowPlainHttp: true,
        },
      },
      { env: { K: 'plain-real' } },
    );
    const { socketPath } = await proxy.addAgent(
      'a1',
      policy([`127.0.0.1:${plain.port}`], { secrets: [secret] }),
      socketFor('a1'),
    );

    await viaProxy(socketPath, `http://127.0.0.1:${plain.port}/`, {
      'x-api-key': secret.placeholder,
    });

    assert.equal(plain.received[0].headers['x-api-key'], 'plain-real');
  });

  describe('who can reach the listener', () => {
    /** Connects to the unix socket from a child process, as `uid` when given; prints the outcome. */
    const connectAs = (socketPath: string, user?: string) => {
      const script = `require('net').connect(${JSON.stringify(socketPath)}).on('connect', () => { console.log('connected'); process.exit(0); }).on('error', (e) => { console.log(e.code); process.exit(0); })`;
      const command = user
        ? [
            'setpriv',
            [
              '--reuid',
              user,
              '--regid',
              user === 'nobody' ? 'nogroup' : user,
              '--clear-groups',
              process.execPath,
              '-e',
              script,
            ],
          ]
        : [process.execPath, ['-e', script]];
      const result = spawnSync(command[0] as string, command[1] as string[], {
        encoding: 'utf8',
        timeout: 10_000,
      });
      return `${result.stdout}${result.stderr}`.trim();
    };

    it('puts the listener in a 0700 directory that another uid cannot connect through (red-team finding 2)', async function () {
      const socketPath = socketFor('a1');
      await proxy.addAgent('a1', policy([`127.0.0.1:${plain.port}`]), socketPath);

      assert.equal(fs.statSync(path.dirname(socketPath)).mode & 0o777, 0o700);
      assert.equal(connectAs(socketPath), 'connected');
      if (process.getuid?.() !== 0) this.skip();

      // Only the listener's own directory may stand in the way: open up the test's parents.
      fs.chmodSync(dir, 0o711);
      fs.chmodSync(path.dirname(path.dirname(socketPath)), 0o711);
      assert.equal(connectAs(socketPath, 'nobody'), 'EACCES');

      // The same probe does get through once the directory and socket are opened to everyone.
      fs.chmodSync(path.dirname(socketPath), 0o755);
      fs.chmodSync(socketPath, 0o777);
      assert.equal(connectAs(socketPath, 'nobody'), 'connected');
    });

    it('tightens a loose existing directory and replaces a stale socket left by an earlier broker', async () => {
      const socketPath = socketFor('a1');
      fs.mkdirSync(path.dirname(socketPath), { recursive: true, mode: 0o755 });
      fs.chmodSync(path.dirname(socketPath), 0o755);
      // A listener killed outright leaves its socket file behind, as a killed broker would.
      const script = `require('net').createServer().listen(${JSON.stringify(socketPath)}, () => process.kill(process.pid, 'SIGKILL'))`;
      spawnSync(process.execPath, ['-e', script], { timeout: 10_000 });
      assert.ok(fs.lstatSync(socketPath).isSocket());

      await proxy.addAgent('a1', policy([`127.0.0.1:${plain.port}`]), socketPath);

      assert.equal(fs.statSync(path.dirname(socketPath)).mode & 0o777, 0o700);
      const answer = await viaProxy(socketPath, `http://127.0.0.1:${plain.port}/again`);
      assert.equal(answer.status, 200);
    });

    it('refuses a socket directory that belongs to another user', async function () {
      if (process.getuid?.() !== 0) this.skip();

      const socketPath = socketFor('a1');
      fs.mkdirSync(path.dirname(socketPath), { recursive: true });
      fs.chownSync(path.dirname(socketPath), 65534, 65534);
      try {
        await assert.rejects(
          proxy.addAgent('a1', policy([]), socketPath),
          /belongs to uid 65534, not to the broker's user/,
        );
      } finally {
        fs.rmSync(path.dirname(socketPath), { recursive: true, force: true });
      }
    });
  });

  describe('GitHub scopes', () => {
    const github = (scopes: string[], tokenPlaceholderEnv = 'GH') => {
      const [token] = resolveSecrets(
        { GH_TOKEN: { source: { env: tokenPlaceholderEnv }, hosts: [`127.0.0.1:${secure.port}`] } },
        { env: { [tokenPlaceholderEnv]: 'ghp_realtokenvalue000000000000000000000' } },
      );
      return { token, grant: { apiHost: `127.0.0.1:${secure.port}`, scopes, token } };
    };

    it('lets issues:read read an issue with the real token and refuses creating a label', async () => {
      const { token, grant } = github(['issues:read']);
      const { socketPath } = await proxy.addAgent(
        'a1',
        policy([], { github: grant }),
        socketFor('a1'),
      );
      const headers = { authorization: `token ${token.placeholder}` };

      const read = await viaConnect(socketPath, `127.0.0.1:${secure.port}`, brokerCa.certPem, {
        path: '/repos/octo/app/issues/1',
        headers,
      });
      const label = await viaConnect(socketPath, `127.0.0.1:${secure.port}`, brokerCa.certPem, {
        method: 'POST',
        path: '/repos/octo/app/labels',
        headers,
      });

      assert.equal(read.status, 200);
      assert.equal(
        secure.received[0].headers.authorization,
        'token ghp_realtokenvalue000000000000000000000',
      );
      assert.equal(label.status, 403);
      assert.match(label.body, /needs labels:write/);
      assert.equal(secure.received.length, 1);
      assert.deepEqual(
        audit
          .filter((row) => row.action === 'github.call')
          .map((row) => [row.decision, row.details?.method, row.details?.path]),
        [
          ['allow', 'GET', '/repos/octo/app/issues/1'],
          ['deny', 'POST', '/repos/octo/app/labels'],
        ],
      );
    });

    it('lets labels:write create a label', async () => {
      const { token, grant } = github(['labels:write']);
      const { socketPath } = await proxy.addAgent(
        'a1',
        policy([], { github: grant }),
        socketFor('a1'),
      );

      const label = await viaConnect(socketPath, `127.0.0.1:${secure.port}`, brokerCa.certPem, {
        method: 'POST',
        path: '/repos/octo/app/labels',
        headers: { authorization: `token ${token.placeholder}` },
      });

      assert.equal(label.status, 201);
    });
  });
});
