import { SLOT_COUNT } from "../slot.js";
import type { MigrationState, SlotTable } from "./table.js";

const STATE_CODE: Record<MigrationState, number> = { pending: 1, preparing: 2, migrating: 3 };

/** Per slot: 0 when stable, else the code of its migration's state; and where it is moving. Null when nothing moves. */
function migrationMarks(table: SlotTable): { readonly state: Uint8Array; readonly to: Float64Array } | null {
  if (table.migrations.length === 0) return null;
  const state = new Uint8Array(SLOT_COUNT);
  const to = new Float64Array(SLOT_COUNT);
  // Filled range by range (a table change runs this on every client: no per-slot search, no strings).
  for (const migration of table.migrations) {
    for (const [from, last] of migration.slots) {
      state.fill(STATE_CODE[migration.state], from, last + 1);
      to.fill(migration.to, from, last + 1);
    }
  }
  return { state, to };
}

/** changed[slot] is 1 where the slot's owner or migration state differs between the two tables. */
export function changedSlots(previous: SlotTable, next: SlotTable): Uint8Array {
  const changed = new Uint8Array(SLOT_COUNT);
  const before = migrationMarks(previous);
  const after = migrationMarks(next);
  for (let slot = 0; slot < SLOT_COUNT; slot++) {
    const moving = (before?.state[slot] ?? 0) !== (after?.state[slot] ?? 0) || (before?.to[slot] ?? 0) !== (after?.to[slot] ?? 0);
    if (moving || previous.owner[slot] !== next.owner[slot]) changed[slot] = 1;
  }
  return changed;
}

/**
 * The groups whose in-flight commands must finish before a client acks `next`
 * (DESIGN §4, drain): the owners under `previous` of every slot whose owner or
 * migration state changed, and every group `next` no longer has.
 */
export function groupsToDrain(previous: SlotTable, next: SlotTable, changed = changedSlots(previous, next)): number[] {
  const drain = new Set<number>();
  for (let slot = 0; slot < SLOT_COUNT; slot++) if (changed[slot] === 1) drain.add(previous.owner[slot]!);
  const kept = new Set(next.groups.map((g) => g.id));
  for (const group of previous.groups) if (!kept.has(group.id)) drain.add(group.id);
  return [...drain].sort((a, b) => a - b);
}
