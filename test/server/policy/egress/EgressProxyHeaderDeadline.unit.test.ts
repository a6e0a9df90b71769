import assert from 'node:assert/strict';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import type { AuditRecord } from '../../../../server/policy/audit/AuditLog';
import { CertificateAuthority } from '../../../../server/policy/egress/CertificateAuthority';
import { EgressProxy } from '../../../../server/policy/egress/EgressProxy';
import { resolveSecrets } from '../../../../server/policy/secrets/SecretBindings';
import { closesWithin, startUpstream } from './egressTestClients';

/** The deadline the proxy under test gives request headers; the guest's idle timeout stays 120 s. */
const HEADERS_TIMEOUT_MS = 200;

/** Bytes a trickling guest sends at most before the test gives up waiting for an answer. */
const MAX_TRICKLED_BYTES = 200;

/** A raw connection to the proxy that has sent `text`, once it is accepted. */
async function rawConnection(socketPath: string, text: string): Promise<net.Socket> {
  const socket = net.connect(socketPath);
  socket.on('error', () => undefined);
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write(text);
  return socket;
}

/** A TLS connection through an inspected CONNECT tunnel, trusting the broker's CA. */
async function inspectedTunnel(socketPath: string, target: string, ca: string) {
  const raw = await rawConnection(
    socketPath,
    `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`,
  );
  const established = await new Promise<string>((resolve) =>
    raw.once('data', (chunk) => resolve(String(chunk))),
  );
  assert.match(established, /^HTTP\/1\.1 200 /);

  const secure = tls.connect({ socket: raw, ca, host: '127.0.0.1' });
  secure.on('error', () => undefined);
  await new Promise((resolve) => secure.once('secureConnect', resolve));
  return secure;
}

/**
 * Writes `head`, then `byte` every 20 ms (a guest that never finishes its headers, yet is never
 * idle), until the proxy answers or closes; resolves with what it answered, or with '' when it let
 * {@link MAX_TRICKLED_BYTES} bytes through without a word.
 */
function trickle(socket: net.Socket, head: string, byte = 'a'): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    let sent = 0;
    socket.write(head);
    const timer = setInterval(() => {
      if (sent++ < MAX_TRICKLED_BYTES) return void socket.write(byte);

      clearInterval(timer);
      resolve(text);
    }, 20);
    socket.on('data', (chunk) => (text += chunk.toString('latin1')));
    socket.on('close', () => {
      clearInterval(timer);
      resolve(text);
    });
  });
}

/** Reads `socket` until what it received matches `complete`, or it closes. */
function readUntil(socket: net.Socket, complete: RegExp): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    const onData = (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (!complete.test(text)) return;

      socket.off('data', onData);
      resolve(text);
    };
    socket.on('data', onData);
    socket.once('close', () => resolve(text));
  });
}

/** A TLS ClientHello, as a client sends it to begin a handshake. */
async function clientHello(): Promise<Buffer> {
  const catcher = net.createServer();
  await new Promise<void>((resolve) => catcher.listen(0, '127.0.0.1', resolve));
  const caught = new Promise<Buffer>((resolve) =>
    catcher.once('connection', (socket) =>
      socket.once('data', (chunk) => {
        socket.destroy();
        resolve(chunk);
      }),
    ),
  );
  const client = tls.connect({
    port: (catcher.address() as net.AddressInfo).port,
    host: '127.0.0.1',
  });
  client.on('error', () => undefined);
  const hello = await caught;
  client.destroy();
  catcher.close();
  return hello;
}

