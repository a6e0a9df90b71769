import assert from 'node:assert/strict';
import {
  checkShape,
  costUnitSeconds,
  evaluateLimits,
  msUntilNextLimit,
  type AgentLimits,
} from '../../../../server/policy/limits/evaluateLimits';

describe('evaluateLimits (unit)', () => {
  const limits: AgentLimits = {
    timeLimitMs: 60_000,
    maxMemoryMiB: 1024,
    maxVcpus: 2,
    costBudgetUnitSeconds: 40,
    onLimit: 'pause',
  };
  const small = { memoryMiB: 1024, vcpus: 1 };

  it('finds no limit for an agent within all of them', () => {
    assert.equal(evaluateLimits({ ...small, runningMs: 10_000 }, limits), null);
  });

  it('pauses on the wall clock when the profile says pause', () => {
    const hit = evaluateLimits(
      { ...small, runningMs: 60_000 },
      { ...limits, costBudgetUnitSeconds: 0 },
    );

    assert.equal(hit?.limit, 'time');
    assert.equal(hit?.action, 'pause');
    assert.match(hit!.message, /time limit reached.*paused for review/);
  });

  it('reports a 150 s limit as 2 min 30 s, not rounded to 3 min', () => {
    const hit = evaluateLimits(
      { ...small, runningMs: 150_000 },
      { ...limits, timeLimitMs: 150_000, costBudgetUnitSeconds: 0 },
    );

    assert.match(hit!.message, /the agent ran for 2 min 30 s; the limit is 2 min 30 s/);
  });

  it('stops on the cost budget when the profile says stop', () => {
    // 1 vCPU + 1 GiB = 2 units; 20 s × 2 = 40 unit-seconds.
    const hit = evaluateLimits({ ...small, runningMs: 20_000 }, { ...limits, onLimit: 'stop' });

    assert.equal(costUnitSeconds({ ...small, runningMs: 20_000 }), 40);
    assert.equal(hit?.limit, 'cost');
    assert.equal(hit?.action, 'stop');
  });

  it('reports memory in use over the limit before the clock', () => {
    const hit = evaluateLimits({ ...small, runningMs: 90_000, memoryUsedMiB: 2000 }, limits);

    assert.equal(hit?.limit, 'memory');
  });

  it('refuses a shape over the memory or vCPU limit with a stop, whatever onLimit says', () => {
    assert.equal(checkShape({ memoryMiB: 2048, vcpus: 1 }, limits)?.limit, 'memory');
    assert.equal(checkShape({ memoryMiB: 512, vcpus: 4 }, limits)?.action, 'stop');
    assert.equal(checkShape({ memoryMiB: 512, vcpus: 2 }, limits), null);
  });

  it('treats zero as no limit', () => {
    const none: AgentLimits = {
      timeLimitMs: 0,
      maxMemoryMiB: 0,
      maxVcpus: 0,
      costBudgetUnitSeconds: 0,
      onLimit: 'stop',
    };

    assert.equal(evaluateLimits({ memoryMiB: 65536, vcpus: 64, runningMs: 1e12 }, none), null);
    assert.equal(msUntilNextLimit({ memoryMiB: 512, vcpus: 1, runningMs: 0 }, none), null);
  });

  it('tells how long until the nearest of the clock and the budget', () => {
    // Cost: 2 units/s, 40 budget → 20 s; clock: 60 s. Already 5 s in.
    assert.equal(msUntilNextLimit({ ...small, runningMs: 5_000 }, limits), 15_000);
    assert.equal(msUntilNextLimit({ ...small, runningMs: 90_000 }, limits), 0);
  });
});
