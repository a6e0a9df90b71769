import assert from 'node:assert/strict';
import { BrokerClient } from '../../../client/BrokerClient';
import type { GuestMessage } from '../../../protocol/control';
import { AgentvmError } from '../../../protocol/errors';
import type { VmmDriver, VmSpec } from '../../../server/vmm/VmmDriver';
import {
  askForReview,
  startFakeVmBroker,
  type FakeVm,
  type FakeVmBroker,
} from '../../helpers/fakeVmDriver';
import { until } from '../../helpers/until';

/** A guest's result event: the agent's (empty) work, exported. */
function resultMessage(seq: number): GuestMessage {
  return {
    type: 'event',
    seq,
    event: {
      kind: 'result',
      baseCommit: 'a'.repeat(40),
      headCommit: 'a'.repeat(40),
      commits: [],
      bundle: '',
      patch: '',
    },
  };
}

function progress(seq: number, message: string): GuestMessage {
  return { type: 'event', seq, event: { kind: 'progress', message } };
}

/** How each of `promises` settled: 'ok' or the error code. */
async function outcomes(promises: Array<Promise<unknown>>): Promise<string[]> {
  const settled = await Promise.allSettled(promises);
  return settled.map((one) =>
    one.status === 'fulfilled'
      ? 'ok'
      : one.reason instanceof AgentvmError
        ? one.reason.code
        : String(one.reason),
  );
}

