import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { AgentvmError } from '../../../protocol/errors';
import { createLogger } from '../../../server/log';
import { ControlChannel } from '../../../server/vmm/ControlChannel';

/** A unix socket server that plays the guest end: records host lines, writes what the test says. */
class FakeGuest {
  readonly lines: unknown[] = [];
  private peer: net.Socket | undefined;
  private readonly lineWaiters: Array<() => void> = [];

  private constructor(
    readonly server: net.Server,
    readonly socketPath: string,
  ) {
    server.on('connection', (socket) => {
      this.peer = socket;
      let buffered = '';
      socket.on('data', (chunk) => {
        buffered += chunk.toString('utf8');
        let newline = buffered.indexOf('\n');
        while (newline >= 0) {
          this.lines.push(JSON.parse(buffered.slice(0, newline)));
          buffered = buffered.slice(newline + 1);
          newline = buffered.indexOf('\n');
          for (const waiter of this.lineWaiters.splice(0)) waiter();
        }
      });
    });
  }

  static async start(dir: string): Promise<FakeGuest> {
    const socketPath = path.join(dir, 'control.sock');
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
    return new FakeGuest(server, socketPath);
  }

  write(data: string | Buffer): void {
    assert.ok(this.peer, 'no host connected');
    this.peer.write(data);
  }

  disconnect(): void {
    this.peer?.destroy();
  }

