// Transient errors (a reconnect, a timeout, a loading or failing-over server)
// are retried with backoff until a time budget runs out; others are not.
import { performance } from "node:perf_hooks";
import createDebug from "debug";
import { isTransientMessage } from "../../transient.js";

const debug = createDebug("shardis:migrator");

const BACKOFF_MS = [20, 50, 100, 200, 400, 800, 1000];

/** The target's replicas did not confirm moved keys in time (WAIT answered too few): worth another try, as a replica may come back. */
export class ReplicaWaitError extends Error {
  override readonly name = "ReplicaWaitError";
}

/**
 * Worth another try: the server or the link will likely be back (IOERR,
 * LOADING, timeouts, reconnects, failover: READONLY from a demoted master,
 * NOREPLICAS from one cut off from its replicas, a replica that did not
 * confirm yet).
 */
export function isTransient(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error instanceof ReplicaWaitError) return true;
  return isTransientMessage(error.message);
}

/** The wait before retry number `attempt` (0-based). */
export function backoffMs(attempt: number): number {
  return BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)]!;
}

export interface RetryBudget {
  /** How long one step may keep failing with transient errors. */
  readonly retryMs: number;
  /** Throws when the run was stopped; called before each retry. */
  readonly checkStopped: () => void;
}

/** Runs `op`, retrying transient errors with backoff for up to `budget.retryMs`; then (or for other errors) throws. */
export async function retrying<T>(what: string, budget: RetryBudget, op: () => Promise<T>): Promise<T> {
  const deadline = performance.now() + budget.retryMs;
  for (let attempt = 0; ; attempt++) {
    try {
      return await op();
    } catch (error) {
      const wait = backoffMs(attempt);
      if (!isTransient(error) || performance.now() + wait > deadline) throw error;
      debug("%s: %s; retry %d in %d ms", what, (error as Error).message, attempt + 1, wait);
      await sleep(wait);
      budget.checkStopped();
    }
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
