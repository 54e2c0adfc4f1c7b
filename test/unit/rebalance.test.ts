// Specification of planRebalance (src/admin/rebalance.ts): a pure,
// deterministic plan that gives each group its share of the 1024 slots (in
// proportion to its weight) with the fewest slot moves, in few contiguous
// ranges. No socket is opened here.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { SLOT_COUNT } from '../../src/slot.js';
import { ArgumentError, TopologyError } from '../../src/errors.js';
import { planRebalance, targetCounts, type RebalancePlan } from '../../src/admin/index.js';
import { evenSlotRanges, validateTable, type GroupSpec, type SlotRange, type SlotTable } from '../../src/topology/table.js';

function groups(...ids: number[]): GroupSpec[] {
  return ids.map((id) => ({ id, master: `10.0.0.${id}:6379` }));
}

function table(ids: number[], slots: SlotRange[], version = 5): SlotTable {
  return validateTable({ groups: groups(...ids), slots, version });
}

/** Slot count per group after the plan, by ascending id (0 for a group left without slots). */
function countsAfter(plan: RebalancePlan, ids: number[]): Record<number, number> {
  const counts: Record<number, number> = Object.fromEntries(ids.map((id) => [id, 0]));
  for (const r of plan.target) counts[r.group] = (counts[r.group] ?? 0) + r.to - r.from + 1;
  return counts;
}

/** The owner array after the plan (validated as a table, which proves every slot is owned once). */
function ownerAfter(before: SlotTable, plan: RebalancePlan): Readonly<Int32Array> {
  return validateTable({ groups: before.groups, slots: plan.target }).owner;
}

/** Asserts the invariants every plan must hold, whatever the input. */
function assertSound(before: SlotTable, plan: RebalancePlan, targets: Map<number, number>): void {
  const after = ownerAfter(before, plan);
  // Every group ends with exactly its target.
  for (const [id, target] of targets) assert.equal(after.filter((g) => g === id).length, target, `group ${id} count`);
  // Fewest moves: only surplus moves, and a slot moves only away from a group that was over target.
  const current = new Map<number, number>();
  for (const g of before.owner) current.set(g, (current.get(g) ?? 0) + 1);
  let surplus = 0;
  for (const [id, target] of targets) surplus += Math.max(0, (current.get(id) ?? 0) - target);
  assert.equal(plan.moved, surplus, 'moved is the minimum: the sum of surpluses');
  let changed = 0;
  for (let slot = 0; slot < SLOT_COUNT; slot++) {
    if (after[slot] === before.owner[slot]) continue;
    changed++;
    const from = before.owner[slot]!;
    assert.ok((current.get(from) ?? 0) > targets.get(from)!, `slot ${slot} left group ${from}, which was not over target`);
  }
  assert.equal(changed, plan.moved, 'moved counts the slots whose owner changes');
  // The moves describe exactly those changes, as merged ranges.
  let listed = 0;
  for (const move of plan.moves) {
    assert.notEqual(move.from, move.to);
    let count = 0;
    move.slots.forEach(([a, b], i) => {
      assert.ok(a <= b);
      if (i > 0) assert.ok(a > move.slots[i - 1]![1] + 1, 'ranges of one move are merged and ascending');
      for (let s = a; s <= b; s++) {
        assert.equal(before.owner[s], move.from, `slot ${s} is owned by ${move.from} before`);
        assert.equal(after[s], move.to, `slot ${s} is owned by ${move.to} after`);
        count++;
      }
    });
    assert.equal(move.count, count);
    listed += count;
  }
  assert.equal(listed, plan.moved);
  const pairs = plan.moves.map((m) => [m.from, m.to]);
  assert.deepEqual(pairs, [...pairs].sort((x, y) => x[0]! - y[0]! || x[1]! - y[1]!), 'moves ordered by from, then to');
  assert.equal(new Set(pairs.map((p) => p.join('>'))).size, pairs.length, 'one move per (from, to) pair');
}

