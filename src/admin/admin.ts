// ShardisAdmin: reads and changes one cluster's slot table in the coordinator
// (DESIGN §2). Every change is a whole new table, validated, then written
// with a compare-and-set on the version it was made from, and announced.
import type { RedisOptions } from "ioredis";
import createDebug from "debug";
import { ArgumentError, ClusterExistsError, GroupUnavailableError, MigrationLockedError, SlotsNotEmptyError, TopologyError, VersionConflictError, type SlotKey } from "../errors.js";
import { openCoordinator, type CoordinatorConnection, type CoordinatorLocation } from "../coordinator/connection.js";
import { coordinatorKeys, checkClusterName, type CoordinatorKeys } from "../coordinator/keys.js";
import { parseClientEntry, WRITE_TABLE, WRITE_TABLE_AND_JOB } from "../coordinator/scripts.js";
import { SLOT_COUNT } from "../slot.js";
import { parseTableJson, rangesOf, type ClusterTable } from "../topology/format.js";
import { evenSlotRanges, formatRanges, type GroupSpec, type SlotRange } from "../topology/table.js";
import { findKeysInSlots, withMaster, type ProbeOptions } from "./group-probe.js";
import { probeGroupStatus } from "./group-status.js";
import { planRebalance as makePlan, type RebalanceOptions, type RebalancePlan } from "./rebalance.js";
import { clientStatuses, readRegistry, removeUnchanged } from "./registry.js";
import { slotsOf, type ClusterStatus, type GroupStatus } from "./status.js";
import { prepareTable, storedVersion, type JobWithTable, type TableChange } from "./table-write.js";
import type { MigrationJob } from "./migration/job.js";
import { Migrator } from "./migration/migrator.js";
import type { MigrateOptions, MigrationReport, MigrationRunOptions, RebalanceRunOptions } from "./migration/options.js";
import { flagsOfSpans, type SlotSpan } from "./migration/slot-set.js";

const debug = createDebug("shardis:admin");

/** At most this many keys are named when assignSlots refuses. */
const KEYS_SHOWN = 10;

export interface ShardisAdminOptions {
  /**
   * The coordinator Redis: a redis:// URL, ioredis options, or an ioredis
   * client of yours (then close() leaves it open; it must have no keyPrefix).
   */
  readonly coordinator: CoordinatorLocation;
  /** The cluster's name: letters, digits, `.`, `_`, `-`. */
  readonly cluster: string;
  /**
   * Connection options for the group masters (credentials, TLS, db), used
   * by status() and by assignSlots' key check. keyPrefix is ignored (keys
   * are looked at as stored); timeouts come from `groupTimeoutMs`, and each
   * connection makes one attempt (no retries) and is closed after use.
   * @default {}
   */
  readonly redisOptions?: RedisOptions;
  /**
   * Connect timeout and per-command timeout on group masters; a master
   * that does not answer within it is reported, not waited for.
   * @default 2000
   */
  readonly groupTimeoutMs?: number;
}

export interface InitClusterOptions {
  readonly groups: readonly GroupSpec[];
  /** @default the slots split evenly over `groups`, in the order given (evenSlotRanges) */
  readonly slots?: readonly SlotRange[];
  /** "host:port" of each Sentinel; needed when a group is given by `sentinel: { name }`. @default none */
  readonly sentinels?: readonly string[];
  /**
   * Replace a table that is already there (readable or not). The new
   * version is above both the old one and any version a registered client
   * reported, so clients accept it.
   * @default false
   */
  readonly force?: boolean;
}

export interface AssignSlotsOptions {
  /**
   * Skip looking for keys in the slots on their current owners and on the
   * receiving group. Keys left there become unreachable (or, on the receiving
   * group, suddenly visible).
   * @default false
   */
  readonly skipKeyCheck?: boolean;
}

export type { SlotSpan };

/**
 * The admin side of one cluster. Changes refuse (nothing written) rather than
 * guess: a table that does not validate, a lost race (VersionConflictError:
 * read again and retry), slots with keys in them (SlotsNotEmptyError).
 */
export class ShardisAdmin {
  readonly cluster: string;
  private readonly keys: CoordinatorKeys;
  private readonly connection: CoordinatorConnection;
  private readonly probe: ProbeOptions;
  private readonly migrator: Migrator;

