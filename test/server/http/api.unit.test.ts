import assert from 'node:assert/strict';
import fs from 'node:fs';
import { BrokerClient } from '../../../client/BrokerClient';
import { bundleRepository } from '../../../client/repoBundle';
import { MAX_EXEC_STDIN_BYTES } from '../../../protocol/control';
import { AgentvmError } from '../../../protocol/errors';
import type { Broker } from '../../../server/Broker';
import { startImagelessBroker, type ImagelessBroker } from '../../helpers/imagelessBroker';
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
      await expectError(
        client.guest(agent.id, { op: 'exec', command: 'true' }),
        'GUEST_UNREACHABLE',
      ),
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

  it("does not let one user see or act on another user's agent", async () => {
    const upload = await bundleRepository(repo);
    const agent = await client.createAgent({ text: 'mine', profile: 'plain', repo: upload });
    const other = new BrokerClient({ url, token: broker.store.createToken('mallory') });
    assert.deepEqual(await other.listAgents(), []);
    await expectError(other.getAgent(agent.id), 'FORBIDDEN');
    await expectError(other.cancel(agent.id), 'FORBIDDEN');
    await expectError(other.remove(agent.id), 'FORBIDDEN');
  });
});