describe('EgressProxy deadline for request headers (unit)', function () {
  let dir: string;
  let brokerCa: CertificateAuthority;
  let upstream: https.Server;
  let target: string;
  let plain: Awaited<ReturnType<typeof startUpstream>>;
  let proxy: EgressProxy;
  let socketPath: string;
  let received: string[];
  let audit: AuditRecord[];
  const sockets: net.Socket[] = [];

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-egress-headers-'));
    brokerCa = await CertificateAuthority.loadOrCreate(path.join(dir, 'broker-ca'));
    const testCa = await CertificateAuthority.loadOrCreate(path.join(dir, 'test-ca'), 'test CA');
    const cert = await testCa.issueCertificate('127.0.0.1');
    // Answers /slow only after several header deadlines have passed.
    upstream = https.createServer({ cert: cert.certPem, key: cert.keyPem }, (request, response) => {
      received.push(request.url ?? '');
      const delayMs = request.url === '/slow' ? HEADERS_TIMEOUT_MS * 3 : 0;
      setTimeout(() => response.end(`answer ${request.url}\n`), delayMs);
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    target = `127.0.0.1:${(upstream.address() as net.AddressInfo).port}`;
    plain = await startUpstream();

    // A secret bound to the upstream makes the proxy terminate TLS on tunnels to it.
    const [secret] = resolveSecrets(
      { K: { source: { env: 'V' }, hosts: [target] } },
      { env: { V: 'value' } },
    );
    proxy = new EgressProxy({
      ca: brokerCa,
      audit: (record) => void audit.push(record),
      upstreamCa: [testCa.certPem],
      guestHeadersTimeoutMs: HEADERS_TIMEOUT_MS,
    });
    ({ socketPath } = await proxy.addAgent(
      'a1',
      { actor: 'alice', allowedHosts: [target, `127.0.0.1:${plain.port}`], secrets: [secret] },
      path.join(dir, 'a1', 'proxy.sock'),
    ));
  });

  after(async () => {
    for (const socket of sockets) socket.destroy();
    await proxy.close();
    upstream.closeAllConnections();
    upstream.close();
    plain.server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  beforeEach(() => {
    received = [];
    audit = [];
    plain.received.length = 0;
  });

  it('answers 408 with the reason to headers trickled one byte at a time inside an inspected tunnel, and audits it (h17)', async () => {
    const secure = await inspectedTunnel(socketPath, target, brokerCa.certPem);
    sockets.push(secure);

    const answer = await trickle(secure, `GET / HTTP/1.1\r\nHost: ${target}\r\nX-Slow: `);

    assert.match(answer, /^HTTP\/1\.1 408 /);
    assert.match(
      answer,
      new RegExp(
        `X-Agentvm-Egress: the request's headers did not all arrive within ${HEADERS_TIMEOUT_MS} ms`,
      ),
    );
    assert.deepEqual(received, []);
    const [host, port] = target.split(':');
    assert.deepEqual(
      audit
        .filter((row) => row.decision === 'deny')
        .map((row) => [row.action, row.details?.host, row.details?.port, row.details?.reason]),
      [
        [
          'egress.request',
          host,
          Number(port),
          `the request's headers did not all arrive within ${HEADERS_TIMEOUT_MS} ms`,
        ],
      ],
    );
  });

  it('keeps the deadline off while an answer is on its way, and sets it again for the next request on the connection', async () => {
    const secure = await inspectedTunnel(socketPath, target, brokerCa.certPem);
    sockets.push(secure);

    // The proxy scrubs answers from a host with a bound secret, so this one comes chunked.
    const answered = readUntil(secure, /\r\n0\r\n\r\n$/);
    secure.write(`GET /slow HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
    assert.match(await answered, /^HTTP\/1\.1 200 [^]*low\n\r\n0\r\n\r\n$/);

    const answer = await trickle(secure, `GET /next HTTP/1.1\r\nHost: ${target}\r\nX-Slow: `);
    assert.match(answer, /^HTTP\/1\.1 408 /);
    assert.deepEqual(received, ['/slow']);
  });

  it('closes an inspected tunnel whose TLS handshake has not finished by the deadline', async () => {
    const hello = await clientHello();
    const raw = await rawConnection(
      socketPath,
      `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`,
    );
    sockets.push(raw);
    await new Promise((resolve) => raw.once('data', resolve));

    // All of the hello but its last byte: the handshake can neither finish nor fail.
    raw.write(hello.subarray(0, hello.length - 1));

    assert.equal(await closesWithin(raw, MAX_TRICKLED_BYTES * 20), true);
    assert.deepEqual(received, []);
    assert.match(String(audit.at(-1)?.details?.reason), /TLS handshake did not finish within/);
  });

  it('answers 408 to headers trickled to the plain listener past the same deadline', async () => {
    const socket = await rawConnection(socketPath, '');
    sockets.push(socket);

    const answer = await trickle(
      socket,
      `GET http://${target}/ HTTP/1.1\r\nHost: ${target}\r\nX-Slow: `,
    );

    assert.match(answer, /^HTTP\/1\.1 408 /);
    assert.deepEqual(received, []);
  });

  it('answers 408 to blank lines trickled after an answer on a kept-alive plain connection (h17: Node never started its clock)', async () => {
    const upstream = `127.0.0.1:${plain.port}`;
    const socket = await rawConnection(socketPath, '');
    sockets.push(socket);

    // Chunked: the proxy scrubs every answer for an agent with a secret.
    const answered = readUntil(socket, /\r\n0\r\n\r\n$/);
    socket.write(`GET http://${upstream}/first HTTP/1.1\r\nHost: ${upstream}\r\n\r\n`);
    assert.match(await answered, /^HTTP\/1\.1 200 /);

    const answer = await trickle(socket, '', '\r\n');
    assert.match(answer, /^HTTP\/1\.1 408 /);
    assert.equal(plain.received.length, 1);
    assert.deepEqual(
      audit.filter((row) => row.decision === 'deny').map((row) => row.details?.reason),
      [`the request's headers did not all arrive within ${HEADERS_TIMEOUT_MS} ms`],
    );
  });

  it('leaves a spliced tunnel alone past the deadline: its bytes are no longer HTTP headers to the proxy', async () => {
    const upstream = `127.0.0.1:${plain.port}`;
    const socket = await rawConnection(
      socketPath,
      `CONNECT ${upstream} HTTP/1.1\r\nHost: ${upstream}\r\n\r\n`,
    );
    sockets.push(socket);
    assert.match(await readUntil(socket, /\r\n\r\n$/), /^HTTP\/1\.1 200 /);
    await new Promise((resolve) => setTimeout(resolve, HEADERS_TIMEOUT_MS * 3));

    const answered = readUntil(socket, /\r\n0\r\n\r\n$/);
    socket.write(`GET /through HTTP/1.1\r\nHost: ${upstream}\r\n\r\n`);
    assert.match(await answered, /^HTTP\/1\.1 200 [^]*"url":"\/through"/);
    assert.deepEqual(
      audit.filter((row) => row.decision === 'deny'),
      [],
    );
  });
});
