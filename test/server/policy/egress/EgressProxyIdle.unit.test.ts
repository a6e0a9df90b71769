import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { CertificateAuthority } from '../../../../server/policy/egress/CertificateAuthority';
import { EgressProxy } from '../../../../server/policy/egress/EgressProxy';
import { resolveSecrets } from '../../../../server/policy/secrets/SecretBindings';
import { closesWithin } from './egressTestClients';

/** A raw connection to the proxy that has sent `text` (maybe nothing) and read the first answer. */
async function guestConnection(socketPath: string, text = ''): Promise<net.Socket> {
  const socket = net.connect(socketPath);
  socket.on('error', () => undefined);
  await new Promise((resolve) => socket.once('connect', resolve));
  if (text === '') return socket;

  const answered = new Promise((resolve) => socket.once('data', resolve));
  socket.write(text);
  await answered;
  return socket;
}

describe('EgressProxy idle guest connections (unit)', function () {
  let dir: string;
  let proxy: EgressProxy;
  let echo: net.Server;
  let port: number;
  let socketPath: string;
  const sockets: net.Socket[] = [];

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-egress-idle-'));
    const ca = await CertificateAuthority.loadOrCreate(path.join(dir, 'ca'));
    echo = net.createServer((socket) => {
      socket.on('error', () => undefined);
      socket.pipe(socket);
    });
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    port = (echo.address() as net.AddressInfo).port;
    // Bound to 127.0.0.1:9: a CONNECT there is inspected (TLS terminated); nothing listens there.
    const [secret] = resolveSecrets(
      { K: { source: { env: 'V' }, hosts: ['127.0.0.1:9'] } },
      { env: { V: 'value' } },
    );
    proxy = new EgressProxy({ ca, guestIdleTimeoutMs: 300 });
    ({ socketPath } = await proxy.addAgent(
      'a1',
      { actor: 'alice', allowedHosts: [`127.0.0.1:${port}`, '127.0.0.1:9'], secrets: [secret] },
      path.join(dir, 'a1', 'proxy.sock'),
    ));
  });

  after(async () => {
    for (const socket of sockets) socket.destroy();
    await proxy.close();
    echo.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('closes a connection that never sends a request (h14: held 150 s and more)', async () => {
    const socket = await guestConnection(socketPath);
    sockets.push(socket);

    assert.equal(await closesWithin(socket, 3000), true);
  });

  it('closes an inspected tunnel whose TLS handshake never comes (h14)', async () => {
    const socket = await guestConnection(
      socketPath,
      'CONNECT 127.0.0.1:9 HTTP/1.1\r\nHost: 127.0.0.1:9\r\n\r\n',
    );
    sockets.push(socket);

    assert.equal(await closesWithin(socket, 3000), true);
  });

  it('leaves a quiet spliced tunnel open', async () => {
    const target = `127.0.0.1:${port}`;
    const socket = await guestConnection(
      socketPath,
      `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`,
    );
    sockets.push(socket);

    assert.equal(await closesWithin(socket, 1000), false);
    const echoed = new Promise<string>((resolve) =>
      socket.once('data', (chunk) => resolve(String(chunk))),
    );
    socket.write('still there');
    assert.equal(await echoed, 'still there');
  });
});
