import assert from 'node:assert/strict';
import fs from 'node:fs';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { silentLogger } from '../../../../server/log';
import { QmpClient } from '../../../../server/vmm/qemu/QmpClient';
import { resumeAfterNoSpace } from '../../../../server/vmm/qemu/resumeAfterNoSpace';
import { fakeQemu } from './fakeQemu';

const timing = { firstTryMs: 30, longestWaitMs: 60 };
const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('resumeAfterNoSpace (unit)', () => {
  let dir: string;
  let server: net.Server;
  let client: QmpClient;
  let status: string;
  let commands: string[];
  let qemu: net.Socket | undefined;
  let resumer: { dispose(): void };

  const emit = (event: string, data: Record<string, unknown>) =>
    qemu?.write(JSON.stringify({ event, data }) + '\n');
  const noSpace = { device: 'root', operation: 'write', action: 'stop', nospace: true };

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-nospace-'));
    status = 'running';
    commands = [];
    server = await fakeQemu(path.join(dir, 'qmp.sock'), (command, socket) => {
      qemu = socket;
      commands.push(command.execute);
      if (command.execute === 'cont') status = 'running';
      const result = command.execute === 'query-status' ? { status } : {};
      socket.write(JSON.stringify({ return: result, id: command.id }) + '\n');
    });
    client = await QmpClient.connect(path.join(dir, 'qmp.sock'), 2_000);
    resumer = resumeAfterNoSpace(client, silentLogger, 'vm1', timing);
  });

  afterEach(async () => {
    resumer.dispose();
    client.close();
    await new Promise((resolve) => server.close(resolve));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('resumes a guest QEMU stopped on a full disk, again after each stop, once space is back', async () => {
    status = 'io-error';
    emit('BLOCK_IO_ERROR', noSpace);
    await wait(timing.firstTryMs + 40);
    assert.deepEqual(commands.slice(-2), ['query-status', 'cont']);

    // Still full: the retried write stops the guest again, and it is tried again later.
    status = 'io-error';
    emit('BLOCK_IO_ERROR', noSpace);
    await wait(timing.longestWaitMs + 40);
    assert.deepEqual(commands.filter((command) => command === 'cont').length, 2);
    assert.equal(status, 'running');
  });

  it('leaves alone a guest paused on purpose, and errors that are not a full disk', async () => {
    status = 'paused';
    emit('BLOCK_IO_ERROR', noSpace);
    emit('BLOCK_IO_ERROR', { ...noSpace, nospace: false });
    emit('STOP', {});
    await wait(timing.firstTryMs + 40);

    assert.ok(!commands.includes('cont'), commands.join(', '));
  });
});
