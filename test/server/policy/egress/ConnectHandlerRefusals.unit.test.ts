import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { AuditRecord } from '../../../../server/policy/audit/AuditLog';
import { CertificateAuthority } from '../../../../server/policy/egress/CertificateAuthority';
import { EgressProxy } from '../../../../server/policy/egress/EgressProxy';
import { resolveSecrets } from '../../../../server/policy/secrets/SecretBindings';

/** What the proxy wrote after `request` on a raw connection, and whether it closed, in `waitMs`. */
function exchange(
  socketPath: string,
  request: string,
  waitMs: number,
): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = net.connect(socketPath);
    let text = '';
    socket.on('data', (chunk) => (text += chunk.toString('latin1')));
    socket.on('error', () => undefined);
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text, closed: false });
    }, waitMs);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ text, closed: true });
    });
    socket.write(request);
  });
}

const connect = (target: string) => `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`;

/**
 * A loopback port that takes no connections: a child node listens with a backlog of 1 and then
 * blocks its event loop, so it never accepts; with its queue full, the kernel drops further SYNs.
 */
async function startBlackhole(): Promise<{
  child: ChildProcess;
  port: number;
  fillers: net.Socket[];
}> {
  const script = `
    const server = require('node:net').createServer();
    server.listen({ host: '127.0.0.1', port: 0, backlog: 1 }, () => {
      process.stdout.write(server.address().port + '\\n');
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60000);
    });`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve) =>
    child.stdout!.once('data', (data) => resolve(Number(String(data).trim()))),
  );
  const fillers = Array.from({ length: 4 }, () => {
    const filler = net.connect(port, '127.0.0.1');
    filler.on('error', () => undefined);
    return filler;
  });
  await new Promise((resolve) => setTimeout(resolve, 200));
  return { child, port, fillers };
}

describe('ConnectHandler refusals (unit)', function () {
  let dir: string;
  let ca: CertificateAuthority;
  let proxy: EgressProxy;
  let audit: AuditRecord[];

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-connect-refusals-'));
    ca = await CertificateAuthority.loadOrCreate(path.join(dir, 'ca'));
  });

  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  beforeEach(() => {
    audit = [];
    proxy = new EgressProxy({
      ca,
      audit: (record) => void audit.push(record),
      upstreamTimeoutMs: 500,
    });
  });

  afterEach(() => proxy.close());

  const listener = () => path.join(dir, 'listener', 'proxy.sock');

  it('refuses CONNECT to port 0 or 99999 with a 400 before auditing it allowed (h14)', async () => {
    const { socketPath } = await proxy.addAgent(
      'a1',
      { actor: 'alice', allowedHosts: ['127.0.0.1:*'] },
      listener(),
    );

    for (const port of [0, 99999]) {
      const answer = await exchange(socketPath, connect(`127.0.0.1:${port}`), 3000);

      assert.match(answer.text, /^HTTP\/1\.1 400 /);
      assert.match(answer.text, new RegExp(`a port from 1 to 65535, not ${port}`));
    }
    assert.deepEqual(audit, []);
  });

  it('refuses an inspected CONNECT to a name that does not resolve without forging a certificate (h14)', async () => {
    const [secret] = resolveSecrets(
      { K: { source: { env: 'V' }, hosts: ['*.h14.invalid'] } },
      { env: { V: 'value' } },
    );
    const { socketPath } = await proxy.addAgent(
      'a1',
      { actor: 'alice', allowedHosts: ['*.h14.invalid'], secrets: [secret] },
      listener(),
    );
    const forgedBefore = ca.cachedHostCount;

    const answer = await exchange(socketPath, connect('nowhere.h14.invalid:443'), 5000);

    assert.match(answer.text, /^HTTP\/1\.1 502 /);
    assert.match(answer.text, /cannot reach nowhere\.h14\.invalid:443/);
    assert.equal(ca.cachedHostCount, forgedBefore);
    assert.deepEqual(
      audit.map((row) => [row.action, row.decision, row.details?.inspected]),
      [['egress.connect', 'allow', true]],
    );
  });

  it('gives up on an upstream that does not take the connection within upstreamTimeoutMs (h14)', async function () {
    const blackhole = await startBlackhole();
    try {
      const { socketPath } = await proxy.addAgent(
        'a1',
        { actor: 'alice', allowedHosts: [`127.0.0.1:${blackhole.port}`] },
        listener(),
      );

      const answer = await exchange(socketPath, connect(`127.0.0.1:${blackhole.port}`), 5000);

      assert.equal(answer.closed, true, 'the guest connection was closed');
      assert.match(answer.text, /^HTTP\/1\.1 502 /);
      assert.match(answer.text, /no connection within 500 ms/);
    } finally {
      for (const filler of blackhole.fillers) filler.destroy();
      blackhole.child.kill();
    }
  });
});
