// What the admin stores, prepared without I/O: a whole new table validated,
// its slots merged into ranges, serialized, and read back the way clients
// will read it. Also the stored version exactly as the write script sees it.
import { TopologyError } from "../errors.js";
import { parseTableJson, rangesOf, tableToJson, type ClusterTable } from "../topology/format.js";
import { parseAddress, validateTable, type GroupSpec, type SlotTableInput } from "../topology/table.js";

/** A new table, without its version (the writer sets that). */
export type TableChange = Omit<SlotTableInput, "version">;

/** A migration job saved in the same step as a table write, only while the migration lock holds `lockValue`. */
export interface JobWithTable {
  readonly lockValue: string;
  /** The job as stored; "" deletes it. */
  readonly json: string;
}

export interface PreparedTable {
  /** The table as clients will parse it. */
  readonly table: ClusterTable;
  /** What to store under `…:table`. */
  readonly json: string;
}

/**
 * Validates `change` as a whole table at `version`, refuses an address used
 * by two groups, merges its slots into ranges, and serializes it. The JSON is
 * parsed back with parseTableJson, so nothing is stored that a client would
 * refuse.
 */
export function prepareTable(change: TableChange, version: number, cluster: string): PreparedTable {
  const checked = validateTable({ ...change, version });
  checkDistinctAddresses(checked.groups);
  const merged = validateTable({ groups: checked.groups, slots: rangesOf(checked.owner), migrations: checked.migrations, sentinels: checked.sentinels, version });
  const json = tableToJson(merged, cluster);
  return { table: parseTableJson(json, cluster), json };
}

/**
 * Refuses a table where two groups name the same server (as master or
 * replica): both would think they own the keys there.
 */
export function checkDistinctAddresses(groups: readonly GroupSpec[]): void {
  const seen = new Map<string, number>();
  for (const group of groups) {
    // A Sentinel-named group has no fixed address (validateTable refuses a name used twice).
    if (group.sentinel !== undefined) continue;
    for (const address of [group.master, ...(group.replicas ?? [])]) {
      const { host, port } = parseAddress(address, `group ${group.id}`);
      const key = `${host.toLowerCase()}:${port}`;
      const other = seen.get(key);
      if (other !== undefined && other !== group.id) {
        throw new TopologyError(`${address} is used by group ${other} and by group ${group.id}; a server can belong to one group only`);
      }
      if (other === group.id) throw new TopologyError(`group ${group.id} lists ${address} twice`);
      seen.set(key, group.id);
    }
  }
}

/**
 * The version of a stored table as the coordinator scripts read it (the
 * first `"version": <digits>` in the text): 0 when there is no table, -1
 * when no version ≥ 1 can be found. A compare-and-set must expect exactly this number.
 */
export function storedVersion(raw: string | null): number {
  if (raw === null) return 0;
  const match = /"version"[ \t\n\v\f\r]*:[ \t\n\v\f\r]*(\d+)/.exec(raw);
  const version = match ? Number(match[1]) : 0;
  return version >= 1 ? version : -1;
}
