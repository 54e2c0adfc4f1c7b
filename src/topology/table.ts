import { SLOT_COUNT } from "../slot.js";
import { TopologyError } from "../errors.js";

/** One group given by address: a master and optional replicas, each "host:port". */
export interface MasterGroupSpec {
  /** Positive integer, unique in the table. */
  readonly id: number;
  /** "host:port" of the master. */
  readonly master: string;
  /** "host:port" of each replica. */
  readonly replicas?: readonly string[];
  readonly sentinel?: undefined;
}

/**
 * One group given by its Sentinel master name: connections ask the table's
 * `sentinels` where the master is, so a failover needs no table change.
 */
export interface SentinelGroupSpec {
  /** Positive integer, unique in the table. */
  readonly id: number;
  /** The name the sentinels monitor the group's master under. */
  readonly sentinel: { readonly name: string };
  readonly master?: undefined;
  readonly replicas?: undefined;
}

/** One group: `{ id, master, replicas? }` or `{ id, sentinel: { name } }` (exactly one of master and sentinel). */
export type GroupSpec = MasterGroupSpec | SentinelGroupSpec;

/** How a group is named in messages: its master "host:port", or "sentinel <name>". */
export function groupLabel(group: GroupSpec): string {
  return group.sentinel !== undefined ? `sentinel ${group.sentinel.name}` : group.master;
}

/** Slots `from..to` (inclusive) are owned by `group`. */
export interface SlotRange {
  readonly from: number;
  readonly to: number;
  readonly group: number;
}

/** Where a migration of some slots stands (DESIGN §5); stable slots have none. */
export type MigrationState = "pending" | "preparing" | "migrating";

/** Slots moving from one group to another. They stay owned by `from` in `slots` until the move is done. */
export interface Migration {
  /** Inclusive slot ranges, e.g. [[0, 99], [512, 512]]. */
  readonly slots: readonly (readonly [from: number, to: number])[];
  readonly from: number;
  readonly to: number;
  readonly state: MigrationState;
}

/** What a caller gives: groups and who owns which slots. */
export interface SlotTableInput {
  readonly groups: readonly GroupSpec[];
  readonly slots: readonly SlotRange[];
  /** Grows with every change; 0 for a static table. */
  readonly version?: number;
  /** Migrations in flight. @default none */
  readonly migrations?: readonly Migration[];
  /** "host:port" of each Sentinel; needed when a group is given by `sentinel`. @default none */
  readonly sentinels?: readonly string[];
}

/**
 * A validated, immutable slot table. `owner[slot]` is the owning group id.
 * Replaced whole on change, never patched.
 */
export interface SlotTable {
  readonly version: number;
  readonly groups: readonly GroupSpec[];
  readonly slots: readonly SlotRange[];
  readonly migrations: readonly Migration[];
  readonly owner: Readonly<Int32Array>;
  /** "host:port" of each Sentinel the sentinel-named groups are found through ([] when none). */
  readonly sentinels?: readonly string[];
}

const MIGRATION_STATES: readonly MigrationState[] = ["pending", "preparing", "migrating"];

const FORBIDDEN_KEYS = ["__proto__", "constructor", "prototype"];

/** Validates a table as DESIGN §2 says, or throws a TopologyError naming what is wrong. */
export function validateTable(input: unknown): SlotTable {
  const root = asRecord(input, "the slot table");
  const groups = parseGroups(root.groups);
  const known = new Set(groups.map((g) => g.id));
  const slots = parseSlots(root.slots, known);
  const version = root.version === undefined ? 0 : root.version;
  if (!Number.isSafeInteger(version) || (version as number) < 0) {
    throw new TopologyError(`version must be a non-negative integer, got ${JSON.stringify(version)}`);
  }

  const owner = new Int32Array(SLOT_COUNT);
  for (const range of slots) {
    for (let slot = range.from; slot <= range.to; slot++) {
      if (owner[slot] !== 0) {
        throw new TopologyError(`slot ${slot} is owned twice: by group ${owner[slot]} and by group ${range.group}`);
      }
      owner[slot] = range.group;
    }
  }
  const missing = missingSlots(owner);
  if (missing.length > 0) {
    throw new TopologyError(`every slot 0..${SLOT_COUNT - 1} must be owned by a group; not owned: ${formatRanges(missing)}`);
  }
  const migrations = parseMigrations(root.migrations, known, owner);
  const sentinels = parseSentinels(root.sentinels, groups);
  return Object.freeze({
    version: version as number,
    groups: Object.freeze(groups),
    slots: Object.freeze(slots),
    migrations: Object.freeze(migrations),
    owner,
    sentinels,
  });
}

