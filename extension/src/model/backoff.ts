/** Reconnect delays for the event stream, in milliseconds. */
export interface BackoffOptions {
  initialDelayMs: number;
  maxDelayMs: number;
  /** Fraction of the delay added or removed at random so many windows do not reconnect at once. */
  jitter: number;
}

export const defaultBackoff: BackoffOptions = {
  initialDelayMs: 500,
  maxDelayMs: 30_000,
  jitter: 0.2,
};

/**
 * Delay before reconnect attempt `attempt` (0-based): doubling from the initial delay up to the
 * maximum. `random` returns a number in [0, 1) and is injectable for tests.
 */
export function backoffDelayMs(
  attempt: number,
  options: BackoffOptions = defaultBackoff,
  random: () => number = Math.random,
): number {
  const base = Math.min(options.maxDelayMs, options.initialDelayMs * 2 ** Math.min(attempt, 30));
  const spread = base * options.jitter * (random() * 2 - 1);
  return Math.max(0, Math.round(Math.min(options.maxDelayMs, base + spread)));
}
