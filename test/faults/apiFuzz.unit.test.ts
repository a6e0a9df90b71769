import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import net from 'node:net';
import WebSocket from 'ws';
import { bundleRepository } from '../../client/repoBundle';
import { errorBodySchema, errorCatalog, errorCodes } from '../../protocol/errors';
import { ChildBroker } from '../helpers/childBroker';
import { seedEndedAgent } from '../helpers/seedAgent';
import { makeTempRepo } from '../helpers/repos';
import { FuzzInput } from './FuzzInput';

/** How many of each kind of malformed input one run sends; the seed makes a run repeatable. */
const HTTP_REQUESTS = Number(process.env.AGENTVM_FUZZ_REQUESTS ?? 3000);
const WEBSOCKET_FRAMES = 400;
const RAW_CONNECTIONS = 100;
const SEED = Number(process.env.AGENTVM_FUZZ_SEED ?? 20261204);
const CONCURRENCY = 8;

interface Finding {
  what: string;
  detail: string;
}

describe('API fuzz: malformed requests against a running broker (unit)', function () {
  this.timeout(10 * 60_000);
  const broker = new ChildBroker();
  const findings: Finding[] = [];
  let repoDir = '';
  let validBody: Record<string, unknown>;
  let knownAgentId = '';
  let bystanderId = '';
  let fuzz: FuzzInput;

  before(async () => {
    // Ended agents seeded into the store give the fuzzer valid ids without booting VMs (this
    // broker has no guest image, so it refuses to create agents).
    knownAgentId = 'fuzzknown1';
    bystanderId = 'bystander1';
    seedEndedAgent(broker.dataDir, knownAgentId, os.userInfo().username);
    seedEndedAgent(broker.dataDir, bystanderId, os.userInfo().username, 'bystander');
    await broker.start();
    repoDir = makeTempRepo({ 'README.md': '# fuzz\n', 'a.txt': 'a\n' });
    const repo = await bundleRepository(repoDir);
    validBody = { text: 'fuzz target', profile: 'demo', repo };
    fuzz = new FuzzInput(SEED, { token: broker.token, agentId: knownAgentId, validBody });
  });

  beforeEach(() => {
    findings.length = 0;
  });

  after(async () => {
    await broker.cleanup();
    fs.rmSync(repoDir, { recursive: true, force: true });
  });

  it('answers thousands of malformed HTTP requests with documented 4xx codes, never 5xx, and keeps its memory', async () => {
    const warmup = Math.min(300, HTTP_REQUESTS);
    await runPool(warmup, () => fuzzOnce());
    const rssBeforeKiB = broker.rssKiB();
    await runPool(HTTP_REQUESTS - warmup, () => fuzzOnce());
    const rssAfterKiB = broker.rssKiB();
    console.log(
      `      ${HTTP_REQUESTS} requests (seed ${SEED}); broker RSS ${rssBeforeKiB} KiB after warm-up, ${rssAfterKiB} KiB after`,
    );

    assert.ok(broker.alive, `the broker died:\n${broker.output.slice(-4000)}`);
    assertNoFindings(findings);
    assert.ok(
      rssAfterKiB - rssBeforeKiB < 64 * 1024,
      `RSS grew by ${rssAfterKiB - rssBeforeKiB} KiB`,
    );
    // An agent the fuzzer never learned about is untouched, so the store is intact.
    const bystander = await broker.client.getAgent(bystanderId);
    assert.equal(bystander.title, 'bystander');
  });

  it('answers malformed WebSocket upgrades and frames with error messages and stays up', async () => {
    let errorsSeen = 0;
    for (let round = 0; round < 20; round++) {
      const badToken = fuzz.token();
      const refused = await upgradeStatus(
        `${broker.url.replace('http', 'ws')}/v1/events?token=${encodeURIComponent(badToken)}`,
      );
      if (badToken === broker.token) continue;

      const code = errorBodySchema.safeParse(tryJson(refused.body)).data?.error.code;
      if (refused.status !== 401 || code !== 'UNAUTHORIZED') {
        findings.push({
          what: 'ws upgrade with a bad token',
          detail: `${refused.status} ${refused.body.slice(0, 100)}`,
        });
      }
    }

    for (let connection = 0; connection < WEBSOCKET_FRAMES / 40; connection++) {
      errorsSeen += await fuzzWebSocket(40);
    }

    assert.ok(broker.alive, `the broker died:\n${broker.output.slice(-4000)}`);
    assertNoFindings(findings);
    assert.ok(
      errorsSeen > WEBSOCKET_FRAMES / 4,
      `only ${errorsSeen} error replies to ${WEBSOCKET_FRAMES} frames`,
    );
  });

  it('survives raw garbage on its TCP port and still serves health', async () => {
    for (let index = 0; index < RAW_CONNECTIONS; index++) {
      await new Promise<void>((resolve) => {
        const socket = net.connect(broker.port, '127.0.0.1', () => socket.end(fuzz.rawHttp()));
        socket.on('data', () => undefined);
        socket.on('error', () => resolve());
        socket.on('close', () => resolve());
        socket.setTimeout(5_000, () => socket.destroy());
      });
    }

    assert.ok(broker.alive, `the broker died:\n${broker.output.slice(-4000)}`);
    const health = await fetch(`${broker.url}/v1/health`);
    assert.equal(health.status, 200);
  });

  async function fuzzOnce(): Promise<void> {
    const request = fuzz.request();
    let response: Response;
    try {
      response = await fetch(broker.url + request.path, {
        method: request.method,
        headers: request.headers,
        body: request.body,
        signal: AbortSignal.timeout(30_000),
      });
    } catch (error) {
      // A request the client itself refuses to build (an invalid header value) never reached the broker.
      if (error instanceof TypeError && !/fetch failed/.test(error.message)) return;

      findings.push({
        what: `${request.method} ${request.path}`,
        detail: `no answer: ${explain(error)}`,
      });
      return;
    }

    const text = await response.text();
    const label = `${request.method} ${request.path.slice(0, 120)}`;
    if (response.status >= 500) {
      findings.push({ what: label, detail: `${response.status} ${text.slice(0, 300)}` });
      return;
    }

    if (response.status < 400 || request.method === 'HEAD') return;

    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      findings.push({
        what: label,
        detail: `${response.status} with a body that is not JSON: ${text.slice(0, 120)}`,
      });
      return;
    }

    const parsed = errorBodySchema.safeParse(body);
    if (!parsed.success) {
      findings.push({
        what: label,
        detail: `${response.status} body is not an error body: ${text.slice(0, 200)}`,
      });
      return;
    }

    const expected = errorCatalog[parsed.data.error.code].status;
    if (expected !== response.status) {
      findings.push({
        what: label,
        detail: `${parsed.data.error.code} came with ${response.status}, registry says ${expected}`,
      });
    }
  }

  /** Opens one authorised stream, sends `count` malformed frames, counts the error replies. */
  async function fuzzWebSocket(count: number): Promise<number> {
    const socket = new WebSocket(`${broker.url.replace('http', 'ws')}/v1/events`, {
      headers: { authorization: `Bearer ${broker.token}` },
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
    });

    let errors = 0;
    socket.on('message', (data) => {
      const message = JSON.parse(data.toString()) as { type: string; code?: string };
      if (message.type !== 'error') return;

      errors++;
      if (!errorCodes.includes(message.code as never)) {
        findings.push({ what: 'ws error reply', detail: `undocumented code ${message.code}` });
      }
    });
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    for (let index = 0; index < count && socket.readyState === WebSocket.OPEN; index++) {
      socket.send(fuzz.frame());
    }

    // A ping round trip after the frames: every reply to them has arrived.
    await Promise.race([
      new Promise<void>((resolve) => {
        socket.once('pong', () => resolve());
        if (socket.readyState === WebSocket.OPEN) socket.ping();
        else resolve();
      }),
      closed,
    ]);
    socket.close();
    await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 2_000))]);
    return errors;
  }
});

function assertNoFindings(findings: Finding[]): void {
  const kinds = new Map<string, number>();
  for (const finding of findings) kinds.set(finding.detail, (kinds.get(finding.detail) ?? 0) + 1);
  const summary = [...kinds].map(([detail, count]) => `${count}× ${detail}`).join('\n');
  assert.equal(
    findings.length,
    0,
    `seed ${SEED}: ${findings.length} findings, e.g. ${findings[0]?.what}:\n${summary}`,
  );
}

async function runPool(count: number, task: () => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) {
      next++;
      await task();
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
}

/** Status and body of a WebSocket upgrade the broker refuses (101 when it accepts). */
function upgradeStatus(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const socket = new WebSocket(url);
    socket.on('unexpected-response', (_request, response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
      response.on('error', () => resolve({ status: response.statusCode ?? 0, body }));
    });
    socket.on('open', () => {
      resolve({ status: 101, body: '' });
      socket.close();
    });
    socket.on('error', () => resolve({ status: -1, body: '' }));
  });
}

function tryJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function explain(error: unknown): string {
  return error instanceof Error
    ? `${error.message} ${String((error as { cause?: unknown }).cause ?? '')}`
    : String(error);
}