/** Slots split into contiguous, nearly equal ranges over the given groups, in the order given. */
export function evenSlotRanges(groupIds: readonly number[]): SlotRange[] {
  if (groupIds.length === 0) throw new TopologyError("at least one group is needed to split the slots");
  if (groupIds.length > SLOT_COUNT) throw new TopologyError(`at most ${SLOT_COUNT} groups can own slots`);
  const ranges: SlotRange[] = [];
  let from = 0;
  groupIds.forEach((group, i) => {
    const size = Math.floor(SLOT_COUNT / groupIds.length) + (i < SLOT_COUNT % groupIds.length ? 1 : 0);
    ranges.push({ from, to: from + size - 1, group });
    from += size;
  });
  return ranges;
}

/** Parses "host:port" (IPv6 as "[::1]:6379"), or throws a TopologyError. */
export function parseAddress(address: string, what: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:\s[\]]+)):(\d{1,5})$/.exec(address);
  const port = match ? Number(match[3]) : NaN;
  if (!match || port < 1 || port > 65535) {
    throw new TopologyError(`${what} must be "host:port", got ${JSON.stringify(address)}`);
  }
  return { host: (match[1] ?? match[2])!, port };
}

function parseGroups(value: unknown): GroupSpec[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw new TopologyError("groups must be a non-empty array of { id, master, replicas? } or { id, sentinel: { name } }");
  }
  const seen = new Set<number>();
  const names = new Map<string, number>();
  return value.map((item, i): GroupSpec => {
    const group = asRecord(item, `groups[${i}]`);
    const id = group.id;
    if (!Number.isSafeInteger(id) || (id as number) < 1) {
      throw new TopologyError(`groups[${i}].id must be a positive integer, got ${JSON.stringify(id)}`);
    }
    if (seen.has(id as number)) throw new TopologyError(`group ${id} is listed twice`);
    seen.add(id as number);
    if (group.sentinel !== undefined) {
      if (group.master !== undefined || group.replicas !== undefined) {
        throw new TopologyError(`group ${id}: give either master (and replicas) or sentinel, not both: the sentinels say where the master and replicas are`);
      }
      const name = asRecord(group.sentinel, `group ${id}: sentinel`).name;
      if (typeof name !== "string" || !SENTINEL_NAME.test(name)) {
        throw new TopologyError(`group ${id}: sentinel.name must be a Sentinel master name (letters, digits, ".", "_", "-", ":"), got ${JSON.stringify(name)}`);
      }
      const other = names.get(name);
      if (other !== undefined) throw new TopologyError(`sentinel name "${name}" is used by group ${other} and by group ${id}; a master belongs to one group only`);
      names.set(name, id as number);
      return Object.freeze({ id: id as number, sentinel: Object.freeze({ name }) });
    }
    if (typeof group.master !== "string") {
      throw new TopologyError(`group ${id}: master must be a "host:port" string, got ${JSON.stringify(group.master)} (or give sentinel: { name })`);
    }
    parseAddress(group.master, `group ${id}: master`);
    const replicas = group.replicas === undefined ? [] : group.replicas;
    if (!Array.isArray(replicas) || replicas.some((r) => typeof r !== "string")) {
      throw new TopologyError(`group ${id}: replicas must be an array of "host:port" strings`);
    }
    for (const replica of replicas as string[]) parseAddress(replica, `group ${id}: replica`);
    return Object.freeze({ id: id as number, master: group.master, replicas: Object.freeze([...(replicas as string[])]) });
  });
}

/** Sentinel master names: what redis-sentinel accepts in `sentinel monitor` without quoting. */
const SENTINEL_NAME = /^[A-Za-z0-9._:-]{1,128}$/;

function parseSentinels(value: unknown, groups: readonly GroupSpec[]): readonly string[] {
  const named = groups.filter((g) => g.sentinel !== undefined).map((g) => g.id);
  if (value !== undefined && (!Array.isArray(value) || value.some((s) => typeof s !== "string"))) {
    throw new TopologyError('sentinels must be an array of "host:port" strings');
  }
  if (value === undefined || value.length === 0) {
    if (named.length > 0) {
      throw new TopologyError(`group ${named.join(", ")} ${named.length > 1 ? "are" : "is"} given by a sentinel name, so the table needs sentinels: ["host:port", ...]`);
    }
    return Object.freeze([]);
  }
  const seen = new Set<string>();
  for (const [i, address] of (value as string[]).entries()) {
    const { host, port } = parseAddress(address, `sentinels[${i}]`);
    const key = `${host.toLowerCase()}:${port}`;
    if (seen.has(key)) throw new TopologyError(`sentinels lists ${address} twice`);
    seen.add(key);
  }
  return Object.freeze([...(value as string[])]);
}

