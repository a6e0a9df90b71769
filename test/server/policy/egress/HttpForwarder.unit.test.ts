import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import type { ProfileSecret } from '../../../../protocol/policy';
import { CertificateAuthority } from '../../../../server/policy/egress/CertificateAuthority';
import {
  compileEgressPolicy,
  type EgressAgent,
} from '../../../../server/policy/egress/EgressAgent';
import type { AgentEgressPolicy } from '../../../../server/policy/egress/EgressProxy';
import { HttpForwarder } from '../../../../server/policy/egress/HttpForwarder';
import { resolveSecrets } from '../../../../server/policy/secrets/SecretBindings';

const VALUE = 'RTREALVALUE-s3cr3t-7d41c9';

interface Answer {
  status: number;
  statusMessage: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

interface AuditRow {
  action: string;
  decision: string;
  details: Record<string, unknown>;
}

/**
 * The red team's echo server: answers with the request line and headers, `/dir` redirects to
 * `http://<Host>/dir/`, `/cors` reflects Origin; plus answers that carry what arrived in
 * Authorization in a header, split across two body chunks, or gzipped whatever was asked for;
 * and the second red team's: what arrived in Authorization in the status line's reason phrase or
 * in a header's name, and the echo under `Transfer-Encoding: gzip, chunked`.
 */
function echo(received: http.IncomingHttpHeaders[]) {
  return (request: http.IncomingMessage, response: http.ServerResponse) => {
    received.push(request.headers);
    const authorization = request.headers.authorization ?? '';
    const echoed = JSON.stringify({
      line: `${request.method} ${request.url}`,
      headers: request.headers,
    });
    switch (request.url) {
      case '/dir':
        response.writeHead(301, { location: `http://${request.headers.host}/dir/` });
        return response.end();
      case '/cors':
        response.writeHead(200, { 'access-control-allow-origin': request.headers.origin ?? '*' });
        return response.end('cors\n');
      case '/header':
        response.writeHead(200, { 'x-seen-authorization': authorization });
        return response.end('seen\n');
      case '/split': {
        const cut = Math.floor(authorization.length - 8);
        response.writeHead(200, { 'content-type': 'text/plain' });
        response.write(`seen: ${authorization.slice(0, cut)}`);
        setTimeout(() => response.end(`${authorization.slice(cut)}\n`), 50);
        return;
      }
      case '/gzip':
        response.writeHead(200, { 'content-encoding': 'gzip' });
        return response.end(zlib.gzipSync(echoed));
      case '/compress':
        response.writeHead(200, { 'content-encoding': 'compress' });
        return response.end(echoed);
      case '/reason':
        response.writeHead(200, `OK ${authorization}`);
        return response.end('reason\n');
      case '/header-name':
        // The credential part of `Bearer <credential>`, as a header name: x-<credential>.
        response.writeHead(200, { [`x-${authorization.split(' ')[1]}`]: 'seen' });
        return response.end('named\n');
      case '/transfer-gzip':
        // Node chunks a body whose Transfer-Encoding ends in chunked and leaves the rest to us.
        response.writeHead(200, { 'transfer-encoding': 'gzip, chunked' });
        return response.end(zlib.gzipSync(echoed));
      case '/content-coding-name':
        // h14: what arrived in Authorization as a content coding's name, then a transfer one's.
        response.writeHead(200, { 'content-encoding': authorization.split(' ')[1] });
        return response.end(echoed);
      case '/transfer-coding-name':
        response.writeHead(200, { 'transfer-encoding': `${authorization.split(' ')[1]}, chunked` });
        return response.end(echoed);
      default:
        response.writeHead(200, { 'content-type': 'application/json' });
        return response.end(echoed);
    }
  };
}

async function listen(server: http.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as net.AddressInfo).port;
}

function collect(request: http.ClientRequest): Promise<Answer> {
  return new Promise((resolve, reject) => {
    request.on('response', (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk) => (body += chunk));
      response.on('end', () =>
        resolve({
          status: response.statusCode!,
          statusMessage: response.statusMessage ?? '',
          headers: response.headers,
          body,
        }),
      );
    });
    request.on('error', reject);
    request.end();
  });
}

