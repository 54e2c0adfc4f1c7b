import type { RedisOptions } from "ioredis";
import type { GroupSpec, SlotRange } from "../topology/table.js";

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
}

/** Options of `new ShardedRedis(...)`. */
export interface ShardedRedisOptions extends RoutingOptions {
  /** The groups: a master ("host:port") and optional replicas each. */
  groups: GroupSpec[];
  /**
   * Which group owns which slots. Every slot 0..1023 must be owned exactly once.
   * @default the slots split evenly over the groups, in the order given
   */
  slots?: SlotRange[];
  /**
   * ioredis options for every group connection (host and port come from the
   * groups). `keyPrefix`, `enableAutoPipelining`, `lazyConnect` and
   * `showFriendlyErrorStack` act on the sharded client as they do on ioredis.
   */
  redisOptions?: RedisOptions;
}

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