function parseSlots(value: unknown, known: ReadonlySet<number>): SlotRange[] {
  if (!Array.isArray(value)) throw new TopologyError("slots must be an array of { from, to, group }");
  return value.map((item, i) => {
    const range = asRecord(item, `slots[${i}]`);
    for (const field of ["from", "to"] as const) {
      const slot = range[field];
      if (!Number.isInteger(slot) || (slot as number) < 0 || (slot as number) >= SLOT_COUNT) {
        throw new TopologyError(`slots[${i}].${field} must be an integer slot in 0..${SLOT_COUNT - 1}, got ${JSON.stringify(slot)}`);
      }
    }
    const from = range.from as number;
    const to = range.to as number;
    if (from > to) throw new TopologyError(`slots[${i}]: from (${from}) is after to (${to})`);
    if (!Number.isSafeInteger(range.group) || !known.has(range.group as number)) {
      throw new TopologyError(`slots[${i}] (${from}..${to}) names unknown group ${JSON.stringify(range.group)}; known groups: ${[...known].join(", ")}`);
    }
    return Object.freeze({ from, to, group: range.group as number });
  });
}

function parseMigrations(value: unknown, known: ReadonlySet<number>, owner: Int32Array): Migration[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new TopologyError("migrations must be an array of { slots, from, to, state }");
  const moving = new Set<number>();
  return value.map((item, i) => {
    const what = `migrations[${i}]`;
    const migration = asRecord(item, what);
    for (const side of ["from", "to"] as const) {
      if (!Number.isSafeInteger(migration[side]) || !known.has(migration[side] as number)) {
        throw new TopologyError(`${what}.${side} names unknown group ${JSON.stringify(migration[side])}; known groups: ${[...known].join(", ")}`);
      }
    }
    const from = migration.from as number;
    const to = migration.to as number;
    if (from === to) throw new TopologyError(`${what} moves slots from group ${from} to itself`);
    if (!MIGRATION_STATES.includes(migration.state as MigrationState)) {
      throw new TopologyError(`${what}.state must be one of ${MIGRATION_STATES.join(", ")}, got ${JSON.stringify(migration.state)}`);
    }
    if (!Array.isArray(migration.slots) || migration.slots.length === 0) {
      throw new TopologyError(`${what}.slots must be a non-empty array of [from, to] slot ranges`);
    }
    const ranges = migration.slots.map((range: unknown, j: number): readonly [number, number] => {
      const [a, b] = Array.isArray(range) && range.length === 2 ? (range as unknown[]) : [];
      if (!isSlot(a) || !isSlot(b) || a > b) {
        throw new TopologyError(`${what}.slots[${j}] must be [from, to] with integer slots in 0..${SLOT_COUNT - 1}, got ${JSON.stringify(range)}`);
      }
      for (let slot = a; slot <= b; slot++) {
        // The source keeps owning the slots until the move is done (DESIGN §5).
        if (owner[slot] !== from) throw new TopologyError(`${what}: slot ${slot} is owned by group ${owner[slot]}, not by group ${from} it moves from`);
        if (moving.has(slot)) throw new TopologyError(`${what}: slot ${slot} is in two migrations`);
        moving.add(slot);
      }
      return Object.freeze([a, b] as const);
    });
    return Object.freeze({ slots: Object.freeze(ranges), from, to, state: migration.state as MigrationState });
  });
}

function isSlot(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) >= 0 && (value as number) < SLOT_COUNT;
}

function asRecord(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new TopologyError(`${what} must be an object`);
  }
  for (const key of FORBIDDEN_KEYS) {
    if (Object.prototype.hasOwnProperty.call(value, key)) {
      throw new TopologyError(`${what} has a forbidden key "${key}"`);
    }
  }
  return value as Record<string, unknown>;
}

function missingSlots(owner: Int32Array): number[] {
  const missing: number[] = [];
  for (let slot = 0; slot < owner.length; slot++) if (owner[slot] === 0) missing.push(slot);
  return missing;
}

/** [1,2,3,7] → "1..3, 7" */
export function formatRanges(slots: readonly number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < slots.length; ) {
    let j = i;
    while (j + 1 < slots.length && slots[j + 1] === slots[j]! + 1) j++;
    parts.push(i === j ? `${slots[i]}` : `${slots[i]}..${slots[j]}`);
    i = j + 1;
  }
  return parts.length > 12 ? `${parts.slice(0, 12).join(", ")}, ...` : parts.join(", ");
}
