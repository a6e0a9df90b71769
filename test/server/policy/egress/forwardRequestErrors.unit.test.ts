import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { CertificateAuthority } from '../../../../server/policy/egress/CertificateAuthority';
import { forwardRequest } from '../../../../server/policy/egress/forwardRequest';

const VALUE = 'rtrealvalue-h14-5be0c7';
const PLACEHOLDER = 'agentvm-secret-K-placeholder';

describe('forwardRequest error answers (unit)', () => {
  let dir: string;
  let upstream: https.Server;
  let front: http.Server;
  let frontPort: number;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-forward-errors-'));
    const ca = await CertificateAuthority.loadOrCreate(path.join(dir, 'ca'), 'forward errors CA');
    // An upstream that learnt the value earlier and now presents it as its certificate's name.
    const cert = await ca.issueCertificate(VALUE);
    upstream = https.createServer({ cert: cert.certPem, key: cert.keyPem }, (_request, response) =>
      response.end('unreachable'),
    );
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const upstreamPort = (upstream.address() as net.AddressInfo).port;

    front = http.createServer((request, response) =>
      forwardRequest(
        request,
        response,
        { host: 'localhost', port: upstreamPort, tls: true, allowLocal: true },
        '/',
        { host: `localhost:${upstreamPort}` },
        {
          upstreamCa: [ca.certPem],
          upstreamTimeoutMs: 10_000,
          scrub: { secrets: [{ value: VALUE, placeholder: PLACEHOLDER }], decode: true },
        },
        () => undefined,
      ),
    );
    await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
    frontPort = (front.address() as net.AddressInfo).port;
  });

  after(async () => {
    upstream.closeAllConnections();
    front.closeAllConnections();
    await Promise.all([upstream, front].map((s) => new Promise((done) => s.close(done))));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('scrubs a value out of the upstream error it reports (h14: the value as a certificate name)', async () => {
    const body = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port: frontPort, path: '/', agent: false }, (response) => {
          let text = '';
          response.setEncoding('utf8');
          response.on('data', (chunk) => (text += chunk));
          response.on('end', () => resolve({ status: response.statusCode!, text }));
        })
        .on('error', reject);
    });

    assert.equal(body.status, 502);
    assert.match(body.text, /cannot reach localhost:\d+: .*certificate/);
    assert.ok(!body.text.includes(VALUE), body.text);
    assert.ok(body.text.includes(PLACEHOLDER), body.text);
  });
});
