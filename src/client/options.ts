import type { RedisOptions } from "ioredis";
import type { GroupSpec, SlotRange } from "../topology/table.js";
import type { CoordinatorLocation } from "../coordinator/connection.js";
import type { StaleTopologyPolicy } from "./lease-gate.js";
import type { ReadFrom } from "./read-from.js";

/** Options shared by both ways of building a client. */
export interface RoutingOptions {
  /**
   * Fan KEYS out to every group and concatenate the replies. KEYS blocks each
   * server while it runs; prefer scanStream().
   * @default false
   */
  allowKeys?: boolean;
  /**
   * Fan FLUSHDB / FLUSHALL out to every group. Without it they are refused,
   * since one call would erase every group.
   * @default false
   */
  allowFlush?: boolean;
  /**
   * Names this client's group connections (`CLIENT SETNAME shardis:<clientId>`).
   * @default a random id
   */
  clientId?: string;
  /**
   * How many commands may wait for one group while it is not connected (down,
   * reconnecting, or connecting for the first time). Past it, commands for
   * that group fail at once with a GroupQueueFullError, so memory stays
   * bounded while a group is down; the other groups are not affected. A
   * positive integer, or `Infinity` for no bound (as plain ioredis).
   * @default 10000
   */
  maxQueuedCommands?: number;
}

/** Options shared by both ways of giving `new ShardedRedis(...)` its table. */
interface ShardedRedisCommonOptions extends RoutingOptions {
  /**
   * ioredis options for every group connection (host and port come from the
   * groups). `keyPrefix`, `enableAutoPipelining`, `lazyConnect` and
   * `showFriendlyErrorStack` act on the sharded client as they do on ioredis.
   */
  redisOptions?: RedisOptions;
  /**
   * Where read-only commands (flagged `readonly` by @ioredis/commands, with
   * keys, not blocking) go when all their slots are stable: `'master'`;
   * `'replica'` or `'replicaPreferred'` (a healthy replica of the group, round
   * robin, else the master: both fall back); or a function
   * `(group, healthyReplicas) => address` returning the master or one of the
   * group's replicas. Slots in any migration state, MULTI, writes and EVAL
   * always use the master. Replica reads may be stale (replication is
   * asynchronous). Replicas come from the groups' `replicas`, or,
   * for a Sentinel-named group, from its Sentinels (`SENTINEL REPLICAS`).
   * @default 'master' (no replica connection is opened)
   */
  readFrom?: ReadFrom;
  /**
   * A replica lagging more than this behind its master is skipped (its reads
   * go to the master). Lag is measured every `replicaCheckMs` by comparing
   * the replica's replication offset with the master's offsets seen earlier.
   * @default 5000
   */
  maxReplicaLagMs?: number;
  /** How often each replica (and its master) is asked `INFO replication`. @default 1000 */
  replicaCheckMs?: number;
}

/** `new ShardedRedis(...)` with a static table: `groups`, and optionally `slots`. */
export interface StaticTableOptions extends ShardedRedisCommonOptions {
  /** The groups: a master ("host:port") and optional replicas each, or a Sentinel master name (`{ id, sentinel: { name } }`). */
  groups: GroupSpec[];
  /**
   * Which group owns which slots. Every slot 0..1023 must be owned exactly once.
   * @default the slots split evenly over the groups, in the order given
   */
  slots?: SlotRange[];
  /**
   * "host:port" of each Sentinel; needed when a group is given by `sentinel`.
   * Their credentials and TLS: `redisOptions.sentinelUsername`, `sentinelPassword`, `enableTLSForSentinelMode`.
   * @default none
   */
  sentinels?: string[];
  coordinator?: undefined;
  cluster?: undefined;
  leaseMs?: undefined;
  refreshMs?: undefined;
  onStaleTopology?: undefined;
  staleWaitMs?: undefined;
  migrateTimeoutMs?: undefined;
}

/** `new ShardedRedis(...)` following the table kept in a coordinator. */
export interface CoordinatorOptions extends ShardedRedisCommonOptions {
  /**
   * Follow the slot table kept in this Redis (a redis:// URL, ioredis options,
   * or an ioredis client you own and close yourself). Needs `cluster`.
   */
  coordinator: CoordinatorLocation;
  /** The cluster's name in the coordinator (keys `shardis:{<cluster>}:...`). */
  cluster: string;
  /**
   * How long a confirmation from the coordinator vouches for the table
   * (DESIGN §4). Past it, commands wait for a fresh confirmation.
   * @default 10000
   */
  leaseMs?: number;
  /** How often the table is confirmed when no event arrives. Must be below leaseMs. @default 1000 */
  refreshMs?: number;
  /**
   * Past the lease: `'fail'` holds commands for a fresh confirmation and fails
   * them with a StaleTopologyError after `staleWaitMs`; `'serve'` keeps
   * routing by the last table (for caches: a write may then be lost in a migration).
   * @default 'fail'
   */
  onStaleTopology?: StaleTopologyPolicy;
  /**
   * How long a command waits for a confirmed table (at start, or past the
   * lease) before failing with a StaleTopologyError.
   * @default redisOptions.commandTimeout, or 5000
   */
  staleWaitMs?: number;
  /**
   * While slots migrate, a command on them first moves its keys with MIGRATE
   * from the source group to the target; this is MIGRATE's own timeout.
   * @default 5000
   */
  migrateTimeoutMs?: number;
  groups?: undefined;
  slots?: undefined;
}

/**
 * Options of `new ShardedRedis(...)`: either a static table (`groups`, and
 * optionally `slots`), or a `coordinator` and `cluster` to follow live.
 */
export type ShardedRedisOptions = StaticTableOptions | CoordinatorOptions;

/** Options of `ShardedRedis.fromGroups(...)`. */
export interface FromGroupsOptions extends RoutingOptions {
  /** @default the slots split evenly over the groups, in ascending id order */
  slots?: SlotRange[];
  /**
   * Close the wrapped connections on quit() / disconnect().
   * @default false — they belong to the caller
   */
  closeWrappedClients?: boolean;
  /**
   * Prefix for every key. Defaults to the wrapped clients' own keyPrefix when
   * they all share one.
   */
  keyPrefix?: string;
  /** Coalesce the writes of one event-loop turn, like ioredis' option. @default false */
  enableAutoPipelining?: boolean;
  /** @default false */
  showFriendlyErrorStack?: boolean;
}
