import assert from 'node:assert/strict';
import type { AgentState } from '../../../../protocol/api';
import { vmTimeCounts, vmTimeText } from '../../../../extension/src/model/vmTime';
import { anAgent } from '../../../helpers/anAgent';

/** Local `HH:MM` of epoch milliseconds, as the figure of a stale VM time names it. */
function clock(ms: number): string {
  const date = new Date(ms);
  return [date.getHours(), date.getMinutes()].map((n) => String(n).padStart(2, '0')).join(':');
}

describe('vmTime (unit)', () => {
  const receivedAtMs = Date.UTC(2026, 0, 5, 9, 41, 30);
  const live = { receivedAtMs, live: true, nowMs: receivedAtMs + 53_000 };

  it('says nothing when the broker does not send the VM time (brokers older than vmSeconds)', () => {
    const agent = anAgent({ state: 'running' });
    assert.equal(agent.vmSeconds, undefined);
    assert.equal(vmTimeText(agent, live), undefined);
    assert.equal(vmTimeCounts(agent, true), false);
  });

  it('counts a running VM on from when its figure arrived, while the stream is connected', () => {
    for (const state of ['running', 'pausing', 'reviewing'] as AgentState[]) {
      const agent = anAgent({ state, vmSeconds: 74.4 });
      assert.equal(vmTimeText(agent, live), '2m07s so far', state);
      assert.equal(vmTimeCounts(agent, true), true, state);
    }
  });

  it('shows the figure as it arrived, with its time, when the stream is down and the VM may run on', () => {
    const agent = anAgent({ state: 'running', vmSeconds: 74.4 });
    assert.equal(vmTimeText(agent, { ...live, live: false }), `1m14s at ${clock(receivedAtMs)}`);
    assert.equal(vmTimeCounts(agent, false), false);
  });

  it('shows a final figure, not counted on, when no VM runs', () => {
    for (const state of [
      'queued',
      'starting',
      'awaiting_review',
      'restoring',
      'done',
      'failed',
      'cancelled',
    ] as AgentState[]) {
      const agent = anAgent({ state, vmSeconds: 74.4 });
      assert.equal(vmTimeText(agent, live), '1m14s', state);
      assert.equal(vmTimeText(agent, { ...live, live: false }), '1m14s', state);
      assert.equal(vmTimeCounts(agent, true), false, state);
    }
  });

  it('shows a VM that has not run yet as 0s, since the broker said so', () => {
    assert.equal(vmTimeText(anAgent({ state: 'queued', vmSeconds: 0 }), live), '0s');
  });

  it('does not count backwards when the clock is behind the time the figure arrived', () => {
    const agent = anAgent({ state: 'running', vmSeconds: 74.4 });
    assert.equal(vmTimeText(agent, { ...live, nowMs: receivedAtMs - 60_000 }), '1m14s so far');
  });
});
