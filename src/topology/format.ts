import { SLOT_COUNT } from "../slot.js";
import { TopologyError } from "../errors.js";
import { validateTable, type SlotTable } from "./table.js";

/** The table format this version of shardis reads and writes (the `format` field). */
export const TABLE_FORMAT = 1;

/** A slot table as stored in the coordinator: the routing table plus the cluster it belongs to. */
export interface ClusterTable extends SlotTable {
  readonly cluster: string;
}

/**
 * Parses the JSON stored under `shardis:{<cluster>}:table` (docs/table-format.md)
 * and validates it, or throws a TopologyError that says what is wrong.
 * `cluster` is the name the reader expects: a table of another cluster is refused.
 */
export function parseTableJson(text: string, cluster: string): ClusterTable {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new TopologyError(`the slot table of cluster "${cluster}" is not valid JSON: ${(error as Error).message}`, { cause: error });
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new TopologyError(`the slot table of cluster "${cluster}" must be a JSON object`);
  }
  const root = raw as Record<string, unknown>;
  if (root.format !== TABLE_FORMAT) {
    const newer = typeof root.format === "number" && root.format > TABLE_FORMAT;
    throw new TopologyError(
      newer
        ? `the slot table of cluster "${cluster}" has format ${root.format}, newer than this shardis reads (format ${TABLE_FORMAT}); upgrade shardis`
        : `the slot table of cluster "${cluster}" must have "format": ${TABLE_FORMAT}, got ${JSON.stringify(root.format)}`,
    );
  }
  if (root.cluster !== cluster) {
    throw new TopologyError(`the table under cluster "${cluster}" names cluster ${JSON.stringify(root.cluster)}; it was written for another cluster`);
  }
  if (root.slotCount !== SLOT_COUNT) {
    throw new TopologyError(`the slot table of cluster "${cluster}" must have "slotCount": ${SLOT_COUNT}, got ${JSON.stringify(root.slotCount)}`);
  }
  if (!Number.isSafeInteger(root.version) || (root.version as number) < 1) {
    throw new TopologyError(`the slot table of cluster "${cluster}" must have a positive integer version, got ${JSON.stringify(root.version)}`);
  }
  return Object.freeze({ ...validateTable(root), cluster });
}

/** The JSON to store for `table`, with fields in the documented order. */
export function tableToJson(table: SlotTable, cluster: string): string {
  return JSON.stringify({
    format: TABLE_FORMAT,
    cluster,
    version: table.version,
    slotCount: SLOT_COUNT,
    groups: table.groups.map((g) =>
      g.sentinel !== undefined
        ? { id: g.id, sentinel: { name: g.sentinel.name } }
        : g.replicas && g.replicas.length > 0
          ? { id: g.id, master: g.master, replicas: g.replicas }
          : { id: g.id, master: g.master },
    ),
    // Left out when no group needs it, so tables without Sentinel stay as they were.
    ...(table.sentinels !== undefined && table.sentinels.length > 0 ? { sentinels: table.sentinels } : {}),
    slots: table.slots.map((r) => ({ from: r.from, to: r.to, group: r.group })),
    migrations: table.migrations.map((m) => ({ slots: m.slots, from: m.from, to: m.to, state: m.state })),
  });
}

/**
 * The slot ranges of an owner array, merged: consecutive slots of one group
 * become one range. Tables written by shardis keep `slots` in this form.
 */
export function rangesOf(owner: ArrayLike<number>): { from: number; to: number; group: number }[] {
  const ranges: { from: number; to: number; group: number }[] = [];
  for (let slot = 0; slot < owner.length; slot++) {
    const last = ranges[ranges.length - 1];
    if (last && last.group === owner[slot] && last.to === slot - 1) last.to = slot;
    else ranges.push({ from: slot, to: slot, group: owner[slot]! });
  }
  return ranges;
}
