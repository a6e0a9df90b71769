import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { AuditRecord } from '../../../../server/policy/audit/AuditLog';
import { CertificateAuthority } from '../../../../server/policy/egress/CertificateAuthority';
import { EgressProxy } from '../../../../server/policy/egress/EgressProxy';
import { closesWithin } from './egressTestClients';

/** A loopback TCP server that echoes every byte; keeps its server-side sockets for inspection. */
async function startEcho() {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, sockets, port: (server.address() as net.AddressInfo).port };
}

/** Opens a CONNECT tunnel through the proxy's unix socket; resolves with the raw socket. */
function openTunnel(proxySocket: string, target: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const request = http.request({
      socketPath: proxySocket,
      agent: false,
      method: 'CONNECT',
      path: target,
    });
    request.on('error', reject);
    request.on('connect', (response, socket) => {
      if (response.statusCode === 200) return resolve(socket);

      socket.destroy();
      reject(new Error(`CONNECT ${target} answered ${response.statusCode}`));
    });
    request.end();
  });
}

/** Sends `text` through the tunnel and waits for the echo. */
function roundTrip(socket: net.Socket, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let received = '';
    const onData = (chunk: Buffer) => {
      received += chunk.toString('utf8');
      if (received.length < text.length) return;

      socket.off('data', onData);
      resolve(received);
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.write(text);
  });
}

describe('ConnectHandler (unit)', function () {
  let dir: string;
  let ca: CertificateAuthority;
  let proxy: EgressProxy;
  let audit: AuditRecord[];
  let denied: Awaited<ReturnType<typeof startEcho>>;
  let kept: Awaited<ReturnType<typeof startEcho>>;
  const clients: net.Socket[] = [];

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-tunnels-'));
    ca = await CertificateAuthority.loadOrCreate(path.join(dir, 'ca'));
    denied = await startEcho();
    kept = await startEcho();
  });

  after(() => {
    denied?.server.close();
    kept?.server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  beforeEach(() => {
    audit = [];
    proxy = new EgressProxy({ ca, audit: (record) => audit.push(record) });
  });

  afterEach(async () => {
    for (const client of clients.splice(0)) client.destroy();
    await proxy.close();
  });

  const socketPath = () => path.join(dir, 'listener', 'proxy.sock');
  const allowBoth = () => [`127.0.0.1:${denied.port}`, `127.0.0.1:${kept.port}`];

  it('closes an open CONNECT tunnel when its host is denied, and audits it (red-team finding 3)', async () => {
    const { socketPath: proxySocket } = await proxy.addAgent(
      'a1',
      { actor: 'alice', allowedHosts: allowBoth() },
      socketPath(),
    );
    const tunnel = await openTunnel(proxySocket, `127.0.0.1:${denied.port}`);
    clients.push(tunnel);
    assert.equal(await roundTrip(tunnel, 'before deny'), 'before deny');
    assert.equal(denied.sockets.size, 1);

    proxy.setAllowedHosts('a1', [`127.0.0.1:${kept.port}`]);

    assert.equal(await closesWithin(tunnel, 5000), true, 'the tunnel is still open after deny');
    const upstreamSide = [...denied.sockets];
    for (const socket of upstreamSide)
      assert.equal(await closesWithin(socket, 5000), true, 'the upstream side is still open');
    const closed = audit.filter((row) => row.action === 'egress.closed');
    assert.equal(closed.length, 1);
    assert.equal(closed[0].decision, 'deny');
    assert.equal(closed[0].agentId, 'a1');
    assert.equal(closed[0].actor, 'alice');
    assert.deepEqual(
      { ...closed[0].details, reason: undefined },
      { host: '127.0.0.1', port: denied.port, tunnels: 1, connections: 0, reason: undefined },
    );
    assert.match(String(closed[0].details?.reason), /not in this agent's allowedHosts/);
  });

  it('leaves tunnels to hosts that stay allowed open', async () => {
    const { socketPath: proxySocket } = await proxy.addAgent(
      'a1',
      { actor: 'alice', allowedHosts: allowBoth() },
      socketPath(),
    );
    const staying = await openTunnel(proxySocket, `127.0.0.1:${kept.port}`);
    const going = await openTunnel(proxySocket, `127.0.0.1:${denied.port}`);
    clients.push(staying, going);

    proxy.updateAgent('a1', { actor: 'alice', allowedHosts: [`127.0.0.1:${kept.port}`] });

    assert.equal(await closesWithin(going, 5000), true);
    assert.equal(await roundTrip(staying, 'still here'), 'still here');
    assert.equal(audit.filter((row) => row.action === 'egress.closed').length, 1);
  });

  it('refuses a new tunnel to the denied host after closing the old one', async () => {
    const { socketPath: proxySocket } = await proxy.addAgent(
      'a1',
      { actor: 'alice', allowedHosts: allowBoth() },
      socketPath(),
    );
    clients.push(await openTunnel(proxySocket, `127.0.0.1:${denied.port}`));

    proxy.setAllowedHosts('a1', []);

    await assert.rejects(openTunnel(proxySocket, `127.0.0.1:${denied.port}`), /answered 403/);
  });

  it('closes a kept-alive plain proxy connection whose host is denied', async () => {
    const upstream = http.createServer((_request, response) => response.end('ok'));
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const port = (upstream.address() as net.AddressInfo).port;
    const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const { socketPath: proxySocket } = await proxy.addAgent(
        'a1',
        { actor: 'alice', allowedHosts: [`127.0.0.1:${port}`] },
        socketPath(),
      );
      const connection = await new Promise<net.Socket>((resolve, reject) => {
        const request = http.get({
          socketPath: proxySocket,
          agent: keepAlive,
          path: `http://127.0.0.1:${port}/`,
          headers: { host: `127.0.0.1:${port}` },
        });
        request.on('error', reject);
        request.on('response', (response) => {
          response.resume();
          response.on('end', () => resolve(request.socket as net.Socket));
        });
      });
      assert.equal(connection.destroyed, false, 'the agent did not keep the connection alive');

      proxy.setAllowedHosts('a1', []);

      assert.equal(await closesWithin(connection, 5000), true);
      const closed = audit.find((row) => row.action === 'egress.closed');
      assert.deepEqual(
        [closed?.details?.port, closed?.details?.tunnels, closed?.details?.connections],
        [port, 0, 1],
      );
    } finally {
      keepAlive.destroy();
      upstream.close();
    }
  });
});