  /** Wait (bounded) until `count` lines from the host have arrived. */
  async waitForLines(count: number): Promise<void> {
    for (let attempt = 0; attempt < 100 && this.lines.length < count; attempt++) {
      await new Promise<void>((resolve) => {
        this.lineWaiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
    assert.ok(this.lines.length >= count, `expected ${count} lines, got ${this.lines.length}`);
  }

  close(): Promise<void> {
    this.peer?.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

const ready = (seq: number) =>
  JSON.stringify({ type: 'ready', version: 'v1', seq, uptimeMs: 1200, hasTask: false }) + '\n';

describe('ControlChannel (unit)', () => {
  let dir: string;
  let guest: FakeGuest;
  let channel: ControlChannel | undefined;

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-cc-'));
    guest = await FakeGuest.start(dir);
  });

  afterEach(async () => {
    channel?.close();
    channel = undefined;
    await guest.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('repeats hello until the guest answers ready, then resolves with it', async () => {
    channel = await ControlChannel.connect(guest.socketPath, { helloIntervalMs: 20 });
    const handshake = channel.handshake(7, 5_000);

    await guest.waitForLines(3);
    guest.write(ready(9));
    const answer = await handshake;

    assert.equal(answer.seq, 9);
    assert.ok(guest.lines.length >= 3);
    for (const line of guest.lines) assert.deepEqual(line, { type: 'hello', lastSeq: 7 });
  });

  it('reassembles a line split across chunks, including a multi-byte character', async () => {
    channel = await ControlChannel.connect(guest.socketPath);
    const received: unknown[] = [];
    channel.onMessage((message) => received.push(message));

    const line = Buffer.from(
      JSON.stringify({ type: 'log', level: 'info', message: 'héllo ✓' }) + '\n',
    );
    guest.write(line.subarray(0, 10).toString('latin1'));
    await new Promise((resolve) => setTimeout(resolve, 20));
    guest.write(line.subarray(10, line.indexOf(0xc3) + 1));
    await new Promise((resolve) => setTimeout(resolve, 20));
    guest.write(line.subarray(line.indexOf(0xc3) + 1));
    await waitUntil(() => received.length === 1);

    assert.deepEqual(received, [{ type: 'log', level: 'info', message: 'héllo ✓' }]);
  });

  it('drops a guest line over maxLineChars, logs control.line_too_long, and reads the next one', async () => {
    const logged: string[] = [];
    const logger = createLogger({ write: (line) => logged.push(line), pretty: false });
    channel = await ControlChannel.connect(guest.socketPath, { logger, maxLineChars: 1024 });
    const received: unknown[] = [];
    channel.onMessage((message) => received.push(message));

    const huge = JSON.stringify({
      type: 'event',
      seq: 1,
      event: { kind: 'progress', message: 'x'.repeat(64 * 1024) },
    });
    guest.write(huge + '\n');
    guest.write(
      JSON.stringify({ type: 'event', seq: 2, event: { kind: 'progress', message: 'y' } }) + '\n',
    );
    await waitUntil(() => received.length === 1);

    assert.equal((received[0] as { seq: number }).seq, 2);
    assert.equal(logged.filter((line) => line.includes('control.line_too_long')).length, 1);
  });

  it('skips invalid lines, logs them, and keeps delivering the next ones', async () => {
    const logged: string[] = [];
    const logger = createLogger({
      write: (line) => logged.push(line),
      pretty: false,
      level: 'debug',
    });
    channel = await ControlChannel.connect(guest.socketPath, { logger });
    const received: unknown[] = [];
    channel.onMessage((message) => received.push(message));

    guest.write('this is not json\n{"type":"nonsense"}\n');
    guest.write(
      JSON.stringify({ type: 'event', seq: 1, event: { kind: 'progress', message: 'x' } }) + '\n',
    );
    await waitUntil(() => received.length === 1);

    assert.equal((received[0] as { seq: number }).seq, 1);
    assert.equal(logged.filter((line) => line.includes('control.invalid_line')).length, 2);
  });

  it('queues messages that arrive before any listener and delivers them to the first one in order', async () => {
    channel = await ControlChannel.connect(guest.socketPath, { helloIntervalMs: 1_000 });
    const handshake = channel.handshake(0, 5_000);
    guest.write(ready(2));
    guest.write(
      JSON.stringify({ type: 'event', seq: 1, event: { kind: 'progress', message: 'a' } }) + '\n',
    );
    guest.write(
      JSON.stringify({ type: 'event', seq: 2, event: { kind: 'progress', message: 'b' } }) + '\n',
    );
    await handshake;
    await new Promise((resolve) => setTimeout(resolve, 50));

    const received: number[] = [];
    channel.onMessage((message) => {
      if (message.type === 'event') received.push(message.seq);
    });
    await waitUntil(() => received.length === 2);

    assert.deepEqual(received, [1, 2]);
  });

  it('correlates responses with requests by id and rejects ok:false with GUEST_ERROR', async () => {
    channel = await ControlChannel.connect(guest.socketPath);
    const first = channel.request({ op: 'fs.stat', path: '/a' });
    const second = channel.request({ op: 'fs.stat', path: '/b' });
    await guest.waitForLines(2);
    const [one, two] = guest.lines as Array<{ id: number; request: { path: string } }>;

    guest.write(
      JSON.stringify({
        type: 'response',
        id: two.id,
        ok: false,
        error: { code: 'ENOENT', message: 'gone' },
      }) +
        '\n' +
        JSON.stringify({
          type: 'response',
          id: one.id,
          ok: true,
          result: { path: one.request.path },
        }) +
        '\n',
    );

    assert.deepEqual(await first, { path: '/a' });
    await assert.rejects(second, (error: AgentvmError) => {
      assert.equal(error.code, 'GUEST_ERROR');
      assert.match(error.message, /ENOENT: gone/);
      return true;
    });
  });

  it('rejects a request the guest never answers with GUEST_TIMEOUT after its timeout', async () => {
    channel = await ControlChannel.connect(guest.socketPath);

    await assert.rejects(channel.request({ op: 'changes' }, 50), (error: AgentvmError) => {
      assert.equal(error.code, 'GUEST_TIMEOUT');
      assert.match(error.message, /within 50 ms/);
      return true;
    });
  });

  it('rejects pending requests and the handshake when the guest side closes', async () => {
    channel = await ControlChannel.connect(guest.socketPath);
    let closes = 0;
    channel.onClose(() => closes++);
    const pending = channel.request({ op: 'changes' }, 10_000);
    const handshake = channel.handshake(0, 10_000);
    await guest.waitForLines(2);

    guest.disconnect();

    await assert.rejects(pending, (error: AgentvmError) => error.code === 'GUEST_UNREACHABLE');
    await assert.rejects(handshake, (error: AgentvmError) => error.code === 'GUEST_UNREACHABLE');
    channel.close();
    channel.close();
    assert.equal(closes, 1);
    assert.throws(() => channel!.send({ type: 'ack', seq: 1 }), /closed/);
  });

  it('times out the handshake with VM_BOOT_TIMEOUT when no ready arrives', async () => {
    channel = await ControlChannel.connect(guest.socketPath, { helloIntervalMs: 10 });

    await assert.rejects(
      channel.handshake(0, 60),
      (error: AgentvmError) => error.code === 'VM_BOOT_TIMEOUT',
    );
  });

  it('refuses to send a message that does not match the host schema', async () => {
    channel = await ControlChannel.connect(guest.socketPath);

    assert.throws(
      () => channel!.send({ type: 'ack', seq: -1 }),
      (error: AgentvmError) => error.code === 'INTERNAL',
    );
  });

  it('fills schema defaults in what it writes', async () => {
    channel = await ControlChannel.connect(guest.socketPath);

    channel.send({ type: 'cancel' } as never);
    await guest.waitForLines(1);

    assert.deepEqual(guest.lines[0], { type: 'cancel', graceMs: 3000 });
  });

  it('fails to connect with GUEST_UNREACHABLE when nothing listens', async () => {
    await assert.rejects(
      ControlChannel.connect(path.join(dir, 'missing.sock'), { connectTimeoutMs: 100 }),
      (error: AgentvmError) => error.code === 'GUEST_UNREACHABLE',
    );
  });
});

async function waitUntil(condition: () => boolean): Promise<void> {
  for (let attempt = 0; attempt < 100 && !condition(); attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.ok(condition(), 'condition not met in time');
}
