// Specification of src/topology/diff.ts: which slots changed between two
// tables, and so which groups a client must drain before it acks the newer
// one (DESIGN §4: only commands routed under the old table to a slot whose
// owner or state changed matter).
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { validateTable, type Migration, type SlotRange } from '../../src/topology/table.js';
import { changedSlots, groupsToDrain } from '../../src/topology/diff.js';

const groups = [1, 2, 3].map((id) => ({ id, master: `10.0.0.${id}:6379` }));
const thirds: SlotRange[] = [
  { from: 0, to: 340, group: 1 },
  { from: 341, to: 681, group: 2 },
  { from: 682, to: 1023, group: 3 },
];
const table = (slots: SlotRange[], migrations: Migration[] = [], version = 1) => validateTable({ version, groups, slots, migrations });
const count = (changed: Uint8Array) => changed.reduce((n, c) => n + c, 0);

describe('changedSlots', () => {
  test('nothing changed: no slot', () => {
    assert.equal(count(changedSlots(table(thirds), table(thirds, [], 2))), 0);
  });

  test('an owner change marks exactly the moved slots', () => {
    const moved = table([{ from: 0, to: 99, group: 2 }, { from: 100, to: 340, group: 1 }, ...thirds.slice(1)]);
    const changed = changedSlots(table(thirds), moved);
    assert.equal(count(changed), 100);
    assert.equal(changed[0], 1);
    assert.equal(changed[99], 1);
    assert.equal(changed[100], 0);
  });

  test('a migration state change marks its slots, owner unchanged', () => {
    const pending = table(thirds, [{ slots: [[10, 19]], from: 1, to: 2, state: 'pending' }]);
    const preparing = table(thirds, [{ slots: [[10, 19]], from: 1, to: 2, state: 'preparing' }]);
    assert.equal(count(changedSlots(table(thirds), pending)), 10);
    assert.equal(count(changedSlots(pending, preparing)), 10);
    assert.equal(count(changedSlots(preparing, preparing)), 0);
  });
});

describe('groupsToDrain', () => {
  test('the old owners of changed slots, not the new ones', () => {
    const moved = table([{ from: 0, to: 340, group: 3 }, ...thirds.slice(1, 2), { from: 682, to: 1023, group: 3 }]);
    assert.deepEqual(groupsToDrain(table(thirds), moved), [1]);
  });

  test('a group that is removed is drained', () => {
    const two = validateTable({ version: 2, groups: groups.slice(0, 2), slots: [{ from: 0, to: 681, group: 1 }, { from: 682, to: 1023, group: 2 }] });
    assert.deepEqual(groupsToDrain(table(thirds), two), [2, 3]);
  });

  test('nothing changed: nothing to drain', () => {
    assert.deepEqual(groupsToDrain(table(thirds), table(thirds, [], 2)), []);
  });
});
