import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { QmpClient, QmpError, type QmpEvent } from '../../../../server/vmm/qemu/QmpClient';
import { fakeQemu } from './fakeQemu';

describe('QmpClient (unit)', () => {
  let dir: string;
  let server: net.Server | undefined;
  let client: QmpClient | undefined;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-qmp-'));
  });

  afterEach(async () => {
    client?.close();
    client = undefined;
    await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
    server = undefined;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('negotiates capabilities, then returns command results and reports events', async () => {
    const commands: string[] = [];
    server = await fakeQemu(path.join(dir, 'qmp.sock'), (command, socket) => {
      commands.push(command.execute);
      if (command.execute === 'stop') socket.write(JSON.stringify({ event: 'STOP' }) + '\n');
      const result = command.execute === 'query-status' ? { status: 'running' } : {};
      socket.write(JSON.stringify({ return: result, id: command.id }) + '\n');
    });
    client = await QmpClient.connect(path.join(dir, 'qmp.sock'), 2_000);
    const events: QmpEvent[] = [];
    client.onEvent((event) => events.push(event));

    await client.execute('stop');
    const status = await client.execute<{ status: string }>('query-status');

    assert.deepEqual(commands, ['qmp_capabilities', 'stop', 'query-status']);
    assert.equal(status.status, 'running');
    assert.deepEqual(
      events.map((event) => event.event),
      ['STOP'],
    );
  });

  it('rejects a refused command with a QmpError naming the command and the reason', async () => {
    server = await fakeQemu(path.join(dir, 'qmp.sock'), (command, socket) => {
      const reply =
        command.execute === 'qmp_capabilities'
          ? { return: {}, id: command.id }
          : { error: { class: 'GenericError', desc: 'no such device' }, id: command.id };
      socket.write(JSON.stringify(reply) + '\n');
    });
    client = await QmpClient.connect(path.join(dir, 'qmp.sock'), 2_000);

    await assert.rejects(client.execute('device_del'), (error: QmpError) => {
      assert.ok(error instanceof QmpError);
      assert.match(error.message, /device_del failed: GenericError: no such device/);
      return true;
    });
  });

  it('rejects pending commands and resolves closed when QEMU goes away', async () => {
    server = await fakeQemu(path.join(dir, 'qmp.sock'), (command, socket) => {
      if (command.execute === 'qmp_capabilities')
        socket.write(JSON.stringify({ return: {}, id: command.id }) + '\n');
      else socket.destroy();
    });
    client = await QmpClient.connect(path.join(dir, 'qmp.sock'), 2_000);

    await assert.rejects(client.execute('quit'), /monitor connection closed/);
    await client.closed;
    assert.equal(client.isOpen, false);
    await assert.rejects(client.execute('cont'), /closed/);
  });

  it('retries while the socket does not exist yet', async () => {
    const socketPath = path.join(dir, 'late.sock');
    const connecting = QmpClient.connect(socketPath, 5_000);
    await new Promise((resolve) => setTimeout(resolve, 100));
    server = await fakeQemu(socketPath, (command, socket) =>
      socket.write(JSON.stringify({ return: {}, id: command.id }) + '\n'),
    );

    client = await connecting;
    assert.equal(client.isOpen, true);
  });

  it('gives up when told QEMU has exited', async () => {
    await assert.rejects(
      QmpClient.connect(path.join(dir, 'never.sock'), 5_000, () => true),
      /ENOENT/,
    );
  });
});