  constructor(options: ShardisAdminOptions) {
    if (typeof options !== "object" || options === null) {
      throw new ArgumentError("ShardisAdmin needs options { coordinator, cluster, redisOptions? }");
    }
    this.cluster = checkClusterName(options.cluster);
    this.keys = coordinatorKeys(this.cluster);
    const timeoutMs = options.groupTimeoutMs ?? 2000;
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
      throw new ArgumentError(`groupTimeoutMs must be a positive number of ms, got ${JSON.stringify(options.groupTimeoutMs)}`);
    }
    this.probe = { redisOptions: options.redisOptions ?? {}, timeoutMs };
    this.connection = openCoordinator(options.coordinator, "shardis-admin");
    this.migrator = new Migrator({
      cluster: this.cluster,
      keys: this.keys,
      coordinator: this.connection.redis,
      subscriber: () => this.connection.subscriber(),
      readTable: () => this.readTable(),
      writeTable: (change, expected, job) => this.writeTable(change, expected, expected + 1, job),
      probe: this.probe,
    });
  }

  /** The cluster's table; null when the cluster has none yet. A TopologyError when the stored table is invalid. */
  async readTable(): Promise<ClusterTable | null> {
    const raw = await this.connection.redis.get(this.keys.table);
    if (raw === null) return null;
    const table = parseTableJson(raw, this.cluster);
    // The write script compares the first "version" in the text; it must be the one parsed.
    if (storedVersion(raw) !== table.version) {
      throw new TopologyError(
        `the slot table of cluster "${this.cluster}" has more than one "version" field (the first says ${storedVersion(raw)}, the last ${table.version})`,
      );
    }
    return table;
  }

  /**
   * Writes the cluster's first table (version 1). Refuses with a
   * ClusterExistsError when there is one already, unless `force`.
   */
  async initCluster(options: InitClusterOptions): Promise<ClusterTable> {
    if (typeof options !== "object" || options === null || !Array.isArray(options.groups)) {
      throw new ArgumentError("initCluster needs { groups: [{ id, master, replicas? }, ...], slots?, force? }");
    }
    const raw = await this.connection.redis.get(this.keys.table);
    const expected = storedVersion(raw);
    if (raw !== null && options.force !== true) throw new ClusterExistsError(this.cluster, readableVersion(raw, this.cluster));
    const slots = options.slots ?? evenSlotRanges(options.groups.map((g) => g.id));
    const above = raw === null ? 0 : Math.max(expected, await this.newestClientVersion());
    return this.writeTable({ groups: options.groups, slots, sentinels: options.sentinels }, expected, above + 1);
  }

  /**
   * Adds a group that owns no slot yet: `{ id, master, replicas? }` or
   * `{ id, sentinel: { name } }`. Refuses an id, an address or a sentinel
   * name already in the table. `options.sentinels` replaces the table's
   * sentinels (needed for the first Sentinel-named group).
   */
  async addGroup(spec: GroupSpec, options: { readonly sentinels?: readonly string[] } = {}): Promise<ClusterTable> {
    if (typeof spec !== "object" || spec === null) throw new ArgumentError("addGroup needs a group { id, master, replicas? } or { id, sentinel: { name } }");
    const table = await this.requireTable();
    const existing = table.groups.find((g) => g.id === spec.id);
    if (existing) throw new TopologyError(`group ${spec.id} is already in cluster "${this.cluster}" (${existing.sentinel !== undefined ? `sentinel ${existing.sentinel.name}` : `master ${existing.master}`}); choose another id`);
    const sentinels = options.sentinels ?? table.sentinels;
    return this.writeTable({ groups: [...table.groups, spec], slots: table.slots, migrations: table.migrations, sentinels }, table.version);
  }

  /** Removes a group that owns no slot and is in no migration. */
  async removeGroup(id: number): Promise<ClusterTable> {
    const table = await this.requireTable();
    if (!table.groups.some((g) => g.id === id)) throw this.unknownGroup(id, table);
    const owned = slotsOf(table, id);
    if (owned.length > 0) {
      throw new TopologyError(
        `group ${id} still owns ${owned.length} slots (${formatRanges(owned)}); move them to other groups first ` +
          `(rebalance with weight 0 for group ${id}), then remove it. Nothing was changed.`,
      );
    }
    const migration = table.migrations.find((m) => m.to === id);
    if (migration) throw new TopologyError(`group ${id} is receiving slots from group ${migration.from} (${migration.state}); finish that migration first`);
    return this.writeTable({ groups: table.groups.filter((g) => g.id !== id), slots: table.slots, migrations: table.migrations, sentinels: table.sentinels }, table.version);
  }

  /**
   * Gives `ranges` to `group` without moving keys: only for slots that no
   * migration touches and in which neither their current owner nor `group`
   * holds a key (SCAN of each, unless `skipKeyCheck`). Slots that hold keys
   * need a live migration (SlotsNotEmptyError). Slots `group` already owns
   * are left as they are; when that is all of them, nothing is written.
   *
   * Make sure no client writes to these slots meanwhile: a key written
   * between the check and the table change stays behind on the old owner.
   */
  async assignSlots(ranges: readonly SlotSpan[], group: number, options: AssignSlotsOptions = {}): Promise<ClusterTable> {
    const wanted = flagsOfSpans(ranges, "ranges");
    const table = await this.requireTable();
    if (!table.groups.some((g) => g.id === group)) throw this.unknownGroup(group, table);
    const migrating: number[] = [];
    for (const m of table.migrations) for (const [a, b] of m.slots) for (let s = a; s <= b; s++) if (wanted[s] === 1) migrating.push(s);
    if (migrating.length > 0) {
      throw new TopologyError(`slots ${formatRanges(migrating.sort((a, b) => a - b))} are in a migration; they cannot be assigned until it is finished`);
    }
    const owner = Int32Array.from(table.owner);
    const changing = new Uint8Array(SLOT_COUNT);
    const sources = new Set<number>();
    for (let slot = 0; slot < SLOT_COUNT; slot++) {
      if (wanted[slot] === 0 || owner[slot] === group) continue;
      changing[slot] = 1;
      sources.add(owner[slot]!);
      owner[slot] = group;
    }
    if (sources.size === 0) return table;
    if (options.skipKeyCheck !== true) await this.checkNoKeys(table, changing, [...[...sources].sort((a, b) => a - b), group], group);
    return this.writeTable({ groups: table.groups, slots: rangesOf(owner), migrations: table.migrations, sentinels: table.sentinels }, table.version);
  }

  /** The moves that would spread the slots by weight (see planRebalance); changes nothing. */
  async planRebalance(options: RebalanceOptions = {}): Promise<RebalancePlan> {
    return makePlan(await this.requireTable(), options);
  }

  /**
   * The table, migrations, registered clients (ages on the coordinator's
   * clock), each group's keys and memory, where its master is, and its
   * replicas' link and lag (INFO replication). A server that does not answer
   * is reported with `error`, not thrown. Removes registry entries whose
   * lease ran out more than CLIENT_EXPIRY_GRACE_MS ago, unless they changed
   * since read (they are still listed, with `removed: true`). Like
   * readTable, a TopologyError when the stored table is invalid.
   */
  async status(): Promise<ClusterStatus> {
    const table = await this.readTable();
    const { clients, expired } = clientStatuses(await readRegistry(this.connection.redis, this.keys));
    const removed = new Set(await removeUnchanged(this.connection.redis, this.keys, expired));
    if (removed.size > 0) debug("removed expired client entries: %s", [...removed].join(", "));
    const groups = table === null ? [] : await Promise.all(table.groups.map((g) => this.groupStatus(table, g)));
    return {
      cluster: this.cluster,
      table,
      migrations: table?.migrations ?? [],
      clients: clients.map((c) => (removed.has(c.id) ? { ...c, removed: true } : c)),
      groups,
    };
  }

  /**
   * Moves slots, with their keys, to another group while clients use them
   * (DESIGN §5): pending → preparing → migrating → verifying → done, each step
   * saved in the coordinator so that any migrator can resume it. One group
   * must own all the slots, none may be in a migration, and the target must
   * hold no key of them (TargetNotEmptyError, unless clearTarget). Takes the
   * cluster's migration lock for its whole run (MigrationLockedError when
   * another migrator holds it). A run that fails or is stopped (signal)
   * leaves the job for resumeMigration (or abortMigration, before keys move).
   */
  async migrate(options: MigrateOptions): Promise<MigrationReport> {
    return this.migrator.migrate(options);
  }

  /**
   * Plans a rebalance (planRebalance: weights, groups), then migrates each
   * move in turn under one lock; answers a report per move. A move that
   * fails stops the rebalance and leaves its job for resumeMigration; the
   * moves after it are not made (plan again afterwards).
   */
  async rebalance(options: RebalanceRunOptions = {}): Promise<MigrationReport[]> {
    return this.migrator.rebalance(options);
  }

  /** The migration job in progress (phase, cursor, counters), or null when there is none. */
  async migrationStatus(): Promise<MigrationJob | null> {
    return this.migrator.status();
  }

  /**
   * Continues the migration job left in the coordinator (by a migrator that
   * failed, was stopped or killed) from where it stands, checked against the
   * table. A MigrationStateError when there is none, or it does not match the table.
   */
  async resumeMigration(options: MigrationRunOptions = {}): Promise<MigrationReport> {
    return this.migrator.resume(options);
  }

  /**
   * Undoes the migration job while it is pending or preparing (before any
   * key can have moved): the table gives the slots back to the source with
   * no migration, and the job is deleted; clients holding commands for the
   * slots send them to the source. Past preparing, a MigrationStateError:
   * resume instead.
   */
  async abortMigration(): Promise<void> {
    return this.migrator.abort();
  }

  /** Closes the coordinator connection (unless it was given as a client). */
  async close(): Promise<void> {
    await this.connection.close();
  }

  /**
   * The one way a table is written: validated whole, stored with a
   * compare-and-set on `expected`, and its version published on the events
   * channel (WRITE_TABLE). A lost race is a VersionConflictError. With `job`
   * (the migrator), only while the migration lock is the caller's, saving the
   * job in the same step (WRITE_TABLE_AND_JOB); a MigrationLockedError when
   * the lock is not.
   */
  private async writeTable(change: TableChange, expected: number, version = expected + 1, job?: JobWithTable): Promise<ClusterTable> {
    const { table, json } = prepareTable(change, version, this.cluster);
    const { redis } = this.connection;
    const { keys } = this;
    try {
      if (job === undefined) await WRITE_TABLE.run(redis, [keys.table, keys.events], [expected, json, version]);
      else await WRITE_TABLE_AND_JOB.run(redis, [keys.table, keys.events, keys.lock, keys.migration], [expected, json, version, job.lockValue, job.json]);
    } catch (error) {
      const message = error instanceof Error ? error.message : "";
      const conflict = /^VERSIONCONFLICT the table is at version (-?\d+)/.exec(message);
      if (conflict) throw new VersionConflictError(expected, Number(conflict[1]));
      if (message.startsWith("NOTLOCKED")) throw new MigrationLockedError(this.cluster, null, -1, true);
      throw error;
    }
    debug("cluster %s: wrote version %d over %d", this.cluster, version, expected);
    return table;
  }

  private async requireTable(): Promise<ClusterTable> {
    const table = await this.readTable();
    if (table === null) {
      throw new TopologyError(`cluster "${this.cluster}" has no slot table yet; initialize it first (initCluster, or \`shardis init\`)`);
    }
    return table;
  }

  private unknownGroup(id: number, table: ClusterTable): ArgumentError {
    return new ArgumentError(`group ${JSON.stringify(id)} is not in cluster "${this.cluster}"; its groups are ${table.groups.map((g) => g.id).join(", ")}`);
  }

  /** The highest table version any registered client reported (0: none). */
  private async newestClientVersion(): Promise<number> {
    const entries = await this.connection.redis.hvals(this.keys.clients);
    return entries.reduce((max, text) => Math.max(max, parseClientEntry(text)?.version ?? 0), 0);
  }

  /** SCANs each group in `groups` for keys in the `changing` slots; refuses when there are any. */
  private async checkNoKeys(table: ClusterTable, changing: Uint8Array, groups: readonly number[], to: number): Promise<void> {
    const outcomes = await Promise.allSettled(
      groups.map(async (id): Promise<SlotKey[]> => {
        const spec = table.groups.find((g) => g.id === id)!;
        const found = await withMaster(spec, this.probe, (redis) => findKeysInSlots(redis, changing, KEYS_SHOWN), table.sentinels);
        return found.map(({ key, slot }) => ({ key: key.toString(), slot, group: id }));
      }),
    );
    const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === "rejected");
    if (failed) {
      const error: unknown = failed.reason;
      if (!(error instanceof GroupUnavailableError)) throw error;
      throw new GroupUnavailableError(
        error.group,
        error.address,
        `${error.reason} (its keys in the slots could not be checked, so nothing was changed; skipKeyCheck skips the check)`,
        { cause: error },
      );
    }
    const keys = outcomes.flatMap((o) => (o.status === "fulfilled" ? o.value : [])).slice(0, KEYS_SHOWN);
    if (keys.length > 0) throw new SlotsNotEmptyError(to, keys);
  }

  private async groupStatus(table: ClusterTable, group: GroupSpec): Promise<GroupStatus> {
    return probeGroupStatus(table, group, this.probe);
  }
}

/** The version of a stored table, or -1 when it does not parse. */
function readableVersion(raw: string, cluster: string): number {
  try {
    return parseTableJson(raw, cluster).version;
  } catch {
    return -1;
  }
}

