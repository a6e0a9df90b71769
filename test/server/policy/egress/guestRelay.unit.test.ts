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
 * returned `guest` is the other end of that socket, the guest's connection; it does not close its
 * side when the relay's ends, as a careless or hostile guest does not.
 */
async function relayFromGuest(socketPath: string): Promise<{
  guest: net.Socket;
  relay: ChildProcess;
  closed: Promise<void>;
  stderr: () => string;
}> {
  const stderr: Buffer[] = [];
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const guest = net.connect({
    port: (server.address() as net.AddressInfo).port,
    host: '127.0.0.1',
    allowHalfOpen: true,
  });
  const slirpSide = await accepted;
  server.close();
  const [command, ...args] = relayArgv(socketPath);
  // stderr is QEMU's, appended to the VM's qemu.log.
  const relay = spawn(command!, args, { stdio: [slirpSide, slirpSide, 'pipe'] });
  relay.stderr!.on('data', (chunk: Buffer) => stderr.push(chunk));
  const closed = new Promise<void>((resolve) => relay.once('close', () => resolve()));
  // The child has its own copies of the descriptor now, as slirp's child would.
  slirpSide.destroy();
  return { guest, relay, closed, stderr: () => Buffer.concat(stderr).toString() };
}

function endsWithin(socket: net.Socket, ms: number): Promise<boolean> {
  if (socket.readableEnded) return Promise.resolve(true);

  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    socket.once('end', () => {
      clearTimeout(timer);
      resolve(true);
    });
    socket.resume();
  });
}

/** Whether the relay process exits (and its stderr is read to the end) within `ms`. */
function exitsWithin(relay: { closed: Promise<void> }, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  return Promise.race([relay.closed.then(() => true), timeout]).finally(() => clearTimeout(timer));
}

describe('the per-connection egress relay (unit)', function () {
  let dir: string;
  let proxy: net.Server;
  const relays: ChildProcess[] = [];
  const guests: net.Socket[] = [];

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
    for (const guest of guests.splice(0)) guest.destroy();
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

  it('leaves no relay behind for connections the proxy refused, though the guest never closes them', async () => {
    const socketPath = path.join(dir, 'proxy.sock');
    proxy = net.createServer((socket) => socket.end());
    await new Promise<void>((resolve) => proxy.listen(socketPath, resolve));

    const opened = await Promise.all(Array.from({ length: 8 }, () => relayFromGuest(socketPath)));
    for (const { guest, relay } of opened) {
      relays.push(relay);
      guests.push(guest);
    }

    for (const opening of opened) {
      const { guest, relay, stderr } = opening;
      assert.ok(await endsWithin(guest, 5_000), 'the guest saw the end of the connection');
      assert.ok(await exitsWithin(opening, 5_000), `relay pid ${relay.pid} is still running`);
      // A line per refused connection would let the guest grow qemu.log without end.
      assert.equal(stderr(), '');
    }
  });

  it('ends the relay once the proxy has sent a whole answer, though the guest keeps its side open', async () => {
    const socketPath = path.join(dir, 'proxy.sock');
    const answer = 'a'.repeat(512 * 1024);
    proxy = net.createServer((socket) => socket.once('data', () => socket.end(answer)));
    await new Promise<void>((resolve) => proxy.listen(socketPath, resolve));

    const opening = await relayFromGuest(socketPath);
    const { guest, relay } = opening;
    relays.push(relay);
    guests.push(guest);
    guest.write('request');
    const chunks: Buffer[] = [];
    guest.on('data', (chunk: Buffer) => chunks.push(chunk));

    assert.ok(await endsWithin(guest, 5_000), 'the guest saw the end of the answer');
    assert.equal(Buffer.concat(chunks).toString(), answer);
    assert.ok(await exitsWithin(opening, 5_000), `relay pid ${relay.pid} is still running`);
  });
});
