import type { AgentContext } from './AgentContext';
import type { LiveVms } from './LiveVms';
import { formatDuration } from '../policy/limits/formatDuration';

/** Pauses an agent for review (see {@link ReviewSnapshots.pause}). */
export type PauseForReview = (agentId: string, requestId: string, message: string) => Promise<void>;

/**
 * One timer per running agent for the nearest limit (its profile's time limit, or with a policy
 * the nearer of time and cost). When it fires the agent is stopped or paused as the limit says.
 */
export class TimeLimits {
  private readonly timers = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly context: AgentContext,
    private readonly vms: LiveVms,
    private readonly pauseForReview: PauseForReview,
  ) {}

  /**
   * Sets the agent's timer. The wall-clock limit counts from `segmentStartedAt`, when the agent
   * last started running (a start or a resume): a broker that reattaches a running agent after a
   * restart passes when that was, so a restart does not grant the agent another full period.
   */
  arm(id: string, segmentStartedAt = Date.now()): void {
    const record = this.context.journal.record(id);
    const policy = this.context.options.policy;
    const ranMs = Math.max(0, Date.now() - segmentStartedAt);
    const timeLimitMs = record.profileSpec.timeLimitMs;
    const limitMs = policy
      ? policy.limits.msUntilLimit(record, this.vms.liveMs(id), ranMs)
      : timeLimitMs
        ? Math.max(1, timeLimitMs - ranMs)
        : null;
    if (!limitMs) return;

    this.clear(id);
    const timer = setTimeout(
      () => void this.onTimeLimit(id, segmentStartedAt, ranMs + limitMs),
      limitMs,
    );
    timer.unref();
    this.timers.set(id, timer);
  }

  clear(id: string): void {
    clearTimeout(this.timers.get(id));
    this.timers.delete(id);
  }

  clearAll(): void {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }

  private async onTimeLimit(id: string, segmentStartedAt: number, dueRanMs: number): Promise<void> {
    const { journal, locks, options } = this.context;
    const record = journal.record(id);
    if (record.state !== 'running') return;

    // The timer ran its whole course, so at least dueRanMs passed even if the clock reads 1 ms less.
    const ranMs = Math.max(Date.now() - segmentStartedAt, dueRanMs);
    const hit = options.policy?.limits.limitReached(record, ranMs, this.vms.liveMs(id));
    if (options.policy && !hit) return this.arm(id, segmentStartedAt);

    const limitMs = record.profileSpec.timeLimitMs || dueRanMs;
    const message = hit?.message ?? `time limit of ${formatDuration(limitMs)} reached`;
    if (hit) options.policy?.limits.limitHit(record, hit, this.vms.liveMs(id));
    journal.append(id, {
      kind: 'limit',
      message,
      data: { limit: hit?.limit ?? 'time', limitMs, used: hit?.used, allowed: hit?.allowed },
    });
    if ((hit?.action ?? record.profileSpec.onLimit) === 'stop') {
      await locks.run(id, async () => {
        await this.vms.stop(id);
        journal.transition(id, 'failed', { endedAt: Date.now(), stateReason: message });
      });
      return;
    }

    // Pausing for a limit uses the review path without a guest request: resume just continues.
    await locks.run(id, () =>
      this.pauseForReview(id, '', `${message}; resume to grant it the same again`),
    );
  }
}
