import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { AuditRecord } from '../../../../server/policy/audit/AuditLog';
import { CertificateAuthority } from '../../../../server/policy/egress/CertificateAuthority';
import { EgressProxy } from '../../../../server/policy/egress/EgressProxy';

/** Everything the proxy sends back on a raw connection after `request`, until it closes. */
function exchange(socketPath: string, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    let text = '';
    socket.on('data', (chunk) => (text += chunk.toString('latin1')));
    socket.on('error', reject);
    socket.on('close', () => resolve(text));
    socket.write(request);
  });
}

describe('EgressProxy malformed requests (unit)', function () {
  let dir: string;
  let proxy: EgressProxy;
  let socketPath: string;
  const audit: AuditRecord[] = [];

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-egress-malformed-'));
    const ca = await CertificateAuthority.loadOrCreate(path.join(dir, 'ca'));
    proxy = new EgressProxy({ ca, audit: (record) => void audit.push(record) });
    ({ socketPath } = await proxy.addAgent(
      'a1',
      { actor: 'alice', allowedHosts: ['example.com'] },
      path.join(dir, 'a1', 'proxy.sock'),
    ));
  });

  after(async () => {
    await proxy.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('answers headers over the size limit with 431 and the reason, not a silent close (h14: a 20 KB header)', async () => {
    const answer = await exchange(
      socketPath,
      `GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
    );

    assert.match(answer, /^HTTP\/1\.1 431 /);
    assert.match(answer, /X-Agentvm-Egress: the request's headers exceed \d+ bytes/);
  });

  it('answers a request that is not HTTP with 400 naming the parse error (h14: "HELLO")', async () => {
    const answer = await exchange(socketPath, 'HELLO\r\n\r\n');

    assert.match(answer, /^HTTP\/1\.1 400 /);
    assert.match(answer, /not valid HTTP\/1\.1 \(HPE_INVALID_METHOD/);
  });

  it('answers Content-Length with Transfer-Encoding (a smuggling attempt) with 400, sending nothing on', async () => {
    const answer = await exchange(
      socketPath,
      'POST http://example.com/ HTTP/1.1\r\nHost: example.com\r\nContent-Length: 4\r\n' +
        'Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    );

    assert.match(answer, /^HTTP\/1\.1 400 /);
    assert.deepEqual(audit, []);
  });
});
