import { SLOT_COUNT } from "../slot.js";
import type { MigrationState, SlotTable } from "./table.js";

/** A slot's state in a table: who owns it, and where it is moving (if it is). */
function migrationOf(table: SlotTable, slot: number): { state: MigrationState; to: number } | null {
  for (const migration of table.migrations) {
    for (const [from, to] of migration.slots) {
      if (slot >= from && slot <= to) return { state: migration.state, to: migration.to };
    }
  }
  return null;
}

/** For each slot, "" when stable, else "state>to" — compared between two tables. */
function migrationMarks(table: SlotTable): string[] {
  const marks = new Array<string>(SLOT_COUNT).fill("");
  if (table.migrations.length === 0) return marks;
  for (let slot = 0; slot < SLOT_COUNT; slot++) {
    const m = migrationOf(table, slot);
    if (m !== null) marks[slot] = `${m.state}>${m.to}`;
  }
  return marks;
}

/** changed[slot] is 1 where the slot's owner or migration state differs between the two tables. */
export function changedSlots(previous: SlotTable, next: SlotTable): Uint8Array {
  const changed = new Uint8Array(SLOT_COUNT);
  const before = migrationMarks(previous);
  const after = migrationMarks(next);
  for (let slot = 0; slot < SLOT_COUNT; slot++) {
    if (previous.owner[slot] !== next.owner[slot] || before[slot] !== after[slot]) changed[slot] = 1;
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
