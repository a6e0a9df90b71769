import assert from 'node:assert/strict';
import { once } from 'node:events';
import fs from 'node:fs';
import WebSocket from 'ws';
import { BrokerClient } from '../../../client/BrokerClient';
import { bundleRepository } from '../../../client/repoBundle';
import { MAX_EXEC_STDIN_BYTES } from '../../../protocol/control';
import { AgentvmError } from '../../../protocol/errors';
import type { Broker } from '../../../server/Broker';
import {
  startBrokerWithBootSlotTaken,
  startImagelessBroker,
  type BrokerWithBootSlotTaken,
  type ImagelessBroker,
} from '../../helpers/imagelessBroker';
import { makeTempRepo } from '../../helpers/repos';

async function expectError(
  promise: Promise<unknown>,
  code: string,
  messagePart?: RegExp,
): Promise<AgentvmError> {
  const error = await promise.then(
    () => assert.fail(`expected ${code}`),
    (caught: unknown) => caught,
  );
  assert.ok(error instanceof AgentvmError, `expected an AgentvmError, got ${String(error)}`);
  assert.equal(error.code, code, error.message);
  assert.ok(error.hint.length > 0);
  if (messagePart) assert.match(error.message, messagePart);
  return error;
}

describe('broker HTTP API (unit)', () => {
  let harness: ImagelessBroker;
  let repo: string;
  let broker: Broker;
  let client: BrokerClient;
  let url: string;

  beforeEach(async () => {
    repo = makeTempRepo();
    harness = await startImagelessBroker();
    ({ broker, url } = harness);
    client = new BrokerClient({ url, token: harness.token });
  });

  afterEach(async () => {
    await harness.stop();
    fs.rmSync(repo, { recursive: true, force: true });
  });

  it('refuses a wrong token with UNAUTHORIZED', async () => {
    const stranger = new BrokerClient({ url, token: 'avm_not-a-real-token' });
    await expectError(stranger.listAgents(), 'UNAUTHORIZED');
  });

  it('answers health without a token', async () => {
    const response = await fetch(`${url}/v1/health`);
    assert.equal(response.status, 200);
  });

  it('names the bad fields when a body fails validation', async () => {
    const response = await fetch(`${url}/v1/agents`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${broker.ensureLocalToken()}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({ text: '', repo: { bundle: 'x', baseCommit: 'abc', branch: 'main' } }),
    });
    assert.equal(response.status, 400);
    const body = (await response.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'VALIDATION_FAILED');
    assert.match(body.error.message, /text/);
    assert.match(body.error.message, /baseCommit/);
  });

  it('rejects a body that is not JSON with BAD_REQUEST', async () => {
    const response = await fetch(`${url}/v1/agents`, {
      method: 'POST',
      headers: { authorization: `Bearer ${broker.ensureLocalToken()}` },
      body: '{not json',
    });
    assert.equal(response.status, 400);
    assert.equal(
      ((await response.json()) as { error: { code: string } }).error.code,
      'BAD_REQUEST',
    );
  });

  it('reports an unknown agent id as AGENT_NOT_FOUND', async () => {
    await expectError(client.getAgent('nosuchagent'), 'AGENT_NOT_FOUND', /nosuchagent/);
    await expectError(client.review('nosuchagent'), 'AGENT_NOT_FOUND');
  });

  it('reports an unknown profile as PROFILE_NOT_FOUND and creates nothing', async () => {
    const upload = await bundleRepository(repo);
    await expectError(
      client.createAgent({ text: 'do it', profile: 'nope', repo: upload }),
      'PROFILE_NOT_FOUND',
      /plain/,
    );
    assert.deepEqual(await client.listAgents(), []);
  });

  it('rejects a repository upload that is not a git bundle', async () => {
    const upload = await bundleRepository(repo);
    const bad = { ...upload, bundle: Buffer.from('hello').toString('base64') };
    await expectError(
      client.createAgent({ text: 'do it', profile: 'plain', repo: bad }),
      'VALIDATION_FAILED',
      /bundle/,
    );
  });

  it('fails an agent whose VM does not boot, with the reason, and refuses to review it', async () => {
    const upload = await bundleRepository(repo);
    const agent = await client.createAgent({ text: 'do it', profile: 'plain', repo: upload });
    let current = agent;
    for (let i = 0; i < 50 && current.state !== 'failed'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      current = await client.getAgent(agent.id);
    }
    assert.equal(current.state, 'failed');
    assert.match(current.stateReason ?? '', /boots no VMs/);
    // Each hint fits the agent's state: nothing to wait for and no VM to review.
    const hints = [
      await expectError(client.review(agent.id), 'INVALID_STATE', /failed/),
      await expectError(client.result(agent.id), 'RESULT_NOT_READY'),
      // The same code as review for a state without a VM (regression: GUEST_UNREACHABLE, exit 1).
      await expectError(client.guest(agent.id, { op: 'exec', command: 'true' }), 'INVALID_STATE'),
      await expectError(client.setAllowedHosts(agent.id, ['example.com']), 'INVALID_STATE'),
    ].map((error) => error.hint);
    // The broker holds exec input to the limit the CLI keeps: a larger line could sink the guest.
    const tooMuch = Buffer.alloc(MAX_EXEC_STDIN_BYTES + 1).toString('base64');
    await expectError(
      client.guest(agent.id, { op: 'exec', command: 'cat', stdin: tooMuch }),
      'VALIDATION_FAILED',
      /stdin is over 8 MiB/,
    );
    for (const hint of hints) {
      assert.match(hint, /failed and has no result or VM: `agentvm logs \w+` says why/);
      assert.doesNotMatch(hint, /Wait until|agentvm review/);
    }
  });

  it('refuses a new agent with IMAGE_MISSING (412) when there is no guest image, and creates nothing', async () => {
    const imageless = await startImagelessBroker({ image: 'missing' });
    try {
      const other = new BrokerClient({ url: imageless.url, token: imageless.token });
      const upload = await bundleRepository(repo);
      const error = await expectError(
        other.createAgent({ text: 'do it', profile: 'plain', repo: upload }),
        'IMAGE_MISSING',
      );
      assert.equal(error.status, 412);
      assert.deepEqual(await other.listAgents(), []);
    } finally {
      await imageless.stop();
    }
  });

  it("answers another user's agent exactly like an unknown id on every route that takes an id, and audits each refusal", async () => {
    const upload = await bundleRepository(repo);
    const agent = await client.createAgent({ text: 'mine', profile: 'plain', repo: upload });
    const malloryToken = broker.store.createToken('mallory');
    const mallory = new BrokerClient({ url, token: malloryToken });
    assert.deepEqual(await mallory.listAgents(), []);
    // Same length as a real id, so that nothing but existence could tell the answers apart.
    const unknown = 'z'.repeat(agent.id.length);
    const routes: Array<{ method: string; path: (id: string) => string; body?: unknown }> = [
      { method: 'GET', path: (id) => `/v1/agents/${id}` },
      { method: 'GET', path: (id) => `/v1/agents/${id}/events?after=0` },
      { method: 'GET', path: (id) => `/v1/agents/${id}/console` },
      { method: 'POST', path: (id) => `/v1/agents/${id}/review`, body: {} },
      { method: 'POST', path: (id) => `/v1/agents/${id}/resume`, body: { message: 'go' } },
      { method: 'POST', path: (id) => `/v1/agents/${id}/cancel`, body: {} },
      { method: 'DELETE', path: (id) => `/v1/agents/${id}` },
      { method: 'DELETE', path: (id) => `/v1/agents/${id}?force=true` },
      { method: 'GET', path: (id) => `/v1/agents/${id}/result` },
      { method: 'GET', path: (id) => `/v1/agents/${id}/result/bundle` },
      {
        method: 'POST',
        path: (id) => `/v1/agents/${id}/guest`,
        body: { request: { op: 'exec', command: 'true' } },
      },
      { method: 'GET', path: (id) => `/v1/agents/${id}/egress` },
      {
        method: 'POST',
        path: (id) => `/v1/agents/${id}/egress`,
        body: { allowedHosts: ['example.com'] },
      },
      { method: 'GET', path: (id) => `/v1/audit?agent=${id}` },
    ];
    const answer = async (route: (typeof routes)[number], id: string) => {
      const response = await fetch(url + route.path(id), {
        method: route.method,
        headers: {
          authorization: `Bearer ${malloryToken}`,
          ...(route.body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: route.body === undefined ? undefined : JSON.stringify(route.body),
      });
      const text = (await response.text()).split(id).join('ID');
      return `${response.status} ${text}`;
    };

    for (const route of routes) {
      const theirs = await answer(route, agent.id);
      const name = `${route.method} ${route.path('ID')}`;
      assert.equal(theirs, await answer(route, unknown), name);
      assert.match(theirs, /^404 .*"code":"AGENT_NOT_FOUND"/, name);
    }

    // The event stream answers a subscription the same way.
    const subscribe = async (agentId: string) => {
      const socket = new WebSocket(`${url.replace(/^http/, 'ws')}/v1/events`, {
        headers: { authorization: `Bearer ${malloryToken}` },
      });
      try {
        await once(socket, 'open');
        socket.send(JSON.stringify({ type: 'subscribe', agentId }));
        const [data] = (await once(socket, 'message')) as [Buffer];
        return data.toString().split(agentId).join('ID');
      } finally {
        socket.close();
      }
    };
    const streamed = await subscribe(agent.id);
    assert.equal(streamed, await subscribe(unknown));
    assert.match(streamed, /"code":"AGENT_NOT_FOUND"/);

    // Each refusal of the real agent left an audit row, which mallory herself cannot read.
    const denied = (await client.audit({ agentId: agent.id })).filter(
      (row) => row.actor === 'mallory',
    );
    assert.equal(denied.length, routes.length);
    assert.ok(denied.every((row) => row.decision === 'deny'));
    assert.deepEqual(await mallory.audit(), []);
    assert.ok(await client.getAgent(agent.id), 'the agent is still there');

    // Verifying the audit log is about a role, not an agent: still FORBIDDEN.
    const verify = await expectError(mallory.verifyAudit(), 'FORBIDDEN');
    assert.equal(verify.status, 403);
    assert.match(verify.hint, /admin token/);
  });

  it('refuses to cancel an agent that has already ended with INVALID_STATE naming its state (regression: it answered 200)', async () => {
    const upload = await bundleRepository(repo);
    const agent = await client.createAgent({ text: 'do it', profile: 'plain', repo: upload });
    await untilState(client, agent.id, 'failed');

    const error = await expectError(
      client.cancel(agent.id),
      'INVALID_STATE',
      new RegExp(`cannot cancel agent ${agent.id}: it has already ended \\(state failed\\)`),
    );
    assert.equal(error.status, 409);
    assert.match(error.hint, new RegExp(`agentvm logs ${agent.id}\`.*agentvm rm ${agent.id}\``));
    assert.equal((await client.getAgent(agent.id)).state, 'failed');
  });

  it('audits a refused action as a deny after its allow, and a command run in the VM with its text', async () => {
    const upload = await bundleRepository(repo);
    const agent = await client.createAgent({ text: 'do it', profile: 'plain', repo: upload });
    await untilState(client, agent.id, 'failed');

    await expectError(client.cancel(agent.id), 'INVALID_STATE');
    const execRefused = await client
      .guest(agent.id, { op: 'exec', command: 'git log --oneline' })
      .then(
        () => assert.fail('an exec in an agent without a VM was not refused'),
        (error: AgentvmError) => error,
      );
    await client.guest(agent.id, { op: 'fs.stat', path: '.' }).catch(() => undefined);

    const rows = (await client.audit({ agentId: agent.id })).map((row) => ({
      action: row.action,
      decision: row.decision,
      refused: row.details.refused,
      command: row.details.command,
    }));
    const after = rows.slice(rows.findIndex((row) => row.action === 'agent.cancel'));
    assert.deepEqual(after, [
      { action: 'agent.cancel', decision: 'allow', refused: undefined, command: undefined },
      { action: 'agent.cancel', decision: 'deny', refused: 'INVALID_STATE', command: undefined },
      {
        action: 'agent.guest',
        decision: 'allow',
        refused: undefined,
        command: 'git log --oneline',
      },
      {
        action: 'agent.guest',
        decision: 'deny',
        refused: execRefused.code,
        command: 'git log --oneline',
      },
    ]);
  });

  it('says a failed agent will never have a result, not that it has none yet', async () => {
    const upload = await bundleRepository(repo);
    const agent = await client.createAgent({ text: 'do it', profile: 'plain', repo: upload });
    await untilState(client, agent.id, 'failed');

    await expectError(
      client.result(agent.id),
      'RESULT_NOT_READY',
      new RegExp(`agent ${agent.id} failed, so it has no result and never will`),
    );
  });

  it('removes an agent that has ended without force', async () => {
    const upload = await bundleRepository(repo);
    const agent = await client.createAgent({ text: 'do it', profile: 'plain', repo: upload });
    await untilState(client, agent.id, 'failed');

    await client.remove(agent.id);
    await expectError(client.getAgent(agent.id), 'AGENT_NOT_FOUND');
  });

  describe('with an agent that has not ended', () => {
    let live: BrokerWithBootSlotTaken;
    let liveClient: BrokerClient;
    let agentId: string;

    // A start holds its agent until the VM boots, which the hanging driver never does: the agent
    // under test is the one queued behind the single boot slot another agent took.
    beforeEach(async () => {
      live = await startBrokerWithBootSlotTaken();
      liveClient = live.client;
      agentId = await live.newAgent();
      await untilState(liveClient, agentId, 'queued');
    });

    afterEach(async () => {
      await live.stop();
    });

    it('cancels it', async () => {
      const agent = await liveClient.cancel(agentId);
      assert.equal(agent.state, 'cancelled');
    });

    it('refuses DELETE without force=true with INVALID_STATE and keeps the agent (regression: it removed it)', async () => {
      const error = await expectError(
        liveClient.remove(agentId),
        'INVALID_STATE',
        new RegExp(`agent ${agentId} is queued, not ended: .*nothing was removed`),
      );
      assert.equal(error.status, 409);
      assert.match(error.hint, new RegExp(`agentvm cancel ${agentId}\`.*force`));
      assert.equal((await liveClient.getAgent(agentId)).state, 'queued');
    });

    it('removes it with force=true', async () => {
      await liveClient.remove(agentId, { force: true });
      await expectError(liveClient.getAgent(agentId), 'AGENT_NOT_FOUND');
    });

    it('refuses a force that is neither true nor false with VALIDATION_FAILED', async () => {
      const response = await fetch(`${live.url}/v1/agents/${agentId}?force=yes`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${live.token}` },
      });
      assert.equal(response.status, 400);
      const body = (await response.json()) as { error: { code: string; message: string } };
      assert.equal(body.error.code, 'VALIDATION_FAILED');
      assert.match(body.error.message, /force must be true or false, not "yes"/);
      assert.equal((await liveClient.getAgent(agentId)).state, 'queued');
    });
  });
});

/** Polls until the agent is in `state` (the test drivers get there within milliseconds). */
async function untilState(client: BrokerClient, id: string, state: string): Promise<void> {
  let current = await client.getAgent(id);
  for (let i = 0; i < 100 && current.state !== state; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    current = await client.getAgent(id);
  }
  assert.equal(current.state, state);
}