describe('concurrent requests on one agent and a misbehaving guest (unit)', function () {
  this.timeout(30_000);
  let harness: FakeVmBroker;
  let client: BrokerClient;

  beforeEach(async () => {
    harness = await startFakeVmBroker('agentvm-apitrial', {
      plain: { name: 'plain', command: 'true' },
    });
    // A restore is a fresh FakeVm in the agent's directory.
    const driver: VmmDriver = harness.driver;
    driver.restore = (spec: VmSpec) => harness.driver.boot(spec);
    client = new BrokerClient({ url: harness.url, token: harness.token });
  });

  afterEach(async () => {
    await harness.stop();
  });

  const state = (id: string) => harness.broker.manager.get(id, '', true).state;

  async function runningAgent(): Promise<{ id: string; vm: FakeVm }> {
    const id = await harness.delegate('plain');
    await until(() => state(id) === 'running', 'the agent runs');
    return { id, vm: harness.driver.vms.at(-1)! };
  }

  async function awaitingReview(): Promise<{ id: string; vm: FakeVm }> {
    const agent = await runningAgent();
    askForReview(agent.vm);
    await until(() => state(agent.id) === 'awaiting_review', 'the agent awaits review');
    return agent;
  }

  /**
   * Runs `body` with unhandled rejections caught instead of handed to mocha, and returns them: in
   * the broker process, each would end it (Node 20 throws on an unhandled rejection).
   */
  async function unhandledDuring(body: () => Promise<void>): Promise<unknown[]> {
    const caught: unknown[] = [];
    const onRejection = (reason: unknown) => caught.push(reason);
    const mochaHandlers = process.listeners('unhandledRejection');
    process.removeAllListeners('unhandledRejection');
    process.on('unhandledRejection', onRejection);
    try {
      await body();
      await new Promise((resolve) => setTimeout(resolve, 200));
    } finally {
      process.removeListener('unhandledRejection', onRejection);
      for (const handler of mochaHandlers) process.on('unhandledRejection', handler);
    }
    return caught;
  }

  it('answers one of two resumes sent at once and refuses the other with INVALID_STATE; the answer is delivered once', async () => {
    const { id } = await awaitingReview();

    const results = await outcomes([client.resume(id, 'first'), client.resume(id, 'second')]);

    assert.deepEqual(results.sort(), ['INVALID_STATE', 'ok']);
    assert.equal(state(id), 'running');
    const restored = harness.driver.vms.at(-1)!;
    const answers = restored.sent.filter((message) => message.type === 'review-answer');
    assert.equal(answers.length, 1);
    const timeline = await client.events(id);
    assert.equal(timeline.filter((event) => event.kind === 'answer').length, 1);
  });

  it('review and cancel at once leave the agent cancelled with no VM running', async () => {
    const { id } = await awaitingReview();

    const results = await outcomes([client.review(id), client.cancel(id)]);

    assert.deepEqual(results, ['ok', 'ok']);
    assert.equal(state(id), 'cancelled');
    assert.ok(harness.driver.vms.every((vm) => vm === harness.driver.vms[0] || vm.stopped));
  });

  it('resume sent while a review is restoring waits for it and then resumes', async () => {
    const { id } = await awaitingReview();

    const results = await outcomes([client.review(id), client.resume(id, 'go on')]);

    assert.deepEqual(results, ['ok', 'ok']);
    assert.equal(state(id), 'running');
  });

  it('cancel and rm --force at once remove the agent and leave the broker answering', async () => {
    const { id, vm } = await runningAgent();

    const [cancelled, removed] = await outcomes([
      client.cancel(id),
      client.remove(id, { force: true }),
    ]);

    // Whichever the broker takes first: a cancel that comes after the removal finds no agent.
    assert.ok(['ok', 'AGENT_NOT_FOUND'].includes(cancelled!), cancelled);
    assert.equal(removed, 'ok');
    assert.ok(vm.stopped);
    await assert.rejects(client.getAgent(id), (error: AgentvmError) => {
      return error.code === 'AGENT_NOT_FOUND';
    });
    assert.equal((await client.health()).ok, true);
  });

  it('passes a guest path with ../ to the VM as it is, reading nothing on the host', async () => {
    const { id } = await awaitingReview();
    await client.review(id);
    const restored = harness.driver.vms.at(-1)!;

    const reading = client.guest(id, { op: 'fs.readFile', path: '../../../../etc/passwd' });
    await until(() => restored.requests.length === 1, 'the request reached the guest');
    assert.deepEqual(restored.requests[0]!.request, {
      op: 'fs.readFile',
      path: '../../../../etc/passwd',
    });
    restored.requests[0]!.answer({ refused: 'the guest decides' });

    assert.deepEqual(await reading, { refused: 'the guest decides' });
  });

  it('answers a guest call in flight with GUEST_UNREACHABLE when rm --force ends the VM under it', async () => {
    const { id } = await awaitingReview();
    await client.review(id);
    const restored = harness.driver.vms.at(-1)!;
    // As the real control channel does when its VM stops: pending requests are refused.
    const stop = restored.stop.bind(restored);
    restored.stop = async () => {
      await stop();
      for (const pending of restored.requests) {
        const closed = Promise.reject(
          new AgentvmError('GUEST_UNREACHABLE', 'the control channel is closed'),
        );
        closed.catch(() => undefined);
        pending.answer(closed);
      }
    };

    const listing = outcomes([client.guest(id, { op: 'fs.readdir', path: '.' })]);
    await until(() => restored.requests.length === 1, 'the request reached the guest');
    await client.remove(id, { force: true });

    assert.deepEqual(await listing, ['GUEST_UNREACHABLE']);
    assert.equal((await client.health()).ok, true);
  });

  it('stores a duplicated or an out-of-order guest event once and acknowledges it every time', async () => {
    const { id, vm } = await runningAgent();

    vm.fromGuest({ type: 'event', seq: 5, event: { kind: 'phase', phase: 'running' } });
    vm.fromGuest({ type: 'event', seq: 5, event: { kind: 'phase', phase: 'running' } });
    vm.fromGuest({ type: 'event', seq: 3, event: { kind: 'phase', phase: 'checkout' } });

    const acks = vm.sent.filter((message) => message.type === 'ack');
    assert.deepEqual(
      acks.map((ack) => (ack.type === 'ack' ? ack.seq : -1)),
      [5, 5, 3],
    );
    const phases = (await client.events(id)).filter((event) => event.kind === 'phase');
    assert.equal(phases.length, 1);
  });

  it('a guest that jumps to the largest safe seq only silences itself; its agent can still be cancelled', async () => {
    const { id, vm } = await runningAgent();

    vm.fromGuest(progress(Number.MAX_SAFE_INTEGER, 'far ahead'));
    vm.fromGuest(progress(7, 'dropped as a replay'));
    await client.cancel(id);

    assert.equal(state(id), 'cancelled');
  });

  it('keeps a cancelled agent cancelled when its result arrives while the cancel stops the VM (regression: it turned failed, or done after an exit 0)', async () => {
    const { id, vm } = await runningAgent();
    const stop = vm.stop.bind(vm);
    vm.stop = async () => {
      vm.fromGuest(resultMessage(2));
      await stop();
    };

    await client.cancel(id);
    await until(
      async () => (await client.events(id)).some((event) => event.kind === 'result'),
      'the result was stored',
    );
    await new Promise((resolve) => setTimeout(resolve, 200));

    assert.equal(state(id), 'cancelled');
  });

  it('survives a review request that arrives while rm --force stops the VM, with no unhandled rejection', async () => {
    const { id, vm } = await runningAgent();
    const stop = vm.stop.bind(vm);
    vm.stop = async () => {
      askForReview(vm);
      await stop();
    };

    const unhandled = await unhandledDuring(() => client.remove(id, { force: true }));

    assert.deepEqual(unhandled.map(String), []);
    await assert.rejects(client.getAgent(id), /no agent with id/);
    assert.equal((await client.health()).ok, true);
  });

  it('survives a result that arrives while rm --force stops the VM, with no unhandled rejection', async () => {
    const { id, vm } = await runningAgent();
    const stop = vm.stop.bind(vm);
    vm.stop = async () => {
      vm.fromGuest(resultMessage(2));
      await stop();
    };

    const unhandled = await unhandledDuring(() => client.remove(id, { force: true }));

    assert.deepEqual(unhandled.map(String), []);
    await assert.rejects(client.getAgent(id), /no agent with id/);
    assert.equal((await client.health()).ok, true);
  });
});