describe('planRebalance: even split', () => {
  test('from one group to three: 342/341/341, two moves of one range each, same layout as evenSlotRanges', () => {
    const before = table([1, 2, 3], [{ from: 0, to: 1023, group: 1 }]);
    const plan = planRebalance(before);
    assert.deepEqual(countsAfter(plan, [1, 2, 3]), { 1: 342, 2: 341, 3: 341 });
    assert.deepEqual(plan.moves, [
      { slots: [[342, 682]], from: 1, to: 2, count: 341 },
      { slots: [[683, 1023]], from: 1, to: 3, count: 341 },
    ]);
    assert.equal(plan.moved, 682);
    assert.deepEqual(plan.target, evenSlotRanges([1, 2, 3]));
    assert.equal(plan.version, 5, 'the plan says which table version it was made from');
  });

  test('adding a 4th group to 3 balanced ones moves exactly 1024/4 = 256 slots, one range from each', () => {
    const before = table([1, 2, 3, 4], evenSlotRanges([1, 2, 3]));
    const plan = planRebalance(before);
    assert.equal(plan.moved, 256);
    assert.deepEqual(countsAfter(plan, [1, 2, 3, 4]), { 1: 256, 2: 256, 3: 256, 4: 256 });
    assert.deepEqual(plan.moves, [
      { slots: [[256, 341]], from: 1, to: 4, count: 86 },
      { slots: [[598, 682]], from: 2, to: 4, count: 85 },
      { slots: [[939, 1023]], from: 3, to: 4, count: 85 },
    ]);
    assertSound(before, plan, targetCounts(before));
  });

  test('an already balanced table gives no moves, and the target is the table as it is', () => {
    const before = table([1, 2, 3], evenSlotRanges([1, 2, 3]));
    const plan = planRebalance(before);
    assert.deepEqual(plan.moves, []);
    assert.equal(plan.moved, 0);
    assert.deepEqual(plan.target, evenSlotRanges([1, 2, 3]));
  });

  test('balanced but fragmented ranges are left alone (no moves just to tidy up)', () => {
    const slots: SlotRange[] = [];
    for (let s = 0; s < SLOT_COUNT; s += 2) slots.push({ from: s, to: s, group: 1 }, { from: s + 1, to: s + 1, group: 2 });
    const plan = planRebalance(table([1, 2], slots));
    assert.equal(plan.moved, 0);
    assert.equal(plan.target.length, SLOT_COUNT);
  });

  test('equal remainders go to the lower group ids, whatever the order of groups in the table', () => {
    const before = validateTable({ groups: groups(9, 2, 5), slots: [{ from: 0, to: 1023, group: 9 }] });
    assert.deepEqual([...targetCounts(before)], [[2, 342], [5, 341], [9, 341]]);
    assert.deepEqual(countsAfter(planRebalance(before), [2, 5, 9]), { 2: 342, 5: 341, 9: 341 });
  });

  test('surplus comes from the end of a group\'s slots; a group keeps the start of what it has', () => {
    const before = table([1, 2], [{ from: 0, to: 1023, group: 1 }]);
    const plan = planRebalance(before);
    assert.deepEqual(plan.target, [{ from: 0, to: 511, group: 1 }, { from: 512, to: 1023, group: 2 }]);
  });
});

describe('planRebalance: weights', () => {
  test('weights 2:1:1 give 512/256/256', () => {
    const before = table([1, 2, 3], evenSlotRanges([1, 2, 3]));
    const plan = planRebalance(before, { weights: { 1: 2, 2: 1, 3: 1 } });
    assert.deepEqual(countsAfter(plan, [1, 2, 3]), { 1: 512, 2: 256, 3: 256 });
    assertSound(before, plan, targetCounts(before, { weights: { 1: 2, 2: 1, 3: 1 } }));
  });

  test('a group without a weight has weight 1', () => {
    const before = table([1, 2, 3], [{ from: 0, to: 1023, group: 1 }]);
    assert.deepEqual(countsAfter(planRebalance(before, { weights: { 1: 2 } }), [1, 2, 3]), { 1: 512, 2: 256, 3: 256 });
  });

  test('exact counts by largest remainder: 1:2:3 gives 171/341/512 (1024/6 = 170.67, 341.33, 512)', () => {
    const before = table([1, 2, 3], [{ from: 0, to: 1023, group: 1 }]);
    assert.deepEqual([...targetCounts(before, { weights: { 1: 1, 2: 2, 3: 3 } })], [[1, 171], [2, 341], [3, 512]]);
  });

  test('fractional weights are proportions too', () => {
    const before = table([1, 2], [{ from: 0, to: 1023, group: 1 }]);
    assert.deepEqual([...targetCounts(before, { weights: { 1: 0.25, 2: 0.75 } })], [[1, 256], [2, 768]]);
  });

  test('weight 0 drains a group: its slots, and only its slots, move to the others', () => {
    const before = table([1, 2, 3], evenSlotRanges([1, 2, 3]));
    const plan = planRebalance(before, { weights: { 2: 0 } });
    assert.deepEqual(countsAfter(plan, [1, 2, 3]), { 1: 512, 2: 0, 3: 512 });
    assert.equal(plan.moved, 341);
    assert.ok(plan.moves.every((m) => m.from === 2));
    assert.ok(!plan.target.some((r) => r.group === 2));
    assertSound(before, plan, targetCounts(before, { weights: { 2: 0 } }));
  });

  test('`groups` names the groups that share the slots; the others are drained', () => {
    const before = table([1, 2, 3], evenSlotRanges([1, 2, 3]));
    const plan = planRebalance(before, { groups: [1, 3] });
    assert.deepEqual(countsAfter(plan, [1, 2, 3]), { 1: 512, 2: 0, 3: 512 });
    assert.deepEqual(plan, planRebalance(before, { weights: { 2: 0 } }));
  });

  test('a tiny weight can round down to no slot at all', () => {
    const before = table([1, 2], [{ from: 0, to: 1023, group: 1 }]);
    assert.deepEqual([...targetCounts(before, { weights: { 1: 1, 2: 1e-6 } })], [[1, 1024], [2, 0]]);
  });
});

