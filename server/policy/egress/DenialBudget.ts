/** Refusals of one agent written as rows of their own in each second; later ones are counted. */
export const MAX_DENIAL_ROWS_PER_SECOND = 20;

/** Hosts a summary row names, at most. */
const MAX_SUMMARY_HOSTS = 10;

const WINDOW_MS = 1000;

/** What one summary row says about the refusals it stands for. */
export interface DenialSummary {
  coalesced: number;
  /** How many of them each action had, e.g. `{ "egress.request": 950 }`. */
  actions: Record<string, number>;
  /** The first distinct `host:port`s refused, at most {@link MAX_SUMMARY_HOSTS}. */
  hosts: string[];
  reason: string;
}

/**
 * Bounds how many audit rows one agent's refused requests write: the first
 * {@link MAX_DENIAL_ROWS_PER_SECOND} of each second get their own row, later ones in that second
 * are counted into one summary row written when the second ends. A guest refusing itself in a loop
 * would otherwise write a thousand rows a second, and each is a synchronous write to the broker's
 * database. Allowed requests are not counted here: each of them is audited before it is sent.
 */
export class DenialBudget {
  private windowStartMs = -Infinity;
  private written = 0;
  private held: { count: number; actions: Map<string, number>; hosts: Set<string> } | null = null;
  private timer: NodeJS.Timeout | null = null;

  /**
   * @param writeSummary writes the summary row; called from a timer, so it must not throw.
   * @param nowMs a monotonic clock in milliseconds.
   */
  constructor(
    private readonly writeSummary: (summary: DenialSummary) => void,
    private readonly nowMs: () => number = () => performance.now(),
  ) {}

  /** Whether this refusal gets a row of its own; when not, it is counted into the next summary. */
  admit(action: string, host: unknown, port: unknown): boolean {
    const now = this.nowMs();
    if (now - this.windowStartMs >= WINDOW_MS) {
      this.windowStartMs = now;
      this.written = 0;
    }
    if (this.written < MAX_DENIAL_ROWS_PER_SECOND) {
      this.written++;
      return true;
    }

    const held = (this.held ??= { count: 0, actions: new Map(), hosts: new Set() });
    held.count++;
    held.actions.set(action, (held.actions.get(action) ?? 0) + 1);
    // A refusal before the guest named a host (its headers came too late) adds none.
    if (host !== undefined && held.hosts.size < MAX_SUMMARY_HOSTS)
      held.hosts.add(`${String(host)}:${String(port)}`);
    this.timer ??= setTimeout(() => this.flush(), this.windowStartMs + WINDOW_MS - now);
    return false;
  }

  /** Writes the pending summary now, if any, and stops the timer. Safe to call twice. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const held = this.held;
    this.held = null;
    if (!held) return;

    this.writeSummary({
      coalesced: held.count,
      actions: Object.fromEntries(held.actions),
      hosts: [...held.hosts],
      reason: `more than ${MAX_DENIAL_ROWS_PER_SECOND} refusals in one second; these are counted, not written one by one`,
    });
  }
}
