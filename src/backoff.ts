/** Reconnect backoff for the connections shardis opens (groups and coordinator). */

/** Shape of the backoff: exponential from `baseMs`, doubling per attempt, capped at `capMs`. */
export interface BackoffOptions {
  /**
   * The window of the first retry, in ms.
   * @default 50
   */
  baseMs?: number;
  /**
   * The largest window, in ms.
   * @default 2000
   */
  capMs?: number;
}

export const DEFAULT_BACKOFF = { baseMs: 50, capMs: 2000 } as const;

/**
 * The delay before reconnect attempt `attempt` (1-based), with "full jitter":
 * a uniform draw in [0, min(capMs, baseMs * 2^(attempt-1))). Clients that
 * lost a group at the same moment thus spread their reconnects over the whole
 * window instead of arriving in lockstep. `random` is a draw in [0, 1).
 */
export function backoffDelay(attempt: number, options: BackoffOptions = {}, random: number = Math.random()): number {
  const baseMs = options.baseMs ?? DEFAULT_BACKOFF.baseMs;
  const capMs = Math.max(baseMs, options.capMs ?? DEFAULT_BACKOFF.capMs);
  const n = Number.isFinite(attempt) && attempt > 1 ? Math.floor(attempt) : 1;
  // 2^(n-1) overflows to Infinity for large n; min() keeps the cap.
  const window = Math.min(capMs, baseMs * 2 ** Math.min(n - 1, 52));
  return Math.floor(Math.min(Math.max(random, 0), 0.999999) * window);
}

/**
 * An ioredis `retryStrategy` with exponential backoff and full jitter
 * (never gives up; ioredis' `maxRetriesPerRequest` still fails the commands
 * that wait). shardis gives it to every connection it opens unless
 * `redisOptions.retryStrategy` is set.
 */
export function jitteredRetryStrategy(options: BackoffOptions = {}): (times: number) => number {
  return (times) => backoffDelay(times, options);
}
