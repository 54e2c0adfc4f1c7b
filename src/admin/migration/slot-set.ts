// The set of slots a migration moves, as a flag per slot, and the filtering of
// SCAN's keys by it. Pure: no I/O.
import { ArgumentError } from "../../errors.js";
import { SLOT_COUNT, slotOf } from "../../slot.js";

/** Inclusive slot ranges, ascending and merged: the shape of Migration.slots. */
export type SlotRuns = readonly (readonly [from: number, to: number])[];

/** Inclusive slot range `from..to`. */
export interface SlotSpan {
  readonly from: number;
  readonly to: number;
}

/** Validated slot spans (in any order, overlapping or not) → a flag per slot; an ArgumentError naming the bad one. */
export function flagsOfSpans(spans: readonly SlotSpan[], what = "slots"): Uint8Array {
  if (!Array.isArray(spans) || spans.length === 0) throw new ArgumentError(`${what} must be a non-empty array of { from, to } slot ranges`);
  const flags = new Uint8Array(SLOT_COUNT);
  spans.forEach((span, i) => {
    const { from, to } = (typeof span === "object" && span !== null ? span : {}) as Partial<SlotSpan>;
    for (const [name, slot] of [["from", from], ["to", to]] as const) {
      if (!Number.isInteger(slot) || (slot as number) < 0 || (slot as number) >= SLOT_COUNT) {
        throw new ArgumentError(`${what}[${i}].${name} must be an integer slot in 0..${SLOT_COUNT - 1}, got ${JSON.stringify(slot)}`);
      }
    }
    if ((from as number) > (to as number)) throw new ArgumentError(`${what}[${i}]: from (${from}) is after to (${to})`);
    flags.fill(1, from as number, (to as number) + 1);
  });
  return flags;
}

/** Runs (as stored in a table or a job) → a flag per slot. The runs must be valid slots. */
export function flagsOfRuns(runs: SlotRuns): Uint8Array {
  const flags = new Uint8Array(SLOT_COUNT);
  for (const [from, to] of runs) flags.fill(1, from, to + 1);
  return flags;
}

/** Flags → ascending merged runs. */
export function runsOf(flags: Uint8Array): [number, number][] {
  const runs: [number, number][] = [];
  for (let slot = 0; slot < flags.length; slot++) {
    if (flags[slot] !== 1) continue;
    const last = runs[runs.length - 1];
    if (last && last[1] === slot - 1) last[1] = slot;
    else runs.push([slot, slot]);
  }
  return runs;
}

/** How many slots the runs cover. */
export function slotCount(runs: SlotRuns): number {
  return runs.reduce((sum, [from, to]) => sum + to - from + 1, 0);
}

/** True when the two run lists cover the same slots. */
export function sameSlots(a: SlotRuns, b: SlotRuns): boolean {
  const fa = flagsOfRuns(a);
  const fb = flagsOfRuns(b);
  for (let slot = 0; slot < SLOT_COUNT; slot++) if (fa[slot] !== fb[slot]) return false;
  return true;
}

/** "0..99, 512" */
export function runsText(runs: SlotRuns): string {
  return runs.map(([from, to]) => (from === to ? `${from}` : `${from}..${to}`)).join(", ");
}

/**
 * The keys whose slot is flagged, each once (SCAN may return a key twice, and
 * the same key twice in one `MIGRATE … KEYS` fails the whole call), in the
 * order first seen.
 */
export function keysInSlots(keys: readonly Buffer[], flags: Uint8Array): Buffer[] {
  return dedupeKeys(keys.filter((key) => flags[slotOf(key)] === 1));
}

/** Each key once, in the order first seen. */
export function dedupeKeys(keys: readonly Buffer[]): Buffer[] {
  const seen = new Set<string>();
  const unique: Buffer[] = [];
  for (const key of keys) {
    const id = key.toString("latin1");
    if (seen.has(id)) continue;
    seen.add(id);
    unique.push(key);
  }
  return unique;
}
