/** How many progress messages an agent may store per window before the rest are coalesced. */
export interface ProgressThrottleOptions {
  /** Messages stored as they come in each window; 5 by default. */
  maxPerWindow?: number;
  /** Window length in milliseconds; 1000 by default. */
  windowMs?: number;
  /** Stores the latest held message at the end of a busy window; `dropped` were never stored. */
  flush: (agentId: string, message: string, dropped: number) => void;
  /** Clock in milliseconds; `performance.now` by default. */
  now?: () => number;
  /** Runs `callback` after `delayMs`; an unref'd `setTimeout` by default. */
  schedule?: (callback: () => void, delayMs: number) => { cancel(): void };
}

interface AgentWindow {
  startedAt: number;
  stored: number;
  held: string | null;
  dropped: number;
  timer: { cancel(): void } | null;
}

/**
 * Rate limit for `agentctl progress`, per agent: the first few messages of each window are stored,
 * later ones only replace a held message, which is stored when the window ends. A flood of
 * progress therefore costs at most `maxPerWindow + 1` rows per window, and the latest word of the
 * agent is never lost.
 */
export class ProgressThrottle {
  private readonly windows = new Map<string, AgentWindow>();
  private readonly maxPerWindow: number;
  private readonly windowMs: number;
  private readonly now: () => number;
  private readonly schedule: NonNullable<ProgressThrottleOptions['schedule']>;

  constructor(private readonly options: ProgressThrottleOptions) {
    this.maxPerWindow = options.maxPerWindow ?? 5;
    this.windowMs = options.windowMs ?? 1000;
    this.now = options.now ?? (() => performance.now());
    this.schedule = options.schedule ?? scheduleUnref;
  }

  /** True when `message` should be stored now; false when it is held (or replaced a held one). */
  offer(agentId: string, message: string): boolean {
    const now = this.now();
    let window = this.windows.get(agentId);
    if (!window || (window.held === null && now - window.startedAt >= this.windowMs)) {
      window = { startedAt: now, stored: 0, held: null, dropped: 0, timer: null };
      this.windows.set(agentId, window);
    }

    if (window.held === null && window.stored < this.maxPerWindow) {
      window.stored++;
      return true;
    }

    if (window.held !== null) window.dropped++;
    window.held = message;
    if (!window.timer) {
      const delayMs = Math.max(0, window.startedAt + this.windowMs - now);
      window.timer = this.schedule(() => this.release(agentId), delayMs);
    }
    return false;
  }

  /** Stores every held message now (broker shutdown) and forgets all windows. */
  flushAll(): void {
    for (const agentId of [...this.windows.keys()]) this.release(agentId, false);
    this.windows.clear();
  }

  /** Forgets an agent, storing its held message first. */
  forget(agentId: string): void {
    this.release(agentId, false);
    this.windows.delete(agentId);
  }

  private release(agentId: string, openWindow = true): void {
    const window = this.windows.get(agentId);
    if (!window) return;

    window.timer?.cancel();
    window.timer = null;
    const { held, dropped } = window;
    if (held === null) return;

    // The released message counts against a fresh window, so a steady flood stays at the rate.
    if (openWindow) {
      this.windows.set(agentId, {
        startedAt: this.now(),
        stored: 1,
        held: null,
        dropped: 0,
        timer: null,
      });
    } else {
      window.held = null;
      window.dropped = 0;
    }
    this.options.flush(agentId, held, dropped);
  }
}

function scheduleUnref(callback: () => void, delayMs: number): { cancel(): void } {
  const timer = setTimeout(callback, delayMs);
  timer.unref();
  return { cancel: () => clearTimeout(timer) };
}
