import { performance } from 'node:perf_hooks';

/**
 * Calls `onExpire` once `limitMs` of unpaused time has passed. Paused while the agent waits for a
 * human review, so a reviewer's think time does not eat the agent's time limit.
 */
export class PausableDeadline {
  private remainingMs: number;
  private startedAt: number | null = null;
  private timer: NodeJS.Timeout | null = null;
  private done = false;

  constructor(
    limitMs: number,
    private readonly onExpire: () => void,
  ) {
    this.remainingMs = limitMs;
  }

  start(): void {
    if (this.done || this.timer) return;

    this.startedAt = performance.now();
    this.timer = setTimeout(() => {
      this.done = true;
      this.timer = null;
      this.onExpire();
    }, this.remainingMs);
  }

  pause(): void {
    if (!this.timer || this.startedAt === null) return;

    clearTimeout(this.timer);
    this.timer = null;
    this.remainingMs = Math.max(0, this.remainingMs - (performance.now() - this.startedAt));
    this.startedAt = null;
  }

  dispose(): void {
    this.done = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
