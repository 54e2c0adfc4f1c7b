// The shape of ShardisAdmin.status(), and the pure part of building it.
import type { ClusterTable } from "../topology/format.js";
import { formatRanges, groupLabel, type GroupSpec, type Migration, type SlotTable } from "../topology/table.js";
import type { ClientStatus } from "./registry.js";

/** One group as status() sees it. */
export interface GroupStatus {
  readonly id: number;
  /** "host:port"; for a Sentinel-named group, "sentinel <name>" (its master moves with failovers). */
  readonly master: string;
  /** The Sentinel master name of a Sentinel-named group. */
  readonly sentinel?: string;
  readonly replicas: readonly string[];
  /** How many slots it owns. */
  readonly slots: number;
  /** The slots it owns, e.g. "0..340, 1000" (formatRanges; "" for none). */
  readonly ranges: string;
  /** DBSIZE of its master; null when it could not be asked. */
  readonly keys: number | null;
  /** used_memory (bytes) of its master; null when it could not be asked. */
  readonly usedMemory: number | null;
  /** Why the master could not be asked (down, auth failed, timeout). */
  readonly error?: string;
}

export interface ClusterStatus {
  readonly cluster: string;
  /** null when the cluster has no table yet. */
  readonly table: ClusterTable | null;
  readonly migrations: readonly Migration[];
  /** Registered clients, by id. */
  readonly clients: readonly ClientStatus[];
  /** The table's groups, in table order (none without a table). */
  readonly groups: readonly GroupStatus[];
}

/** The slots `group` owns in `table`, ascending. */
export function slotsOf(table: SlotTable, group: number): number[] {
  const slots: number[] = [];
  for (let slot = 0; slot < table.owner.length; slot++) if (table.owner[slot] === group) slots.push(slot);
  return slots;
}

/** A group's entry without the numbers asked of its master. */
export function groupOutline(table: SlotTable, group: GroupSpec): Pick<GroupStatus, "id" | "master" | "sentinel" | "replicas" | "slots" | "ranges"> {
  const slots = slotsOf(table, group.id);
  const outline = { id: group.id, master: groupLabel(group), replicas: group.replicas ?? [], slots: slots.length, ranges: formatRanges(slots) };
  return group.sentinel !== undefined ? { ...outline, sentinel: group.sentinel.name } : outline;
}
