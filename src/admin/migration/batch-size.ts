// How many keys go into one MIGRATE: sized by a time budget, not a fixed
// count (DESIGN §5: MIGRATE blocks the source's single thread, about 0.25 ms
// per call plus about 7 µs per small key on Redis 7.0). Pure.

/** What the sizing aims at. */
export interface BatchBudget {
  /** Time one MIGRATE call should take, in ms. */
  readonly budgetMs: number;
  /** Never more keys than this in one call. */
  readonly maxKeys: number;
}

/** What the sizer has learned so far. */
export interface BatchSizer {
  /** Keys to put in the next MIGRATE. */
  readonly size: number;
  /** Smoothed cost per key, in ms (null until a call was measured). */
  readonly perKeyMs: number | null;
}

/** Fixed cost of one MIGRATE call (round trip, connection to the target), in ms. */
export const CALL_OVERHEAD_MS = 0.3;
/** The first batch, before anything was measured. */
export const FIRST_BATCH = 64;
/** A batch grows at most this much from one call to the next (one fast call is not proof). */
const MAX_GROWTH = 2;
/** Weight of the newest measure in the smoothed per-key cost. */
const SMOOTHING = 0.3;
/** Below this the per-key cost is noise (and would make batches unbounded). */
const MIN_PER_KEY_MS = 0.0005;

export function firstSizer(budget: BatchBudget): BatchSizer {
  return { size: clamp(FIRST_BATCH, budget), perKeyMs: null };
}

/**
 * The sizer after a MIGRATE of `keys` keys took `ms`: the per-key cost is
 * smoothed, and the next size is what fits the budget, growing at most
 * twofold per call, shrinking at once when a call ran over.
 */
export function nextSizer(sizer: BatchSizer, sample: { keys: number; ms: number }, budget: BatchBudget): BatchSizer {
  if (!(sample.keys > 0) || !Number.isFinite(sample.ms) || sample.ms < 0) return sizer;
  const measured = Math.max(MIN_PER_KEY_MS, (sample.ms - CALL_OVERHEAD_MS) / sample.keys);
  const smoothed = sizer.perKeyMs === null ? measured : sizer.perKeyMs * (1 - SMOOTHING) + measured * SMOOTHING;
  // A call that ran over the budget counts in full at once: the source's latency matters more than speed.
  const perKeyMs = sample.ms > budget.budgetMs ? Math.max(smoothed, measured) : smoothed;
  const fits = Math.floor(Math.max(0, budget.budgetMs - CALL_OVERHEAD_MS) / perKeyMs);
  const grown = Math.min(fits, sizer.size * MAX_GROWTH);
  return { size: clamp(grown, budget), perKeyMs };
}

function clamp(size: number, budget: BatchBudget): number {
  return Math.max(1, Math.min(budget.maxKeys, Math.floor(size)));
}
