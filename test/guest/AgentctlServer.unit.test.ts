import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { AgentctlServer } from '../../guest/AgentctlServer';
import { MAX_AGENTCTL_LINE_CHARS } from '../../guest/agentctlProtocol';
import type { GuestEvent } from '../../protocol/control';

/** Writes `data` to the server's socket and returns everything it answers before closing. */
function talk(socketPath: string, data: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    let answer = '';
    socket.on('connect', () => socket.write(data));
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString('utf8')));
    // The server may close while we still write a huge request; what it said is what matters.
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE' && error.code !== 'ECONNRESET') reject(error);
    });
    socket.on('close', () => resolve(answer));
  });
}

describe('AgentctlServer (unit)', () => {
  let dir: string;
  let server: AgentctlServer;
  let events: GuestEvent[];
  let socketPath: string;

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-agentctl-server-'));
    socketPath = path.join(dir, 'agentctl.sock');
    events = [];
    server = new AgentctlServer(
      socketPath,
      { emit: (event) => events.push(event), onReviewWaiting: () => undefined },
      () => undefined,
    );
    await server.listen();
  });

  afterEach(async () => {
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('accepts a progress message of 4096 characters and emits it', async () => {
    const answer = await talk(
      socketPath,
      JSON.stringify({ type: 'progress', message: 'p'.repeat(4096) }) + '\n',
    );

    assert.deepEqual(JSON.parse(answer), { type: 'ok' });
    assert.equal(events.length, 1);
  });

  it('refuses a progress message of 4097 characters sent straight to the socket, naming the limit', async () => {
    const answer = await talk(
      socketPath,
      JSON.stringify({ type: 'progress', message: 'p'.repeat(4097) }) + '\n',
    );

    const response = JSON.parse(answer) as { type: string; message: string };
    assert.equal(response.type, 'error');
    assert.match(response.message, /4097 characters; the limit is 4096/);
    assert.deepEqual(events, []);
  });

  it('refuses a request line longer than it reads without buffering the rest', async () => {
    const answer = await talk(socketPath, 'x'.repeat(MAX_AGENTCTL_LINE_CHARS * 4));

    const response = JSON.parse(answer) as { type: string; message: string };
    assert.equal(response.type, 'error');
    assert.match(response.message, new RegExp(`the limit is ${MAX_AGENTCTL_LINE_CHARS}`));
    assert.deepEqual(events, []);
  });
});
