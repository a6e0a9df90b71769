import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { AuditRecord } from '../../../../server/policy/audit/AuditLog';
import { MAX_PIPELINED_REQUESTS } from '../../../../server/policy/egress/answerInTurn';
import { CertificateAuthority } from '../../../../server/policy/egress/CertificateAuthority';
import { EgressProxy } from '../../../../server/policy/egress/EgressProxy';

describe('EgressProxy pipelined requests (unit)', function () {
  let dir: string;
  let ca: CertificateAuthority;
  let upstream: http.Server;
  let port: number;
  let proxy: EgressProxy;
  let audit: AuditRecord[];
  let active: number;
  let mostActive: number;
  let started: string[];

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-egress-pipeline-'));
    ca = await CertificateAuthority.loadOrCreate(path.join(dir, 'ca'));
    // Answers each request after 50 ms, counting how many it holds at once.
    upstream = http.createServer((request, response) => {
      started.push(request.url ?? '');
      active++;
      mostActive = Math.max(mostActive, active);
      setTimeout(() => {
        active--;
        response.end(`answer ${request.url}\n`);
      }, 50);
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    port = (upstream.address() as net.AddressInfo).port;
  });

  after(async () => {
    upstream.closeAllConnections();
    await new Promise((resolve) => upstream.close(resolve));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  beforeEach(() => {
    audit = [];
    active = 0;
    mostActive = 0;
    started = [];
    proxy = new EgressProxy({ ca, audit: (record) => void audit.push(record) });
  });

  afterEach(() => proxy.close());

  /** Writes `count` pipelined GETs at once; resolves with the answers once `done` or closed. */
  async function pipeline(count: number, done: (text: string) => boolean): Promise<string> {
    const { socketPath } = await proxy.addAgent(
      'a1',
      { actor: 'alice', allowedHosts: [`127.0.0.1:${port}`] },
      path.join(dir, 'a1', 'proxy.sock'),
    );
    const requests = Array.from(
      { length: count },
      (_, index) =>
        `GET http://127.0.0.1:${port}/r${index} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`,
    );
    return new Promise((resolve, reject) => {
      const socket = net.connect(socketPath);
      let text = '';
      socket.on('error', reject);
      socket.on('data', (chunk) => {
        text += chunk.toString('latin1');
        if (!done(text)) return;

        socket.destroy();
        resolve(text);
      });
      socket.on('close', () => resolve(text));
      socket.write(requests.join(''));
    });
  }

  it('answers pipelined requests in order, one upstream exchange at a time (h14: 1000 pipelined GETs opened 1000 upstream connections)', async () => {
    const text = await pipeline(5, (received) => received.includes('answer /r4'));

    assert.deepEqual(
      [...text.matchAll(/answer (\/r\d)/g)].map((match) => match[1]),
      ['/r0', '/r1', '/r2', '/r3', '/r4'],
    );
    assert.equal(mostActive, 1);
  });

  it('closes a connection with more pipelined requests waiting than the limit, and audits it', async () => {
    const text = await pipeline(MAX_PIPELINED_REQUESTS + 2, () => false);

    assert.equal(text, '');
    assert.ok(started.length <= 1, `upstream saw ${started.length} requests`);
    const rows = audit.filter((row) => row.action === 'egress.pipeline_limit');
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.decision, 'deny');
  });
});
