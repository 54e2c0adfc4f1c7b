// The pure part of the simulation: slots, keys, slot tables and the routing
// decision — the same shape as src/topology/table.ts + src/topology/diff.ts +
// the per-slot decision of src/client/pool.ts, shrunk to two groups and a few slots.

export type GroupId = 'A' | 'B';
export const GROUPS: readonly GroupId[] = ['A', 'B'];

export const SLOT_COUNT = 4;
export const SLOTS: readonly number[] = [0, 1, 2, 3];

/** The keys of a slot: two counters and a list (a hash tag per slot, so all three share it). */
export function keysOfSlot(slot: number): string[] {
  return [`c${slot}`, `d${slot}`, `l${slot}`];
}

export function slotOf(key: string): number {
  return Number(key.slice(1));
}

export type MigrationState = 'pending' | 'preparing' | 'migrating';

export interface Migration {
  readonly slots: readonly number[];
  readonly from: GroupId;
  readonly to: GroupId;
  readonly state: MigrationState;
}

/** An immutable, versioned slot table (at most one migration in flight: one migrator, one lock). */
export interface Table {
  readonly version: number;
  readonly owner: readonly GroupId[];
  readonly migration: Migration | null;
}

/** One write the application asked for; a command is one or more of them on one slot, applied atomically (MULTI). */
export interface Write {
  readonly kind: 'incr' | 'rpush';
  readonly key: string;
  /** For rpush: a value unique in the whole run. */
  readonly item: string;
}

export interface Op {
  readonly id: number;
  readonly slot: number;
  readonly writes: readonly Write[];
}

export function keysOfOp(op: Op): string[] {
  return [...new Set(op.writes.map((w) => w.key))];
}

/** What the client does with a command on a slot, by its table (DESIGN §5, client column). */
export type Route =
  | { readonly kind: 'direct'; readonly group: GroupId }
  | { readonly kind: 'hold' }
  | { readonly kind: 'migrate'; readonly from: GroupId; readonly to: GroupId };

export function routeOf(table: Table, slot: number, noHold: boolean): Route {
  const m = table.migration;
  if (m === null || !m.slots.includes(slot)) return { kind: 'direct', group: table.owner[slot]! };
  switch (m.state) {
    case 'pending':
      return { kind: 'direct', group: m.from };
    case 'preparing':
      return noHold ? { kind: 'direct', group: m.from } : { kind: 'hold' };
    case 'migrating':
      return { kind: 'migrate', from: m.from, to: m.to };
  }
}

function mark(table: Table, slot: number): string {
  const m = table.migration;
  const state = m !== null && m.slots.includes(slot) ? `${m.state}>${m.to}` : '';
  return `${table.owner[slot]}${state}`;
}

/** The slot's owner or migration state differs between two tables (what a client must drain before it acks). */
export function slotChanged(previous: Table, next: Table, slot: number): boolean {
  return mark(previous, slot) !== mark(next, slot);
}

export function describeTable(table: Table): string {
  const m = table.migration;
  const owners = table.owner.join('');
  return m === null ? `v${table.version} ${owners}` : `v${table.version} ${owners} [${m.slots.join(',')}] ${m.from}>${m.to} ${m.state}`;
}
