import assert from 'node:assert/strict';
import type { Agent } from '../../../../protocol/api';
import type { BrokerStatus } from '../../../../extension/src/model/AgentStore';
import { PanelVmTime } from '../../../../extension/src/webview/PanelVmTime';
import { anAgent } from '../../../helpers/anAgent';

/** A store holding one agent, received `receivedAgoMs` before the test's start, and a panel's view of it. */
function harness(agent: Agent | undefined, receivedAgoMs = 0) {
  const store = {
    agent,
    status: 'connected' as BrokerStatus,
    receivedAtMs: Date.now() - receivedAgoMs,
    get: () => store.agent,
    receivedAt: () => store.receivedAtMs,
  };
  const posted: (string | null)[] = [];
  const view = { visible: true };
  const vmTime = new PanelVmTime(
    store,
    'a1',
    (text) => posted.push(text),
    () => view.visible,
  );
  return { store, posted, view, vmTime };
}

describe('PanelVmTime (unit)', () => {
  const toDispose: PanelVmTime[] = [];
  afterEach(() => {
    for (const vmTime of toDispose.splice(0)) vmTime.dispose();
  });

  it('redraws a running VM time each second while the panel is visible', async () => {
    const { posted, vmTime } = harness(anAgent({ state: 'running', vmSeconds: 60 }), 5_000);
    toDispose.push(vmTime);
    vmTime.update(true);
    assert.match(String(posted[0]), /^1m0\ds so far$/);
    assert.equal(vmTime.isTicking, true);

    await new Promise((resolve) => setTimeout(resolve, 1_300));
    assert.ok(posted.length >= 2, `posted ${JSON.stringify(posted)}`);
    assert.notEqual(posted.at(-1), posted[0], 'the figure moved on');
  });

  it('posts only what changed, unless the webview has just loaded', () => {
    const { posted, vmTime } = harness(anAgent({ state: 'done', vmSeconds: 60 }));
    toDispose.push(vmTime);
    vmTime.update(true);
    vmTime.update();
    vmTime.update();
    assert.deepEqual(posted, ['1m00s']);
    vmTime.update(true);
    assert.deepEqual(posted, ['1m00s', '1m00s']);
    assert.equal(vmTime.isTicking, false);
  });

  it('stops when the VM stops, the panel is hidden or the stream is lost, and says when the figure was true', () => {
    const { store, posted, view, vmTime } = harness(anAgent({ state: 'running', vmSeconds: 60 }));
    toDispose.push(vmTime);
    vmTime.update(true);
    assert.equal(vmTime.isTicking, true);

    view.visible = false;
    vmTime.update();
    assert.equal(vmTime.isTicking, false, 'hidden');
    view.visible = true;
    vmTime.update();
    assert.equal(vmTime.isTicking, true, 'visible again');

    store.status = 'unreachable';
    vmTime.update();
    assert.equal(vmTime.isTicking, false, 'stream lost');
    assert.match(String(posted.at(-1)), /^1m00s at \d\d:\d\d$/);

    store.status = 'connected';
    store.agent = anAgent({ state: 'awaiting_review', vmSeconds: 75 });
    vmTime.update();
    assert.equal(vmTime.isTicking, false, 'VM saved for review');
    assert.equal(posted.at(-1), '1m15s');
  });

  it('posts null, and never ticks, for a broker that does not send the VM time', () => {
    const { posted, vmTime } = harness(anAgent({ state: 'running' }));
    toDispose.push(vmTime);
    vmTime.update(true);
    assert.deepEqual(posted, [null]);
    assert.equal(vmTime.isTicking, false);
  });

  it('posts null for an agent the store no longer holds', () => {
    const { posted, vmTime } = harness(undefined);
    toDispose.push(vmTime);
    vmTime.update(true);
    assert.deepEqual(posted, [null]);
  });

  it('stops ticking when disposed', () => {
    const { vmTime } = harness(anAgent({ state: 'reviewing', vmSeconds: 1 }));
    vmTime.update(true);
    assert.equal(vmTime.isTicking, true);
    vmTime.dispose();
    assert.equal(vmTime.isTicking, false);
  });
});
