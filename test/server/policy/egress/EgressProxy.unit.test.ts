import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import type { AuditRecord } from '../../../../server/policy/audit/AuditLog';
import { CertificateAuthority } from '../../../../server/policy/egress/CertificateAuthority';
import { EgressProxy, type AgentEgressPolicy } from '../../../../server/policy/egress/EgressProxy';
import { resolveSecrets } from '../../../../server/policy/secrets/SecretBindings';

interface Received {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** Issuer CN of the certificate the client saw, for HTTPS. */
  issuer?: string;
}

/** A test upstream on 127.0.0.1 that records what it receives and answers with JSON. */
async function startUpstream(cert?: { certPem: string; keyPem: string }) {
  const received: Received[] = [];
  const handler = (request: http.IncomingMessage, response: http.ServerResponse) => {
    request.resume();
    request.on('end', () => {
      received.push({ method: request.method!, url: request.url!, headers: request.headers });
      response.writeHead(request.method === 'POST' ? 201 : 200, {
        'content-type': 'application/json',
      });
      response.end(JSON.stringify({ ok: true, url: request.url }));
    });
  };
  const server = cert
    ? https.createServer({ cert: cert.certPem, key: cert.keyPem }, handler)
    : http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, received, port: (server.address() as net.AddressInfo).port };
}

/** A plain-HTTP proxy request: absolute URL to the proxy. */
function viaProxy(
  proxyPort: number,
  url: string,
  headers: Record<string, string> = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const request = http.request({
      host: '127.0.0.1',
      port: proxyPort,
      path: url,
      headers: { host: new URL(url).host, ...headers },
    });
    request.on('response', (response) => collect(response).then(resolve, reject));
    request.on('error', reject);
    request.end();
  });
}

/** CONNECT through the proxy, then TLS trusting `ca`, then one request. */
function viaConnect(
  proxyPort: number,
  target: string,
  ca: string,
  request: { method?: string; path?: string; headers?: Record<string, string> } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const connect = http.request({
      host: '127.0.0.1',
      port: proxyPort,
      method: 'CONNECT',
      path: target,
    });
    connect.on('error', reject);
    connect.on('connect', (response, socket) => {
      if (response.statusCode !== 200) {
        collectSocket(response.statusCode!, response.headers, socket).then(resolve, reject);
        return;
      }

      const host = target.replace(/:\d+$/, '');
      const secure = tls.connect({
        socket,
        ca,
        servername: net.isIP(host) ? undefined : host,
        host,
      });
      secure.on('error', reject);
      secure.on('secureConnect', () => {
        const issuer = String(secure.getPeerCertificate().issuer.CN);
        const inner = https.request({
          method: request.method ?? 'GET',
          path: request.path ?? '/',
          headers: { host: target, ...request.headers },
          createConnection: () => secure,
        });
        inner.on('response', (answer) =>
          collect(answer).then((result) => resolve({ ...result, issuer }), reject),
        );
        inner.on('error', reject);
        inner.end();
      });
    });
    connect.end();
  });
}

function collect(response: http.IncomingMessage): Promise<Answer> {
  return new Promise((resolve) => {
    let body = '';
    response.setEncoding('utf8');
    response.on('data', (chunk) => (body += chunk));
    response.on('end', () =>
      resolve({ status: response.statusCode!, headers: response.headers, body }),
    );
  });
}

