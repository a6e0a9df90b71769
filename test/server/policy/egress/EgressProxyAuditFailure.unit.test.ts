import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CertificateAuthority } from '../../../../server/policy/egress/CertificateAuthority';
import { EgressProxy } from '../../../../server/policy/egress/EgressProxy';
import { startUpstream, viaConnect, viaProxy } from './egressTestClients';

/** What better-sqlite3 throws when the audit log's file system is full. */
function diskFull(): Error {
  return Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
}

describe('EgressProxy when its audit log cannot be written (unit)', function () {
  let dir: string;
  let ca: CertificateAuthority;
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let proxy: EgressProxy;
  let failing: boolean;
  /** Only deny rows fail to be written (the allow row of the same request goes through). */
  let failingDenials: boolean;
  const errors: string[] = [];

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-egress-audit-'));
    ca = await CertificateAuthority.loadOrCreate(path.join(dir, 'ca'));
    upstream = await startUpstream();
  });

  after(() => {
    upstream?.server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  beforeEach(() => {
    failing = true;
    failingDenials = false;
    errors.length = 0;
    upstream.received.length = 0;
    const log = {
      error: (event: string) => void errors.push(event),
      warn: () => undefined,
      info: () => undefined,
      debug: () => undefined,
    };
    proxy = new EgressProxy({
      ca,
      audit: (record) => {
        if (failing || (failingDenials && record.decision === 'deny')) throw diskFull();
      },
      log: log as never,
    });
  });

  afterEach(() => proxy.close());

  it('refuses an allowed plain request it cannot audit, sends nothing upstream, and goes on serving', async () => {
    const { socketPath } = await proxy.addAgent(
      'a1',
      { actor: 'alice', allowedHosts: [`127.0.0.1:${upstream.port}`] },
      path.join(dir, 's1', 'proxy.sock'),
    );
    const url = `http://127.0.0.1:${upstream.port}/x`;

    const refused = await viaProxy(socketPath, url);
    assert.equal(refused.status, 503);
    assert.match(refused.body, /cannot write its audit log/);
    assert.equal(upstream.received.length, 0);
    assert.deepEqual(errors, ['egress.handler_failed']);

    failing = false;
    const served = await viaProxy(socketPath, url);
    assert.equal(served.status, 200);
    assert.equal(upstream.received.length, 1);
  });

  it('refuses a CONNECT it cannot audit, whether allowed or denied, without ending the process', async () => {
    const { socketPath } = await proxy.addAgent(
      'a2',
      { actor: 'alice', allowedHosts: [`127.0.0.1:${upstream.port}`] },
      path.join(dir, 's2', 'proxy.sock'),
    );

    const allowed = await viaConnect(socketPath, `127.0.0.1:${upstream.port}`, ca.certPem);
    const denied = await viaConnect(socketPath, 'example.invalid:443', ca.certPem);
    assert.deepEqual([allowed.status, denied.status], [503, 503]);
    assert.match(String(allowed.headers['x-agentvm-egress']), /cannot write its audit log/);
    assert.equal(upstream.received.length, 0);
  });

  it('refuses a request to a name resolving to loopback when its deny row cannot be written, without ending the process', async () => {
    failing = false;
    failingDenials = true;
    const { socketPath } = await proxy.addAgent(
      'a3',
      { actor: 'alice', allowedHosts: [`localhost:${upstream.port}`] },
      path.join(dir, 's3', 'proxy.sock'),
    );

    const plain = await viaProxy(socketPath, `http://localhost:${upstream.port}/x`);
    const tunnel = await viaConnect(socketPath, `localhost:${upstream.port}`, ca.certPem);

    assert.equal(plain.status, 502);
    assert.match(plain.body, /loopback address/);
    assert.equal(tunnel.status, 503);
    assert.equal(upstream.received.length, 0);
    assert.deepEqual(errors, ['egress.handler_failed', 'egress.handler_failed']);
  });
});