describe('HttpForwarder (unit)', function () {
  let dir: string;
  let brokerCa: CertificateAuthority;
  let testCa: CertificateAuthority;
  const received: http.IncomingHttpHeaders[] = [];
  let audit: AuditRow[] = [];
  const servers: http.Server[] = [];
  let plainPort = 0;
  let securePort = 0;
  let agent: EgressAgent;
  let forwarder: HttpForwarder;
  let plainFront = 0;
  let tlsFront = 0;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-forwarder-'));
    brokerCa = await CertificateAuthority.loadOrCreate(path.join(dir, 'broker-ca'));
    testCa = await CertificateAuthority.loadOrCreate(
      path.join(dir, 'test-ca'),
      'forwarder test CA',
    );
    const upstreamCert = await testCa.issueCertificate('127.0.0.1');
    const frontCert = await brokerCa.issueCertificate('127.0.0.1');

    const plain = http.createServer(echo(received));
    const secure = https.createServer(
      { cert: upstreamCert.certPem, key: upstreamCert.keyPem },
      echo(received),
    );
    const front = http.createServer((request, response) =>
      forwarder.onPlainRequest(agent, request, response),
    );
    // Stands in for the proxy's terminated CONNECT: every request here was headed for `secure`.
    const tlsFrontServer = https.createServer(
      { cert: frontCert.certPem, key: frontCert.keyPem },
      (request, response) =>
        forwarder.onTlsRequest(agent, { host: '127.0.0.1', port: securePort }, request, response),
    );
    servers.push(plain, secure, front, tlsFrontServer);
    plainPort = await listen(plain);
    securePort = await listen(secure);
    plainFront = await listen(front);
    tlsFront = await listen(tlsFrontServer);
  });

  after(async () => {
    for (const server of servers) server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  beforeEach(() => {
    received.length = 0;
    audit = [];
  });

  /** Makes the agent under test: allowed to reach both upstreams, with secret K bound as given. */
  function useAgent(secret: Partial<ProfileSecret> | null) {
    const bindings = secret
      ? resolveSecrets(
          {
            K: {
              source: { env: 'V' },
              hosts: [`127.0.0.1:${securePort}`, `127.0.0.1:${plainPort}`],
              ...secret,
            },
          },
          { env: { V: VALUE } },
        )
      : [];
    const policy: AgentEgressPolicy = {
      actor: 'alice',
      allowedHosts: [`127.0.0.1:${securePort}`, `127.0.0.1:${plainPort}`],
      secrets: bindings,
    };
    agent = {
      id: 'a1',
      ...compileEgressPolicy(policy),
      sockets: new Set(),
    } as unknown as EgressAgent;
    forwarder = new HttpForwarder(
      { ca: brokerCa, upstreamCa: [testCa.certPem] },
      (_agent, action, decision, details) => audit.push({ action, decision, details }),
    );
    return bindings[0]?.placeholder ?? '';
  }

  /** A request inside the (stand-in) TLS tunnel to the secure upstream. */
  function overTls(requestPath: string, headers: Record<string, string> = {}): Promise<Answer> {
    return collect(
      https.request({
        host: '127.0.0.1',
        port: tlsFront,
        path: requestPath,
        ca: brokerCa.certPem,
        // The client would check the certificate against a forged Host header; the CA still counts.
        checkServerIdentity: () => undefined,
        agent: false,
        headers: { host: `127.0.0.1:${securePort}`, ...headers },
      }),
    );
  }

  /** A plain proxy request (absolute URL) to the plain upstream. */
  function plainProxy(requestPath: string, headers: Record<string, string> = {}): Promise<Answer> {
    return collect(
      http.request({
        host: '127.0.0.1',
        port: plainFront,
        path: `http://127.0.0.1:${plainPort}${requestPath}`,
        agent: false,
        headers: { host: `127.0.0.1:${plainPort}`, ...headers },
      }),
    );
  }

  const shows = (answer: Answer) => JSON.stringify(answer);

  it('sends the value upstream but shows the guest the placeholder when Authorization is echoed', async () => {
    const placeholder = useAgent({});

    const answer = await overTls('/echo', { authorization: `Bearer ${placeholder}` });

    assert.equal(received[0].authorization, `Bearer ${VALUE}`);
    assert.equal(answer.status, 200);
    assert.equal(JSON.parse(answer.body).headers.authorization, `Bearer ${placeholder}`);
    assert.ok(!shows(answer).includes(VALUE));
    assert.deepEqual(audit[0].details.injected, ['K']);
  });

  it('never puts the value in Origin, so a reflected Origin carries the placeholder', async () => {
    const placeholder = useAgent({});

    const answer = await overTls('/cors', { origin: `http://${placeholder}` });

    assert.equal(received[0].origin, `http://${placeholder}`);
    assert.equal(answer.headers['access-control-allow-origin'], `http://${placeholder}`);
    assert.deepEqual(audit[0].details.withheld, ['K']);
    assert.match(
      String((audit[0].details.withheldReasons as Record<string, string>).K),
      /origin header/,
    );
  });

  it('refuses a Host header naming another server (the placeholder included) with a 400, audited', async () => {
    const placeholder = useAgent({});

    const forged = await overTls('/dir', { host: placeholder });
    const other = await plainProxy('/f', { host: `127.0.0.1:${securePort}` });
    const honest = await overTls('/dir');

    assert.equal(forged.status, 400);
    assert.match(forged.body, /the Host header ".*" does not match the target 127\.0\.0\.1:\d+/);
    assert.equal(other.status, 400);
    assert.equal(received.length, 1);
    assert.equal(honest.headers.location, `http://127.0.0.1:${securePort}/dir/`);
    assert.deepEqual(
      audit.map((row) => [row.action, row.decision]),
      [
        ['egress.request', 'deny'],
        ['egress.request', 'deny'],
        ['egress.request', 'allow'],
      ],
    );
    assert.match(String(audit[1].details.reason), /does not match the target 127\.0\.0\.1:\d+/);
  });

  it('sends the target as Host when a plain request names the proxy itself, as Node clients do', async () => {
    useAgent(null);

    const answer = await plainProxy('/dir', { host: '10.0.2.100:3128' });

    assert.equal(answer.status, 301);
    assert.equal(received[0].host, `127.0.0.1:${plainPort}`);
    assert.equal(answer.headers.location, `http://127.0.0.1:${plainPort}/dir/`);
  });

  it('replaces the value in response headers with the placeholder', async () => {
    const placeholder = useAgent({});

    const answer = await overTls('/header', { authorization: `Bearer ${placeholder}` });

    assert.equal(answer.headers['x-seen-authorization'], `Bearer ${placeholder}`);
  });

  it('scrubs a value the upstream sends split across two body chunks', async () => {
    const placeholder = useAgent({});

    const answer = await overTls('/split', { authorization: `Bearer ${placeholder}` });

    assert.equal(answer.body, `seen: Bearer ${placeholder}\n`);
    assert.equal(answer.headers['content-length'], undefined);
  });

  it('asks for an uncompressed answer, and decodes a gzipped one anyway to scrub it', async () => {
    const placeholder = useAgent({});

    const answer = await overTls('/gzip', {
      authorization: `Bearer ${placeholder}`,
      'accept-encoding': 'gzip, br',
    });

    assert.equal(received[0]['accept-encoding'], 'identity');
    assert.equal(answer.headers['content-encoding'], undefined);
    assert.equal(JSON.parse(answer.body).headers.authorization, `Bearer ${placeholder}`);
  });

  it('refuses an answer in an encoding it cannot decode from a host that may hold a value', async () => {
    const placeholder = useAgent({});

    const answer = await overTls('/compress', { authorization: `Bearer ${placeholder}` });

    assert.equal(answer.status, 502);
    assert.match(answer.body, /content-encoding compress/);
    assert.ok(!answer.body.includes(VALUE));
  });

  it('scrubs the reason phrase of the status line, over TLS and plain HTTP (red team 2, finding 1)', async () => {
    const placeholder = useAgent({ allowPlainHttp: true });
    const authorization = `Bearer ${placeholder}`;

    const secure = await overTls('/reason', { authorization });
    const plain = await plainProxy('/reason', { authorization });

    assert.equal(received[0].authorization, `Bearer ${VALUE}`);
    assert.equal(received[1].authorization, `Bearer ${VALUE}`);
    assert.equal(secure.statusMessage, `OK Bearer ${placeholder}`);
    assert.equal(plain.statusMessage, `OK Bearer ${placeholder}`);
  });

  it('shows an echoed Basic credential as the guest encoded it, not re-encoded with the value (red team 2, finding 2)', async () => {
    const placeholder = useAgent({});
    const sent = 'Basic ' + Buffer.from(`x:${placeholder}`).toString('base64');
    const upstreamForm = Buffer.from(`x:${VALUE}`).toString('base64');

    const echoed = await overTls('/echo', { authorization: sent });
    const header = await overTls('/header', { authorization: sent });
    const reason = await overTls('/reason', { authorization: sent });

    assert.equal(received[0].authorization, `Basic ${upstreamForm}`);
    assert.equal(JSON.parse(echoed.body).headers.authorization, sent);
    assert.equal(header.headers['x-seen-authorization'], sent);
    assert.equal(reason.statusMessage, `OK ${sent}`);
    for (const answer of [echoed, header, reason]) {
      assert.ok(!shows(answer).includes(upstreamForm), shows(answer));
    }
  });

  it('drops a response header whose name holds the value (red team 2, finding 3)', async () => {
    const placeholder = useAgent({});

    const answer = await overTls('/header-name', { authorization: `Bearer ${placeholder}` });

    assert.equal(received[0].authorization, `Bearer ${VALUE}`);
    assert.equal(answer.status, 200);
    assert.equal(answer.body, 'named\n');
    // Node lower-cases header names: the value arrives as x-rtrealvalue-…
    assert.ok(!shows(answer).toLowerCase().includes(VALUE.toLowerCase()), shows(answer));
  });

  it('refuses an answer with a transfer-coding other than chunked (red team 2, finding 4: gzip, chunked)', async () => {
    const placeholder = useAgent({});

    const answer = await overTls('/transfer-gzip', { authorization: `Bearer ${placeholder}` });

    assert.equal(received[0].authorization, `Bearer ${VALUE}`);
    assert.equal(answer.status, 502);
    assert.match(answer.body, /transfer-encoding gzip/);
    assert.match(String(answer.headers['x-agentvm-egress']), /transfer-encoding gzip/);
  });

  it('does not name a coding it refuses when the name is not a registered one (h14: the value as a coding name)', async () => {
    const placeholder = useAgent({});
    const authorization = `Bearer ${placeholder}`;

    const content = await overTls('/content-coding-name', { authorization });
    const transfer = await overTls('/transfer-coding-name', { authorization });

    assert.equal(received[0].authorization, `Bearer ${VALUE}`);
    for (const answer of [content, transfer]) {
      assert.equal(answer.status, 502);
      assert.match(answer.body, /-encoding of an unregistered name \(\d+ characters, not shown\)/);
      assert.ok(!shows(answer).toLowerCase().includes(VALUE.toLowerCase()), shows(answer));
    }
  });

  it('withholds the value over plain HTTP and audits why', async () => {
    const placeholder = useAgent({});

    const answer = await plainProxy('/echo', { authorization: `Bearer ${placeholder}` });

    assert.equal(answer.status, 200);
    assert.equal(received[0].authorization, `Bearer ${placeholder}`);
    assert.deepEqual([audit[0].details.injected, audit[0].details.withheld], [[], ['K']]);
    assert.match(
      String((audit[0].details.withheldReasons as Record<string, string>).K),
      /plain HTTP/,
    );
  });

  it('injects over plain HTTP when the binding sets allowPlainHttp, and still scrubs the echo', async () => {
    const placeholder = useAgent({ allowPlainHttp: true });

    const answer = await plainProxy('/echo', { authorization: `Bearer ${placeholder}` });

    assert.equal(received[0].authorization, `Bearer ${VALUE}`);
    assert.equal(received[0].host, `127.0.0.1:${plainPort}`);
    assert.ok(!shows(answer).includes(VALUE));
    assert.ok(answer.body.includes(placeholder));
  });

  it('passes answers untouched for an agent with no secrets', async () => {
    useAgent(null);

    const answer = await plainProxy('/gzip', { 'accept-encoding': 'gzip' });

    assert.equal(received[0]['accept-encoding'], 'gzip');
    assert.equal(answer.headers['content-encoding'], 'gzip');
  });
});
