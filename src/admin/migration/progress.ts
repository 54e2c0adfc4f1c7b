// Speed and time left of a move, from counters. Pure.

/**
 * Keys of the moving slots on the source, estimated from its DBSIZE as if
 * its keys were spread evenly over the slots it owns (the moving ones included).
 */
export function estimateKeys(dbsize: number, movingSlots: number, ownedSlots: number): number {
  if (!(ownedSlots > 0) || !(dbsize > 0)) return 0;
  return Math.round((dbsize * Math.min(movingSlots, ownedSlots)) / ownedSlots);
}

/** Keys per second; 0 before anything was measured. */
export function keysPerSec(keys: number, ms: number): number {
  return ms > 0 && keys > 0 ? Math.round((keys * 1000) / ms) : 0;
}

/** Time left to move `total - moved` keys at `perSec`; null without a speed yet. */
export function etaMs(total: number, moved: number, perSec: number): number | null {
  if (!(perSec > 0)) return null;
  return Math.round((Math.max(0, total - moved) * 1000) / perSec);
}
