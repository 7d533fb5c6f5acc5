/**
 * Reconnect delays: exponential with "equal jitter" (half fixed, half random),
 * so a gateway restart is not met by every tab reconnecting at the same instant,
 * yet no tab waits much less than the schedule says.
 */
export interface BackoffOptions {
  baseMs: number;
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 500, maxMs: 30_000 };

/** The delay before reconnect attempt `attempt` (0 = the first retry). `random` is in [0, 1). */
export function backoffDelay(
  attempt: number,
  random: () => number = Math.random,
  { baseMs, maxMs }: BackoffOptions = DEFAULT_BACKOFF,
): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
  const half = ceiling / 2;
  return Math.round(half + random() * half);
}
