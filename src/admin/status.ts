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
  /**
   * "host:port" the master answered at: an address group's `master`; a
   * Sentinel-named group's master of the moment, as its sentinels name it
   * (null when neither the master nor a sentinel could say).
   */
  readonly masterAddress: string | null;
  /**
   * Its replicas (an address group's `replicas`; a Sentinel-named group's,
   * as its sentinels know them), each asked `INFO replication`.
   */
  readonly replicas: readonly GroupReplicaStatus[];
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

/** One replica of a group, from `INFO replication` on it and on its master. */
export interface GroupReplicaStatus {
  /** "host:port" */
  readonly address: string;
  /**
   * The replica's `master_link_status`; "down" too when it is a master, or
   * does not answer and its master does not list it; "unknown" when it does
   * not answer and its master lists it (or cannot be asked).
   */
  readonly link: "up" | "down" | "unknown";
  /** Replication lag in bytes: the master's `master_repl_offset` minus the replica's offset (null when either is unknown). */
  readonly lagBytes: number | null;
  /** The replica's `master_last_io_seconds_ago` (null when its link is down or it did not answer). */
  readonly lastIoSeconds: number | null;
  /** Why the replica could not be asked, or what is wrong with it. */
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

/** A group's entry without what is asked of its servers. */
export function groupOutline(table: SlotTable, group: GroupSpec): Pick<GroupStatus, "id" | "master" | "sentinel" | "slots" | "ranges"> {
  const slots = slotsOf(table, group.id);
  const outline = { id: group.id, master: groupLabel(group), slots: slots.length, ranges: formatRanges(slots) };
  return group.sentinel !== undefined ? { ...outline, sentinel: group.sentinel.name } : outline;
}

/** What `INFO replication` says, the fields status() uses. */
export interface ReplicationInfo {
  /** "master" or "slave". */
  readonly role: string;
  readonly masterReplOffset: number | null;
  /** A replica's `master_link_status`. */
  readonly masterLinkStatus: string | null;
  /** A replica's `master_last_io_seconds_ago` (-1 while its link is down). */
  readonly masterLastIoSecondsAgo: number | null;
  /** A replica's `slave_repl_offset`. */
  readonly replicaOffset: number | null;
  /** A master's connected replicas (`slaveN:ip=…,port=…,state=…,offset=…`). */
  readonly replicas: readonly { readonly address: string; readonly state: string; readonly offset: number | null }[];
}

/** Parses the text of `INFO replication`. */
export function parseReplicationInfo(text: string): ReplicationInfo {
  const fields = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(":");
    if (colon > 0 && !line.startsWith("#")) fields.set(line.slice(0, colon), line.slice(colon + 1).trim());
  }
  const num = (name: string): number | null => {
    const value = fields.get(name);
    return value !== undefined && /^-?\d+$/.test(value) ? Number(value) : null;
  };
  const replicas: { address: string; state: string; offset: number | null }[] = [];
  for (const [name, value] of fields) {
    if (!/^slave\d+$/.test(name)) continue;
    const parts = Object.fromEntries(value.split(",").map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]));
    if (parts["ip"] === undefined || parts["port"] === undefined) continue;
    const host = parts["ip"].includes(":") ? `[${parts["ip"]}]` : parts["ip"];
    replicas.push({ address: `${host}:${parts["port"]}`, state: parts["state"] ?? "", offset: /^\d+$/.test(parts["offset"] ?? "") ? Number(parts["offset"]) : null });
  }
  return {
    role: fields.get("role") ?? "",
    masterReplOffset: num("master_repl_offset"),
    masterLinkStatus: fields.get("master_link_status") ?? null,
    masterLastIoSecondsAgo: num("master_last_io_seconds_ago"),
    replicaOffset: num("slave_repl_offset"),
    replicas,
  };
}

/**
 * One replica's status from what it said (`replica`: its INFO replication,
 * or why it could not be asked) and what its master said (null: not asked).
 */
export function replicaStatus(address: string, replica: ReplicationInfo | { readonly error: string }, master: ReplicationInfo | null): GroupReplicaStatus {
  const listed = master?.replicas.find((r) => r.address === address);
  const masterOffset = master?.masterReplOffset ?? null;
  const lag = (offset: number | null | undefined): number | null =>
    masterOffset === null || offset === null || offset === undefined ? null : Math.max(0, masterOffset - offset);
  if ("error" in replica) {
    // Not answering: its master's view (listed while the master has not noticed yet).
    const link = master === null || listed?.state === "online" ? "unknown" : "down";
    return { address, link, lagBytes: lag(listed?.offset), lastIoSeconds: null, error: replica.error };
  }
  if (replica.role !== "slave") return { address, link: "down", lagBytes: null, lastIoSeconds: null, error: `it is not replicating (role ${replica.role || "unknown"})` };
  const up = replica.masterLinkStatus === "up";
  const io = replica.masterLastIoSecondsAgo;
  return { address, link: up ? "up" : "down", lagBytes: lag(replica.replicaOffset), lastIoSeconds: up && io !== null && io >= 0 ? io : null };
}
