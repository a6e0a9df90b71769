import assert from 'node:assert/strict';
import type { AgentState } from '../../../protocol/api';
import type { HostMessage } from '../../../protocol/control';
import type { VmmDriver, VmSpec } from '../../../server/vmm/VmmDriver';
import {
  askForReview,
  startFakeVmBroker,
  type FakeVm,
  type FakeVmBroker,
} from '../../helpers/fakeVmDriver';
import { until } from '../../helpers/until';

describe("a guest's review request is stored before the guest hears it arrived (unit)", function () {
  this.timeout(30_000);
  let harness: FakeVmBroker;

  beforeEach(async () => {
    harness = await startFakeVmBroker('agentvm-review-ack', {
      plain: { name: 'plain', command: 'true' },
    });
    // A restore is a fresh FakeVm in the agent's directory.
    const driver: VmmDriver = harness.driver;
    driver.restore = (spec: VmSpec) => harness.driver.boot(spec);
  });

  afterEach(async () => {
    await harness.stop();
  });

  const row = (id: string) => harness.broker.store.getAgent(id)!;

  async function runningAgent(): Promise<{ id: string; vm: FakeVm }> {
    const id = await harness.delegate('plain');
    await until(() => row(id).state === 'running', 'the agent runs');
    return { id, vm: harness.driver.vms.at(-1)! };
  }

  /** The stored agent as it was when the broker acknowledged guest event `seq` to `vm`. */
  function storedAtAck(vm: FakeVm, id: string, seq: number) {
    const seen: { state?: AgentState; requestId?: string; events?: string[] } = {};
    const send = vm.channel.send.bind(vm.channel);
    vm.channel.send = (message: HostMessage) => {
      if (message.type === 'ack' && message.seq === seq) {
        const record = row(id);
        seen.state = record.state;
        seen.requestId = record.review?.requestId;
        seen.events = harness.broker.store.events(id).map((event) => event.message);
      }
      send(message);
    };
    return seen;
  }

  it('stores `pausing` with the request before it acknowledges the review event (regression: a broker killed in between lost the request the guest was told had arrived)', async () => {
    const { id, vm } = await runningAgent();
    const atAck = storedAtAck(vm, id, 1);

    askForReview(vm);

    assert.equal(atAck.state, 'pausing');
    assert.equal(atAck.requestId, 'r1');
    await until(() => row(id).state === 'awaiting_review', 'the agent awaits review');
    const states = harness.broker.store
      .events(id)
      .filter((event) => event.kind === 'state')
      .map((event) => event.message);
    assert.deepEqual(states.slice(-2), ['pausing', 'awaiting_review'], 'pausing is stored once');
  });

  it('stores a review asked while another is open as waiting its turn before it acknowledges it', async () => {
    const { id, vm } = await runningAgent();
    askForReview(vm);
    await until(() => row(id).state === 'awaiting_review', 'the agent awaits review');
    await harness.broker.manager.review(id);
    const restored = harness.driver.vms.at(-1)!;
    const atAck = storedAtAck(restored, id, 2);

    restored.fromGuest({
      type: 'event',
      seq: 2,
      event: { kind: 'review', requestId: 'r2', message: 'and this' },
    });

    assert.equal(atAck.state, 'reviewing');
    assert.ok(
      atAck.events?.some((message) => /review requested while another is open/.test(message)),
      atAck.events?.join('\n'),
    );
    await harness.broker.manager.resume(id, 'ok');
    await until(() => row(id).review?.requestId === 'r2', 'the second review is asked');
  });
});
