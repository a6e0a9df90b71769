import assert from 'node:assert/strict';
import { ProgressThrottle } from '../../../server/agents/ProgressThrottle';

/** A throttle on a hand-moved clock with timers the test fires. */
function throttle(maxPerWindow = 3) {
  let now = 0;
  const timers: Array<{ at: number; callback: () => void; cancelled: boolean }> = [];
  const flushed: Array<{ agentId: string; message: string; dropped: number }> = [];
  const subject = new ProgressThrottle({
    maxPerWindow,
    windowMs: 1000,
    flush: (agentId, message, dropped) => flushed.push({ agentId, message, dropped }),
    now: () => now,
    schedule: (callback, delayMs) => {
      const timer = { at: now + delayMs, callback, cancelled: false };
      timers.push(timer);
      return { cancel: () => (timer.cancelled = true) };
    },
  });
  const advanceTo = (time: number) => {
    now = time;
    for (const timer of timers.splice(0)) {
      if (timer.cancelled) continue;
      if (timer.at <= now) timer.callback();
      else timers.push(timer);
    }
  };
  return { subject, flushed, advanceTo, pendingTimers: () => timers.filter((t) => !t.cancelled) };
}

describe('ProgressThrottle (unit)', () => {
  it('stores the first messages of a window and holds only the latest of the rest', () => {
    const { subject, flushed, advanceTo } = throttle(3);
    const stored = ['1', '2', '3', '4', '5', '6'].map((message) => subject.offer('a', message));

    assert.deepEqual(stored, [true, true, true, false, false, false]);
    assert.deepEqual(flushed, []);

    advanceTo(1000);
    assert.deepEqual(flushed, [{ agentId: 'a', message: '6', dropped: 2 }]);
  });

  it('keeps a 2000-message flood to a handful of stored rows per window, ending with the last word', () => {
    const { subject, flushed, advanceTo } = throttle(5);
    let storedNow = 0;
    for (let index = 0; index < 2000; index++) {
      // 2000 messages over 35 s, as in the red-team report.
      advanceTo(Math.floor((index * 35_000) / 2000));
      if (subject.offer('a', `step ${index}`)) storedNow++;
    }
    advanceTo(40_000);

    const rows = storedNow + flushed.length;
    assert.ok(rows <= 36 * 6, `${rows} rows stored`);
    assert.equal(flushed.at(-1)?.message, 'step 1999');
  });

  it('counts each agent separately', () => {
    const { subject } = throttle(1);
    assert.equal(subject.offer('a', 'x'), true);
    assert.equal(subject.offer('b', 'x'), true);
    assert.equal(subject.offer('a', 'y'), false);
  });

  it('stores held messages at once on flushAll and leaves no timer behind', () => {
    const { subject, flushed, pendingTimers } = throttle(1);
    subject.offer('a', 'first');
    subject.offer('a', 'held');
    subject.flushAll();

    assert.deepEqual(flushed, [{ agentId: 'a', message: 'held', dropped: 0 }]);
    assert.equal(pendingTimers().length, 0);
  });

  it('starts a fresh window after a quiet second', () => {
    const { subject, advanceTo } = throttle(1);
    assert.equal(subject.offer('a', 'x'), true);
    advanceTo(1500);
    assert.equal(subject.offer('a', 'y'), true);
  });
});
