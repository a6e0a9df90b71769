import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { AuditRecord } from '../../../../server/policy/audit/AuditLog';
import { CertificateAuthority } from '../../../../server/policy/egress/CertificateAuthority';
import { EgressProxy } from '../../../../server/policy/egress/EgressProxy';
import { startUpstream, viaProxy } from './egressTestClients';

/** An idle connection to the proxy, as a guest holding a relay open; resolves once accepted. */
async function idleConnection(socketPath: string): Promise<net.Socket> {
  const socket = net.connect(socketPath);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return socket;
}

function closedWithin(socket: net.Socket, ms: number): Promise<boolean> {
  if (socket.destroyed || socket.readableEnded) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
    socket.resume();
  });
}

describe('EgressProxy connection limit per agent (unit)', function () {
  let dir: string;
  let ca: CertificateAuthority;
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let proxy: EgressProxy;
  const audit: AuditRecord[] = [];
  const sockets: net.Socket[] = [];

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-egress-limit-'));
    ca = await CertificateAuthority.loadOrCreate(path.join(dir, 'ca'));
    upstream = await startUpstream();
  });

  after(() => {
    upstream?.server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  afterEach(async () => {
    for (const socket of sockets.splice(0)) socket.destroy();
    await proxy?.close();
  });

  it('closes connections past the limit at once, audits that, and serves again once one ends', async () => {
    proxy = new EgressProxy({
      ca,
      audit: (record) => void audit.push(record),
      maxConnectionsPerAgent: 3,
    });
    const { socketPath } = await proxy.addAgent(
      'a1',
      { actor: 'alice', allowedHosts: [`127.0.0.1:${upstream.port}`] },
      path.join(dir, 'a1', 'proxy.sock'),
    );
    for (let index = 0; index < 3; index++) sockets.push(await idleConnection(socketPath));

    const extra = net.connect(socketPath);
    extra.on('error', () => undefined);
    sockets.push(extra);
    assert.ok(await closedWithin(extra, 5_000), 'the fourth connection was closed');
    for (const held of sockets.slice(0, 3)) assert.equal(held.destroyed, false);

    const limitRows = audit.filter((row) => row.action === 'egress.connection_limit');
    assert.equal(limitRows.length, 1);
    assert.equal(limitRows[0]!.decision, 'deny');
    assert.equal(limitRows[0]!.agentId, 'a1');
    assert.deepEqual(limitRows[0]!.details, {
      limit: 3,
      refused: 1,
      reason: 'more than 3 open connections',
    });

    sockets[0]!.destroy();
    await new Promise((resolve) => setTimeout(resolve, 100));
    const served = await viaProxy(socketPath, `http://127.0.0.1:${upstream.port}/again`);
    assert.equal(served.status, 200);
  });
});
