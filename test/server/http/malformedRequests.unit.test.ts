import assert from 'node:assert/strict';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import { BrokerClient } from '../../../client/BrokerClient';
import { bundleRepository } from '../../../client/repoBundle';
import { errorBodySchema } from '../../../protocol/errors';
import { MAX_CALL_BODY_BYTES } from '../../../server/http/createApp';
import {
  hangingDriver,
  startImagelessBroker,
  type ImagelessBroker,
} from '../../helpers/imagelessBroker';
import { makeTempRepo } from '../../helpers/repos';

describe('the HTTP API against malformed requests (unit)', function () {
  this.timeout(30_000);
  let harness: ImagelessBroker;
  let repo: string;
  let agentId: string;

  before(async () => {
    harness = await startImagelessBroker({ driver: hangingDriver });
    repo = makeTempRepo();
    const client = new BrokerClient({ url: harness.url, token: harness.token });
    const upload = await bundleRepository(repo);
    agentId = (await client.createAgent({ text: 'a task', profile: 'plain', repo: upload })).id;
  });

  after(async () => {
    await harness.stop();
    fs.rmSync(repo, { recursive: true, force: true });
  });

  /** Sends a request and returns its status and error code; fails unless the body is a registry error. */
  async function refusal(
    method: string,
    path: string,
    body?: string,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; code: string }> {
    const response = await fetch(`${harness.url}${path}`, {
      method,
      body,
      headers: { authorization: `Bearer ${harness.token}`, ...headers },
    });
    const text = await response.text();
    const parsed = errorBodySchema.safeParse(JSON.parse(text));
    assert.ok(parsed.success, `${method} ${path}: not an error body: ${text.slice(0, 200)}`);
    assert.ok(parsed.data.error.hint.length > 0);
    return { status: response.status, code: parsed.data.error.code };
  }

  const bodies: Array<[string, string]> = [
    ['a JSON array', '[]'],
    ['JSON null', 'null'],
    ['a number', '42'],
    ['text wrapped as a string', '"make it work"'],
    ['wrong field types', JSON.stringify({ text: 5, repo: 'x', profile: [] })],
    ['a repo with no bundle', JSON.stringify({ text: 'x', repo: {} })],
    ['nesting 5 000 deep', '['.repeat(5000) + ']'.repeat(5000)],
    ['a lone surrogate in the text', '{"text":"\\ud800","repo":{}}'],
  ];
  for (const [what, body] of bodies) {
    it(`refuses a delegation whose body is ${what} with VALIDATION_FAILED and creates nothing`, async () => {
      const before = harness.broker.store.listAgents().length;
      const answer = await refusal('POST', '/v1/agents', body);
      assert.deepEqual(answer, { status: 400, code: 'VALIDATION_FAILED' });
      assert.equal(harness.broker.store.listAgents().length, before);
    });
  }

  it('refuses broken JSON with BAD_REQUEST on every route that takes a body', async () => {
    for (const path of [
      '/v1/agents',
      `/v1/agents/${agentId}/resume`,
      `/v1/agents/${agentId}/guest`,
      `/v1/agents/${agentId}/egress`,
    ]) {
      assert.deepEqual(await refusal('POST', path, '{"text": '), {
        status: 400,
        code: 'BAD_REQUEST',
      });
    }
  });

  const ids = [
    '..',
    '..%2F..%2Fetc%2Fpasswd',
    '%00',
    '%F0%9F%92%A5',
    '%E2%80%AE',
    'x'.repeat(4000),
    "'%20OR%201=1--",
  ];
  for (const id of ids) {
    it(`answers the id "${id.slice(0, 30)}" with AGENT_NOT_FOUND or NOT_FOUND on each route`, async () => {
      for (const [method, suffix] of [
        ['GET', ''],
        ['GET', '/events'],
        ['GET', '/console'],
        ['GET', '/result/bundle'],
        ['POST', '/cancel'],
        ['DELETE', '?force=true'],
      ] as const) {
        const answer = await refusal(method, `/v1/agents/${id}${suffix}`);
        assert.ok(
          ['AGENT_NOT_FOUND', 'NOT_FOUND'].includes(answer.code),
          `${method}: ${answer.code}`,
        );
        assert.equal(answer.status, 404);
      }
    });
  }

  it('answers a wrong method with NOT_FOUND and changes nothing', async () => {
    for (const [method, path] of [
      ['PUT', '/v1/agents'],
      ['PATCH', `/v1/agents/${agentId}`],
      ['DELETE', '/v1/agents'],
      ['GET', `/v1/agents/${agentId}/resume`],
      ['POST', '/v1/health'],
    ] as const) {
      assert.deepEqual(await refusal(method, path, method === 'GET' ? undefined : '{}'), {
        status: 404,
        code: 'NOT_FOUND',
      });
    }
    assert.equal(harness.broker.store.getAgent(agentId)?.state, 'starting');
  });

  it('refuses bad query parameters with VALIDATION_FAILED and ignores unknown ones', async () => {
    for (const query of ['after=-1', 'after=1e3', 'after=0x10', 'after=9999999999999999']) {
      assert.deepEqual(await refusal('GET', `/v1/agents/${agentId}/events?${query}`), {
        status: 400,
        code: 'VALIDATION_FAILED',
      });
    }
    assert.deepEqual(await refusal('GET', '/v1/audit?limit=ten'), {
      status: 400,
      code: 'VALIDATION_FAILED',
    });
    const response = await fetch(`${harness.url}/v1/agents/${agentId}/events?bogus=1&after=0`, {
      headers: { authorization: `Bearer ${harness.token}` },
    });
    assert.equal(response.status, 200);
  });

  it('refuses a guest call with a bad op or path type with VALIDATION_FAILED before it reaches any VM', async () => {
    for (const request of [
      { op: 'fs.readFile' },
      { op: 'fs.readFile', path: 42 },
      { op: 'rm -rf', path: '/' },
      { op: 'exec', command: ['ls'] },
    ]) {
      assert.deepEqual(
        await refusal('POST', `/v1/agents/${agentId}/guest`, JSON.stringify({ request })),
        { status: 400, code: 'VALIDATION_FAILED' },
      );
    }
  });

  it('answers headers over 16 KiB with one BAD_REQUEST body and keeps serving', async () => {
    const socket = net.connect(Number(new URL(harness.url).port), '127.0.0.1');
    await once(socket, 'connect');
    socket.write(`GET /v1/whoami HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`);
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    await once(socket, 'close');
    const answer = Buffer.concat(chunks).toString();
    assert.match(answer, /^HTTP\/1\.1 400/);
    assert.match(answer, /"code":"BAD_REQUEST"/);

    const health = await fetch(`${harness.url}/v1/health`);
    assert.equal(health.status, 200);
  });

  it('refuses an oversized body on the routes of an agent too, with PAYLOAD_TOO_LARGE before reading it (regression: only POST /v1/agents had a limit; resume waited to read the whole body)', async () => {
    for (const route of ['resume', 'guest', 'egress', 'cancel']) {
      const answer = await rawAnswer(
        `POST /v1/agents/${agentId}/${route} HTTP/1.1\r\nHost: x\r\n` +
          `Authorization: Bearer ${harness.token}\r\nContent-Type: application/json\r\n` +
          `Content-Length: ${MAX_CALL_BODY_BYTES + 1}\r\n\r\n{"message":"`,
      );
      assert.match(answer, /^HTTP\/1\.1 413/, `${route}: ${answer.split('\r\n')[0]}`);
      assert.match(answer, /"code":"PAYLOAD_TOO_LARGE"/);
    }
    assert.equal(harness.broker.store.getAgent(agentId)?.state, 'starting');
  });

  /** What the broker answers within 2 s to a request that is sent only in part. */
  async function rawAnswer(request: string): Promise<string> {
    const socket = net.connect(Number(new URL(harness.url).port), '127.0.0.1');
    try {
      await once(socket, 'connect');
      const chunks: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      socket.on('error', () => undefined);
      socket.write(request);
      await Promise.race([once(socket, 'close'), new Promise((r) => setTimeout(r, 2000))]);
      return Buffer.concat(chunks).toString();
    } finally {
      socket.destroy();
    }
  }

  it('refuses a body over the limit with PAYLOAD_TOO_LARGE without reading it all', async () => {
    const answer = await rawAnswer(
      `POST /v1/agents HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${harness.token}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${1024 * 1024 * 1024}\r\n\r\n{"text":`,
    );
    assert.match(answer, /^HTTP\/1\.1 413/);
    assert.match(answer, /"code":"PAYLOAD_TOO_LARGE"/);
  });
});