function collectSocket(
  status: number,
  headers: http.IncomingHttpHeaders,
  socket: net.Socket,
): Promise<Answer> {
  return new Promise((resolve) => {
    let body = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk) => (body += chunk));
    socket.on('end', () => resolve({ status, headers, body }));
    socket.on('close', () => resolve({ status, headers, body }));
  });
}

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
    const { hostPort } = await proxy.addAgent('a1', policy([`127.0.0.1:${plain.port}`]));

    const answer = await viaProxy(hostPort, `http://127.0.0.1:${plain.port}/hello?x=1`);

    assert.equal(answer.status, 200);
    assert.equal(plain.received[0].url, '/hello?x=1');
    assert.deepEqual(
      audit.map((row) => [row.action, row.decision, row.agentId, row.actor, row.details?.path]),
      [['egress.request', 'allow', 'a1', 'alice', '/hello']],
    );
  });

  it('refuses a plain HTTP request to a host not on the list with a readable 403', async () => {
    const { hostPort } = await proxy.addAgent('a1', policy(['example.com']));

    const answer = await viaProxy(hostPort, `http://127.0.0.1:${plain.port}/`);

    assert.equal(answer.status, 403);
    assert.match(
      answer.body,
      /refused.*127\.0\.0\.1:\d+ is not in this agent's allowedHosts \(allowed: example\.com\)/,
    );
    assert.equal(plain.received.length, 0);
    assert.equal(audit[0].decision, 'deny');
  });

  it('tunnels CONNECT to an allowed HTTPS host untouched', async () => {
    const { hostPort } = await proxy.addAgent('a1', policy([`127.0.0.1:${secure.port}`]));

    const answer = await viaConnect(hostPort, `127.0.0.1:${secure.port}`, testCa.certPem, {
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
    const { hostPort } = await proxy.addAgent('a1', policy(['example.com']));

    const answer = await viaConnect(hostPort, `127.0.0.1:${secure.port}`, testCa.certPem);

    assert.equal(answer.status, 403);
    assert.match(String(answer.headers['x-agentvm-egress']), /not in this agent's allowedHosts/);
    assert.equal(secure.received.length, 0);
    assert.deepEqual([audit[0].action, audit[0].decision], ['egress.connect', 'deny']);
  });

  it('refuses a listed name that resolves to the host loopback', async () => {
    const { hostPort } = await proxy.addAgent('a1', policy([`localhost:${plain.port}`]));

    const answer = await viaProxy(hostPort, `http://localhost:${plain.port}/`);

    assert.equal(answer.status, 502);
    assert.match(answer.body, /host-local address/);
    assert.equal(plain.received.length, 0);
  });

  it('applies an allowlist change to a running agent', async () => {
    const { hostPort } = await proxy.addAgent('a1', policy([`127.0.0.1:${plain.port}`]));
    assert.equal((await viaProxy(hostPort, `http://127.0.0.1:${plain.port}/`)).status, 200);

    proxy.setAllowedHosts('a1', []);

    assert.equal((await viaProxy(hostPort, `http://127.0.0.1:${plain.port}/`)).status, 403);
  });

  it('keeps agents apart: each listener applies its own agent policy', async () => {
    const first = await proxy.addAgent('a1', policy([`127.0.0.1:${plain.port}`]));
    const second = await proxy.addAgent('a2', policy([]));

    assert.equal((await viaProxy(first.hostPort, `http://127.0.0.1:${plain.port}/`)).status, 200);
    assert.equal((await viaProxy(second.hostPort, `http://127.0.0.1:${plain.port}/`)).status, 403);
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
    const { hostPort } = await proxy.addAgent(
      'a1',
      policy([`127.0.0.1:${secure.port}`, `127.0.0.1:${plain.port}`], { secrets: [secret] }),
    );
    const authorization = `Bearer ${secret.placeholder}`;

    const bound = await viaConnect(hostPort, `127.0.0.1:${secure.port}`, brokerCa.certPem, {
      headers: { authorization },
    });
    const unbound = await viaProxy(hostPort, `http://127.0.0.1:${plain.port}/`, { authorization });

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
      const { hostPort } = await strict.addAgent(
        'a1',
        policy([`127.0.0.1:${secure.port}`], { secrets: [secret] }),
      );

      const answer = await viaConnect(hostPort, `127.0.0.1:${secure.port}`, brokerCa.certPem);

      assert.equal(answer.status, 502);
      assert.match(answer.body, /cannot reach 127\.0\.0\.1:\d+: .*certificate/i);
      assert.equal(secure.received.length, 0);
    } finally {
      await strict.close();
    }
  });

  it('swaps a secret into a plain HTTP request to its bound host', async () => {
    const [secret] = resolveSecrets(
      { T: { source: { env: 'K' }, hosts: [`127.0.0.1:${plain.port}`] } },
      { env: { K: 'plain-real' } },
    );
    const { hostPort } = await proxy.addAgent(
      'a1',
      policy([`127.0.0.1:${plain.port}`], { secrets: [secret] }),
    );

    await viaProxy(hostPort, `http://127.0.0.1:${plain.port}/`, {
      'x-api-key': secret.placeholder,
    });

    assert.equal(plain.received[0].headers['x-api-key'], 'plain-real');
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
      const { hostPort } = await proxy.addAgent('a1', policy([], { github: grant }));
      const headers = { authorization: `token ${token.placeholder}` };

      const read = await viaConnect(hostPort, `127.0.0.1:${secure.port}`, brokerCa.certPem, {
        path: '/repos/octo/app/issues/1',
        headers,
      });
      const label = await viaConnect(hostPort, `127.0.0.1:${secure.port}`, brokerCa.certPem, {
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
      const { hostPort } = await proxy.addAgent('a1', policy([], { github: grant }));

      const label = await viaConnect(hostPort, `127.0.0.1:${secure.port}`, brokerCa.certPem, {
        method: 'POST',
        path: '/repos/octo/app/labels',
        headers: { authorization: `token ${token.placeholder}` },
      });

      assert.equal(label.status, 201);
    });
  });
});
