import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { egressNetdevArgs, findRelay } from '../../../../server/policy/egress/guestEgress';

/**
 * The relay command QEMU runs per guest connection, as `egressNetdevArgs` gives it: the part of
 * the guestfwd option after `-cmd:`, with QEMU's doubled commas undone, split as glib splits it
 * (no quoting is used).
 */
function relayArgv(socketPath: string): string[] {
  const netdev = egressNetdevArgs(socketPath, 'net0', findRelay())[1]!;
  return netdev
    .slice(netdev.indexOf('-cmd:') + '-cmd:'.length)
    .replace(/,,/g, ',')
    .split(' ');
}

/**
 * Runs the relay as QEMU's slirp does: one connected socket is both its stdin and its stdout. The
 * returned `guest` is the other end of that socket, the guest's connection.
 */
async function relayFromGuest(
  socketPath: string,
): Promise<{ guest: net.Socket; relay: ChildProcess }> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const guest = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  const slirpSide = await accepted;
  server.close();
  const [command, ...args] = relayArgv(socketPath);
  const relay = spawn(command!, args, { stdio: [slirpSide, slirpSide, 'ignore'] });
  // The child has its own copies of the descriptor now, as slirp's child would.
  slirpSide.destroy();
  return { guest, relay };
}

function endsWithin(socket: net.Socket, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    socket.once('end', () => {
      clearTimeout(timer);
      resolve(true);
    });
    socket.resume();
  });
}

describe('the per-connection egress relay (unit)', function () {
  let dir: string;
  let proxy: net.Server;
  const relays: ChildProcess[] = [];

  beforeEach(function () {
    try {
      findRelay();
    } catch {
      this.skip();
    }
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-relay-'));
  });

  afterEach(() => {
    for (const relay of relays.splice(0)) relay.kill('SIGKILL');
    proxy?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('tells the guest at once when the proxy closes the connection', async () => {
    const socketPath = path.join(dir, 'proxy.sock');
    // A proxy that refuses every connection by closing it, as one over its connection cap does.
    proxy = net.createServer((socket) => socket.end());
    await new Promise<void>((resolve) => proxy.listen(socketPath, resolve));

    const { guest, relay } = await relayFromGuest(socketPath);
    relays.push(relay);

    assert.ok(await endsWithin(guest, 5_000), 'the guest saw the end of the connection');
    guest.destroy();
  });

  it('still carries a whole answer to a guest that half-closed after its request', async () => {
    const socketPath = path.join(dir, 'proxy.sock');
    proxy = net.createServer({ allowHalfOpen: true }, (socket) => {
      socket.once('end', () => setTimeout(() => socket.end('answer after 1 s'), 1_000));
      socket.resume();
    });
    await new Promise<void>((resolve) => proxy.listen(socketPath, resolve));

    const { guest, relay } = await relayFromGuest(socketPath);
    relays.push(relay);
    guest.end('request');
    const chunks: Buffer[] = [];
    guest.on('data', (chunk: Buffer) => chunks.push(chunk));

    assert.ok(await endsWithin(guest, 5_000));
    assert.equal(Buffer.concat(chunks).toString(), 'answer after 1 s');
  });
});