describe('planRebalance: refusals', () => {
  const before = table([1, 2, 3], evenSlotRanges([1, 2, 3]));

  function refuses(options: Parameters<typeof planRebalance>[1], errorClass: typeof ArgumentError | typeof TopologyError, pattern: RegExp, on = before): void {
    assert.throws(() => planRebalance(on, options), (err: unknown) => {
      assert.ok(err instanceof errorClass, `expected ${errorClass.name}, got ${String(err)}`);
      assert.match((err as Error).message, pattern);
      return true;
    });
  }

  test('a weight for a group that is not in the table is an ArgumentError listing the known groups', () => {
    refuses({ weights: { 4: 1 } }, ArgumentError, /unknown group "4"; known groups: 1, 2, 3/);
  });

  test('weights keyed by something that is not a group id are refused', () => {
    refuses({ weights: { ['01' as unknown as number]: 1 } }, ArgumentError, /unknown group "01"/);
    refuses({ weights: { ['x' as unknown as number]: 1 } }, ArgumentError, /unknown group "x"/);
  });

  for (const [what, weight] of [['negative', -1], ['NaN', NaN], ['Infinity', Infinity], ['a string', '2' as unknown as number]] as const) {
    test(`a ${what} weight is an ArgumentError naming the group`, () => {
      refuses({ weights: { 2: weight } }, ArgumentError, /the weight of group 2 must be a finite number ≥ 0/);
    });
  }

  test('all weights 0 is an ArgumentError (the slots must go somewhere)', () => {
    refuses({ weights: { 1: 0, 2: 0, 3: 0 } }, ArgumentError, /every weight is 0/);
  });

  test('`groups` must name known groups, once each, and not be empty', () => {
    refuses({ groups: [1, 7] }, ArgumentError, /unknown group 7/);
    refuses({ groups: [1, 1] }, ArgumentError, /group 1 twice/);
    refuses({ groups: [] }, ArgumentError, /non-empty/);
  });

  test('a weight for a group outside `groups` is refused rather than ignored', () => {
    refuses({ groups: [1, 2], weights: { 3: 2 } }, ArgumentError, /group 3, which is not in groups/);
  });

  test('a table with a migration in flight is not planned over (TopologyError naming it)', () => {
    const migrating = validateTable({
      groups: groups(1, 2),
      slots: [{ from: 0, to: 1023, group: 1 }],
      migrations: [{ slots: [[0, 9]], from: 1, to: 2, state: 'migrating' }],
    });
    refuses({}, TopologyError, /migration is in flight \(slots 0\.\.9 from group 1 to group 2, migrating\)/, migrating);
  });
});

describe('planRebalance: purity and determinism', () => {
  test('the same input gives the same plan, and the table is not changed', () => {
    const before = table([1, 2, 3, 4], evenSlotRanges([1, 2, 3]));
    const ownerCopy = Int32Array.from(before.owner);
    const a = planRebalance(before, { weights: { 1: 3, 4: 2 } });
    const b = planRebalance(before, { weights: { 1: 3, 4: 2 } });
    assert.deepEqual(a, b);
    assert.deepEqual(before.owner, ownerCopy);
  });

  test('the order of groups in the table does not change the plan', () => {
    const slots = evenSlotRanges([1, 2, 3]);
    const a = planRebalance(validateTable({ groups: groups(1, 2, 3, 4), slots }));
    const b = planRebalance(validateTable({ groups: groups(4, 3, 1, 2), slots }));
    assert.deepEqual(a, b);
  });

  test('applying a plan, then planning again with the same weights, gives no moves', () => {
    const before = table([1, 2, 3, 4], [{ from: 0, to: 1023, group: 2 }]);
    const plan = planRebalance(before, { weights: { 1: 2, 3: 5 } });
    const after = validateTable({ groups: before.groups, slots: plan.target, version: 6 });
    assert.deepEqual(planRebalance(after, { weights: { 1: 2, 3: 5 } }).moves, []);
  });

  test('random tables and weights: always a valid table, exact targets, minimal moves (seeded)', () => {
    let seed = 20240601;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let round = 0; round < 200; round++) {
      const ids = Array.from({ length: 1 + Math.floor(random() * 7) }, (_, i) => i * 3 + 1 + Math.floor(random() * 3));
      // Random ownership in runs of random length.
      const slots: SlotRange[] = [];
      for (let from = 0; from < SLOT_COUNT; ) {
        const to = Math.min(SLOT_COUNT - 1, from + Math.floor(random() * 200));
        slots.push({ from, to, group: ids[Math.floor(random() * ids.length)]! });
        from = to + 1;
      }
      const before = table(ids, slots);
      const weights: Record<number, number> = {};
      for (const id of ids) if (random() < 0.6) weights[id] = Math.floor(random() * 4);
      if (ids.every((id) => weights[id] === 0)) weights[ids[0]!] = 1;
      const plan = planRebalance(before, { weights });
      const targets = targetCounts(before, { weights });
      assert.equal([...targets.values()].reduce((a, b) => a + b, 0), SLOT_COUNT, 'targets sum to 1024');
      assertSound(before, plan, targets);
    }
  });
});
