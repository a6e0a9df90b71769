import assert from 'node:assert/strict';
import { backoffDelayMs } from '../../../../extension/src/model/backoff';

describe('backoff (unit)', () => {
  const options = { initialDelayMs: 500, maxDelayMs: 30_000, jitter: 0 };

  it('doubles the delay with each failed attempt', () => {
    assert.deepEqual(
      [0, 1, 2, 3].map((attempt) => backoffDelayMs(attempt, options)),
      [500, 1000, 2000, 4000],
    );
  });

  it('never waits longer than the maximum, even after many attempts', () => {
    assert.equal(backoffDelayMs(10, options), 30_000);
    assert.equal(backoffDelayMs(10_000, options), 30_000);
  });

  it('spreads delays by the jitter fraction in both directions', () => {
    const jittered = { ...options, jitter: 0.2 };
    assert.equal(
      backoffDelayMs(1, jittered, () => 0),
      800,
    );
    assert.equal(
      backoffDelayMs(1, jittered, () => 0.5),
      1000,
    );
    assert.equal(
      backoffDelayMs(1, jittered, () => 0.999999),
      1200,
    );
  });
});
