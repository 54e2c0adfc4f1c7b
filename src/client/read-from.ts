import commandTable from "@ioredis/commands/built/commands.json";
import { ArgumentError } from "../errors.js";

/**
 * The pure parts of reading from replicas (DESIGN §3.6): the `readFrom`
 * option, which commands may be served by a replica, and how a replica's lag
 * is judged from `INFO replication`. No sockets here; replica-reads.ts does
 * the I/O.
 */

/** One group as a `readFrom` function sees it. */
export interface ReadFromGroup {
  readonly id: number;
  /** "host:port" of the master (of a Sentinel-named group: the one its sentinels named last). */
  readonly master: string;
  /**
   * "host:port" of every replica the table lists, healthy or not; of a
   * Sentinel-named group, the replicas its sentinels report (its master
   * excluded), refreshed every few seconds and after a failover.
   */
  readonly replicas: readonly string[];
}

/**
 * Picks the server for one read: return `group.master` or one of
 * `replicas` (the replicas that are healthy now: connected, replicating, and
 * within `maxReplicaLagMs`). Any other address rejects the command with an
 * ArgumentError; a listed replica that is not healthy falls back to the master.
 */
export type ReadFromFunction = (group: ReadFromGroup, replicas: readonly string[]) => string;

/**
 * Where read-only commands on stable slots go.
 * - `'master'`: always the master (no replica connection is opened).
 * - `'replica'`, `'replicaPreferred'`: a healthy replica of the group (round
 *   robin), else the master. Both fall back to the master; no read fails
 *   because no replica is healthy.
 * - a function: picks per read (see ReadFromFunction).
 */
export type ReadFrom = "master" | "replica" | "replicaPreferred" | ReadFromFunction;

/** Validated replica-read settings; null when reads go to masters only. */
export interface ReplicaReadSettings {
  readonly readFrom: Exclude<ReadFrom, "master">;
  readonly maxLagMs: number;
  readonly checkMs: number;
}

export const DEFAULT_MAX_REPLICA_LAG_MS = 5_000;
export const DEFAULT_REPLICA_CHECK_MS = 1_000;

/** Validates `readFrom`, `maxReplicaLagMs` and `replicaCheckMs`; null for `'master'` (the default). */
export function replicaReadSettings(options: { readFrom?: unknown; maxReplicaLagMs?: unknown; replicaCheckMs?: unknown }): ReplicaReadSettings | null {
  const readFrom = options.readFrom ?? "master";
  if (readFrom !== "master" && readFrom !== "replica" && readFrom !== "replicaPreferred" && typeof readFrom !== "function") {
    throw new ArgumentError(`readFrom must be 'master', 'replica', 'replicaPreferred' or a function (group, replicas) => address, got ${describe(readFrom)}`);
  }
  const maxLagMs = positiveMs(options.maxReplicaLagMs ?? DEFAULT_MAX_REPLICA_LAG_MS, "maxReplicaLagMs");
  const checkMs = positiveMs(options.replicaCheckMs ?? DEFAULT_REPLICA_CHECK_MS, "replicaCheckMs");
  if (readFrom === "master") return null;
  return { readFrom: readFrom as ReplicaReadSettings["readFrom"], maxLagMs, checkMs };
}

function positiveMs(value: unknown, name: string): number {
  if (!Number.isSafeInteger(value) || (value as number) < 1) throw new ArgumentError(`${name} must be a positive integer (ms), got ${describe(value)}`);
  return value as number;
}

function describe(value: unknown): string {
  return typeof value === "function" ? "a function" : typeof value === "symbol" ? value.toString() : (JSON.stringify(value) ?? String(value));
}

interface CommandMeta {
  readonly flags: readonly string[];
  readonly subcommands?: Readonly<Record<string, CommandMeta>>;
}

const META = commandTable as unknown as Readonly<Record<string, CommandMeta>>;
/** Per command name: readable by a replica, or "sub" when its subcommand decides (OBJECT, ...). */
const readOnlyCache = new Map<string, boolean | "sub">();

/**
 * True when @ioredis/commands flags the command (or its subcommand, e.g.
 * OBJECT ENCODING) `readonly` and not `blocking`: such commands may be served
 * by a replica. Blocking reads (XREAD, ...) stay on the master, where
 * shardis can unblock them when their slot moves.
 */
export function isReplicaReadable(name: string, firstArg: unknown): boolean {
  let cached = readOnlyCache.get(name);
  if (cached === undefined) {
    const meta = lookup(name.toLowerCase());
    if (meta === undefined) return false; // unknown names are not cached: user strings must not grow it
    cached = meta.subcommands ? "sub" : readOnly(meta);
    readOnlyCache.set(name, cached);
  }
  if (cached !== "sub") return cached;
  const subcommands = lookup(name.toLowerCase())!.subcommands!;
  const subcommand = typeof firstArg === "string" || firstArg instanceof Buffer ? String(firstArg).toLowerCase() : "";
  return Object.prototype.hasOwnProperty.call(subcommands, subcommand) && readOnly(subcommands[subcommand]!);
}

