// Rebalance planning: a pure function from a slot table and weights to the
// fewest slot moves that give each group its share. No I/O; carrying a plan
// out (live migration) is someone else's job.
import { SLOT_COUNT } from "../slot.js";
import { ArgumentError, TopologyError } from "../errors.js";
import { rangesOf } from "../topology/format.js";
import type { SlotRange, SlotTable } from "../topology/table.js";

export interface RebalanceOptions {
  /**
   * Weight of each group, by group id: a group gets slots in proportion to
   * its weight; 0 drains it. Finite and non-negative; not all 0.
   * @default 1 for every group
   */
  readonly weights?: Readonly<Record<number, number>>;
  /**
   * The groups that share the slots; every other group of the table is
   * drained (target 0).
   * @default every group of the table
   */
  readonly groups?: readonly number[];
}

/** Some slots going from one group to another. */
export interface SlotMove {
  /** Inclusive slot ranges, ascending (the shape of Migration.slots). */
  readonly slots: readonly (readonly [from: number, to: number])[];
  readonly from: number;
  readonly to: number;
  /** How many slots move. */
  readonly count: number;
}

export interface RebalancePlan {
  /** The version of the table the plan was made from. */
  readonly version: number;
  /** One entry per (from, to) pair, ordered by `from`, then `to`; empty when already balanced. */
  readonly moves: readonly SlotMove[];
  /** Who owns what after the moves, as merged ranges ascending. */
  readonly target: readonly SlotRange[];
  /** Total number of slots that move (the fewest possible for these targets). */
  readonly moved: number;
}

/**
 * Plans a rebalance of `table`'s slots over its groups.
 *
 * Targets: SLOT_COUNT split in proportion to the weights, as exact counts
 * (largest remainder; equal remainders favour the lower group id). Moves: a
 * group keeps the slots it has up to its target, so only surplus slots move
 * (the minimum). Surplus is taken from the end of each group's slots, and
 * the surplus slots, in slot order, are handed out to the groups under target
 * in id order, so the moves come out as few contiguous ranges.
 *
 * Refuses (TopologyError) while a migration is in flight: its slots are
 * neither the source's nor the target's to plan with.
 */
export function planRebalance(table: SlotTable, options: RebalanceOptions = {}): RebalancePlan {
  if (table.migrations.length > 0) {
    const m = table.migrations[0]!;
    throw new TopologyError(
      `a migration is in flight (slots ${m.slots.map(([a, b]) => (a === b ? `${a}` : `${a}..${b}`)).join(", ")} ` +
        `from group ${m.from} to group ${m.to}, ${m.state}); finish it before planning a rebalance`,
    );
  }
  const targets = targetCounts(table, options);
  const owner = Int32Array.from(table.owner);
  const counts = countSlots(owner);

  // Surplus: the last slots of each group over target, collected in slot order.
  const surplus: number[] = [];
  const over = new Map<number, number>();
  for (const [id, target] of targets) {
    const extra = (counts.get(id) ?? 0) - target;
    if (extra > 0) over.set(id, extra);
  }
  for (let slot = SLOT_COUNT - 1; slot >= 0 && over.size > 0; slot--) {
    const id = owner[slot]!;
    const extra = over.get(id);
    if (extra === undefined) continue;
    surplus.push(slot);
    if (extra === 1) over.delete(id);
    else over.set(id, extra - 1);
  }
  surplus.reverse();

  // Handed out to the groups under target, in id order.
  const moved = new Map<string, { from: number; to: number; slots: number[] }>();
  let next = 0;
  for (const [id, target] of targets) {
    for (let need = target - (counts.get(id) ?? 0); need > 0; need--) {
      const slot = surplus[next++]!;
      const from = owner[slot]!;
      const key = `${from}>${id}`;
      let move = moved.get(key);
      if (move === undefined) moved.set(key, (move = { from, to: id, slots: [] }));
      move.slots.push(slot);
      owner[slot] = id;
    }
  }

  const moves = [...moved.values()]
    .sort((a, b) => a.from - b.from || a.to - b.to)
    .map((m): SlotMove => ({ slots: runsOf(m.slots), from: m.from, to: m.to, count: m.slots.length }));
  return { version: table.version, moves, target: rangesOf(owner), moved: surplus.length };
}

/** Each group's target slot count, by ascending group id (groups outside `options.groups` get 0). */
export function targetCounts(table: SlotTable, options: RebalanceOptions = {}): Map<number, number> {
  const ids = table.groups.map((g) => g.id).sort((a, b) => a - b);
  const known = new Set(ids);
  const sharing = options.groups === undefined ? ids : checkGroups(options.groups, known);
  const weights = checkWeights(options.weights ?? {}, known, new Set(sharing));

  const weightOf = (id: number): number => (sharing.includes(id) ? (weights.get(id) ?? 1) : 0);
  const total = ids.reduce((sum, id) => sum + weightOf(id), 0);
  if (!(total > 0)) throw new ArgumentError("every weight is 0: at least one group must keep slots");

  const shares = ids.map((id) => {
    const exact = (SLOT_COUNT * weightOf(id)) / total;
    const base = Math.floor(exact);
    return { id, weight: weightOf(id), base, remainder: exact - base };
  });
  let left = SLOT_COUNT - shares.reduce((sum, s) => sum + s.base, 0);
  const byRemainder = shares
    .filter((s) => s.weight > 0)
    .sort((a, b) => (Math.abs(a.remainder - b.remainder) > 1e-9 ? b.remainder - a.remainder : a.id - b.id));
  // The remainders add up to `left`, so one pass hands it all out (the loop guards against rounding).
  for (let i = 0; left > 0; i = (i + 1) % byRemainder.length, left--) byRemainder[i]!.base++;
  return new Map(shares.map((s) => [s.id, s.base]));
}

function checkGroups(groups: readonly number[], known: ReadonlySet<number>): number[] {
  if (!Array.isArray(groups) || groups.length === 0) throw new ArgumentError("groups must be a non-empty array of group ids");
  const seen = new Set<number>();
  for (const id of groups) {
    if (!known.has(id)) throw new ArgumentError(`groups names unknown group ${JSON.stringify(id)}; known groups: ${[...known].join(", ")}`);
    if (seen.has(id)) throw new ArgumentError(`groups lists group ${id} twice`);
    seen.add(id);
  }
  return [...seen].sort((a, b) => a - b);
}

function checkWeights(weights: Readonly<Record<number, number>>, known: ReadonlySet<number>, sharing: ReadonlySet<number>): Map<number, number> {
  if (typeof weights !== "object" || weights === null || Array.isArray(weights)) {
    throw new ArgumentError("weights must be an object of group id → weight, e.g. { 1: 2, 2: 1 }");
  }
  const result = new Map<number, number>();
  for (const [key, weight] of Object.entries(weights)) {
    const id = Number(key);
    if (String(id) !== key || !known.has(id)) {
      throw new ArgumentError(`weights names unknown group ${JSON.stringify(key)}; known groups: ${[...known].join(", ")}`);
    }
    if (!sharing.has(id)) throw new ArgumentError(`weights gives a weight to group ${id}, which is not in groups`);
    if (typeof weight !== "number" || !Number.isFinite(weight) || weight < 0) {
      throw new ArgumentError(`the weight of group ${id} must be a finite number ≥ 0, got ${JSON.stringify(weight) ?? String(weight)}`);
    }
    result.set(id, weight);
  }
  return result;
}

function countSlots(owner: ArrayLike<number>): Map<number, number> {
  const counts = new Map<number, number>();
  for (let slot = 0; slot < owner.length; slot++) counts.set(owner[slot]!, (counts.get(owner[slot]!) ?? 0) + 1);
  return counts;
}

/** Ascending slots → inclusive [from, to] runs. */
function runsOf(slots: readonly number[]): [number, number][] {
  const runs: [number, number][] = [];
  for (const slot of slots) {
    const last = runs[runs.length - 1];
    if (last && last[1] === slot - 1) last[1] = slot;
    else runs.push([slot, slot]);
  }
  return runs;
}