function lookup(name: string): CommandMeta | undefined {
  return Object.prototype.hasOwnProperty.call(META, name) ? META[name] : undefined;
}

function readOnly(meta: CommandMeta): boolean {
  return meta.flags.includes("readonly") && !meta.flags.includes("blocking");
}

/** What shardis reads from `INFO replication`. */
export interface ReplicationInfo {
  /** "master" or "slave" (Redis's word for a replica). */
  readonly role: string;
  /** A replica's `master_link_status:up`; always false on a master. */
  readonly linkUp: boolean;
  /** The replication offset: `master_repl_offset` on a master, `slave_repl_offset` on a replica. */
  readonly offset: number | null;
  /** The replication id the server is on (`master_replid`; a replica reports its master's). */
  readonly replid: string | null;
}

export function parseReplicationInfo(text: string): ReplicationInfo {
  const fields = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(":");
    if (colon > 0 && !line.startsWith("#")) fields.set(line.slice(0, colon), line.slice(colon + 1).trim());
  }
  const role = fields.get("role") ?? "unknown";
  const offsetText = role === "slave" ? fields.get("slave_repl_offset") : fields.get("master_repl_offset");
  const offset = offsetText === undefined || !/^\d+$/.test(offsetText) ? null : Number(offsetText);
  return { role, linkUp: role === "slave" && fields.get("master_link_status") === "up", offset, replid: fields.get("master_replid") ?? null };
}

/**
 * A master's replication offsets over time, sampled every check (`at`: a
 * monotonic time in ms, taken when the sample was asked for). A replica's lag
 * is the age of the oldest sample holding data it has not applied yet: if the
 * master had passed offset R at time t and the replica is still at R, the
 * replica is at least `now - t` behind. The resolution is the check interval.
 */
export class OffsetHistory {
  private samples: { at: number; offset: number }[] = [];
  private replid: string | null = null;

  constructor(
    /** Samples older than this (ms) are dropped; keep at least maxLagMs plus a check or two. */
    private readonly keepMs: number,
  ) {}

  get replicationId(): string | null {
    return this.replid;
  }

  get size(): number {
    return this.samples.length;
  }

  record(at: number, info: ReplicationInfo): void {
    if (info.offset === null) return;
    if (info.replid !== this.replid) {
      // A new replication history (the master restarted or was replaced): old offsets mean nothing.
      this.samples = [];
      this.replid = info.replid;
    }
    const last = this.samples[this.samples.length - 1];
    if (last !== undefined && (info.offset < last.offset || at < last.at)) this.samples = [];
    this.samples.push({ at, offset: info.offset });
    const oldest = at - this.keepMs;
    let drop = 0;
    while (drop < this.samples.length - 1 && this.samples[drop]!.at < oldest) drop++;
    if (drop > 0) this.samples.splice(0, drop);
  }

  /**
   * The lag of a replica at `offset`, at time `now`: null with no sample yet;
   * `behindAll` when the replica has not reached even the oldest sample (its
   * lag is then at least lagMs, and unknown beyond).
   */
  lagOf(offset: number, now: number): { lagMs: number; behindAll: boolean } | null {
    const samples = this.samples;
    if (samples.length === 0) return null;
    for (let i = 0; i < samples.length; i++) {
      if (samples[i]!.offset > offset) return { lagMs: Math.max(0, now - samples[i]!.at), behindAll: i === 0 };
    }
    return { lagMs: 0, behindAll: false };
  }
}

/** Whether a replica may serve reads, and if not, why. */
export interface ReplicaVerdict {
  readonly healthy: boolean;
  readonly lagMs: number | null;
  readonly reason: string | null;
}

/** Judges a replica from its `INFO replication` and its master's offset history. */
export function judgeReplica(info: ReplicationInfo, history: OffsetHistory, now: number, maxLagMs: number): ReplicaVerdict {
  if (info.role !== "slave") return { healthy: false, lagMs: null, reason: `it is not a replica (role: ${info.role})` };
  if (!info.linkUp) return { healthy: false, lagMs: null, reason: "its replication link to the master is down" };
  if (info.offset === null) return { healthy: false, lagMs: null, reason: "it reports no replication offset" };
  if (history.replicationId !== null && info.replid !== null && info.replid !== history.replicationId) {
    return { healthy: false, lagMs: null, reason: `it replicates another history than its group's master (replication id ${info.replid}, master's ${history.replicationId})` };
  }
  const lag = history.lagOf(info.offset, now);
  if (lag === null) return { healthy: false, lagMs: null, reason: "its lag is unknown: no replication offset of the master seen yet" };
  const lagMs = Math.round(lag.lagMs);
  if (lag.behindAll) return { healthy: false, lagMs, reason: `it is behind every master offset seen (at least ${lagMs} ms)` };
  if (lagMs > maxLagMs) return { healthy: false, lagMs, reason: `it lags ${lagMs} ms behind the master (maxReplicaLagMs is ${maxLagMs})` };
  return { healthy: true, lagMs, reason: null };
}
