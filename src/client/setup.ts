// How a ShardedRedis is set up from its options: the static table or the
// coordinator to follow, the connections it opens (or the ioredis clients it
// wraps), and the options checked on the way. Pure apart from creating
// (lazily connecting) ioredis instances.
import { randomBytes } from "node:crypto";
import IORedis, { type Redis, type RedisOptions } from "ioredis";
import { ArgumentError, TopologyError } from "../errors.js";
import { evenSlotRanges, validateTable, type GroupSpec, type SlotTable } from "../topology/table.js";
import { checkClusterName } from "../coordinator/keys.js";
import { openCoordinator, isIoredis, type CoordinatorConnection } from "../coordinator/connection.js";
import type { StaleTopologyPolicy } from "./lease-gate.js";
import type { ConnectionSource } from "./pool.js";
import type { MigrationHooks } from "./migration-route.js";
import type { RouterOptions } from "./router.js";
import type { ReplicaConnector } from "./replica-reads.js";
import { replicaReadSettings, type ReplicaReadSettings } from "./read-from.js";
import { masterConnectionOptions } from "../topology/master-address.js";
import { jitteredRetryStrategy } from "../backoff.js";
import type { CoordinatorOptions, FromGroupsOptions, ShardedRedisOptions } from "./options.js";

// fromGroups hands the constructor a ready setup under this key.
export const SETUP = Symbol("shardis.setup");

/** Everything a client needs, whichever way it was built. */
export interface ClientSetup {
  /** The static table, or null when following a coordinator. */
  table: SlotTable | null;
  follow?: {
    connection: () => CoordinatorConnection;
    cluster: string;
    leaseMs: number;
    refreshMs: number;
    policy: StaleTopologyPolicy;
    staleWaitMs: number;
    migration: Omit<MigrationHooks, "reroute" | "leaseHolds">;
  };
  lazyConnect?: boolean;
  connections: ConnectionSource;
  clientId: string;
  keyPrefix: string | undefined;
  showFriendlyErrorStack: boolean | undefined;
  enableAutoPipelining: boolean;
  router: RouterOptions;
  /** Set when readFrom is not 'master': how reads pick replicas, and how replica connections open. */
  reads?: { settings: ReplicaReadSettings; open: ReplicaConnector } | null;
  /** maxQueuedCommands (per group). */
  maxQueuedCommands?: number;
  /** redisOptions.commandTimeout of owned connections. */
  commandTimeout?: number;
}

export function setupFromOptions(options: ShardedRedisOptions): ClientSetup {
  if (typeof options !== "object" || options === null) {
    throw new ArgumentError("new ShardedRedis(options) needs an options object with groups, or with coordinator and cluster");
  }
  if (options.coordinator !== undefined) return setupFollowing(options);
  if ((options as { cluster?: unknown }).cluster !== undefined) {
    throw new ArgumentError("cluster is given without coordinator: give both to follow a coordinator, or groups for a static table");
  }
  const groups: unknown = options.groups;
  if (!Array.isArray(groups)) throw new TopologyError("groups must be a non-empty array of { id, master, replicas? }");
  const table = validateTable({ groups, slots: options.slots ?? evenSlotRanges(groups.map((g: GroupSpec) => g?.id)), sentinels: options.sentinels });
  const redisOptions: RedisOptions = { ...options.redisOptions };
  // A connectionName given in redisOptions becomes the client id (connections are always named shardis:<clientId>).
  const clientId = options.clientId ?? redisOptions.connectionName ?? randomClientId();
  return { table, ...ownedConnections(options, redisOptions, clientId) };
}

/** The part of a setup for connections shardis opens itself, from redisOptions. */
function ownedConnections(options: ShardedRedisOptions, redisOptions: RedisOptions, clientId: string): Omit<ClientSetup, "table" | "follow"> {
  return {
    lazyConnect: redisOptions.lazyConnect === true,
    connections: { connect: (group, sentinels) => ({ redis: new IORedis(ownedConnectionOptions(group, redisOptions, clientId, sentinels)), owned: true }) },
    clientId,
    keyPrefix: redisOptions.keyPrefix,
    showFriendlyErrorStack: redisOptions.showFriendlyErrorStack,
    enableAutoPipelining: redisOptions.enableAutoPipelining === true,
    router: routerOptions(options),
    reads: replicaReadSetup(options, redisOptions, clientId),
    maxQueuedCommands: maxQueuedCommands(options),
    commandTimeout: typeof redisOptions.commandTimeout === "number" && redisOptions.commandTimeout > 0 ? redisOptions.commandTimeout : undefined,
  };
}

function maxQueuedCommands(options: { maxQueuedCommands?: number }): number | undefined {
  const value = options.maxQueuedCommands;
  if (value === undefined || value === Infinity) return value;
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new ArgumentError(`maxQueuedCommands must be a positive integer or Infinity, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** readFrom: validated here; null with 'master' (no replica connection is ever opened). */
function replicaReadSetup(options: ShardedRedisOptions, redisOptions: RedisOptions, clientId: string): ClientSetup["reads"] {
  const settings = replicaReadSettings(options);
  if (settings === null) return null;
  // Same options as the masters' connections (no prefix, no resend, named shardis:<clientId>).
  const open: ReplicaConnector = (group, address) => new IORedis(ownedConnectionOptions({ id: group.id, master: address }, redisOptions, clientId));
  return { settings, open };
}

function setupFollowing(options: CoordinatorOptions): ClientSetup {
  if ((options as { groups?: unknown }).groups !== undefined || (options as { slots?: unknown }).slots !== undefined) {
    throw new ArgumentError("give either a coordinator (the table lives there) or groups and slots (a static table), not both");
  }
  const cluster = checkClusterName(options.cluster);
  const redisOptions: RedisOptions = { ...options.redisOptions };
  const leaseMs = positiveInteger(options.leaseMs ?? 10_000, "leaseMs");
  const refreshMs = positiveInteger(options.refreshMs ?? 1_000, "refreshMs");
  if (refreshMs >= leaseMs) {
    throw new ArgumentError(`refreshMs (${refreshMs}) must be below leaseMs (${leaseMs}), or the lease would run out between refreshes`);
  }
  const policy = options.onStaleTopology ?? "fail";
  if (policy !== "fail" && policy !== "serve") {
    throw new ArgumentError(`onStaleTopology must be 'fail' or 'serve', got ${JSON.stringify(policy)}`);
  }
  const staleWaitMs = positiveInteger(options.staleWaitMs ?? redisOptions.commandTimeout ?? 5_000, "staleWaitMs");
  const clientId = options.clientId ?? redisOptions.connectionName ?? randomClientId();
  const coordinator = options.coordinator!;
  // Credentials and TLS of redisOptions serve the coordinator too, unless it is given whole.
  const { host: _host, port: _port, path: _path, db: _db, ...shared } = redisOptions;
  return {
    table: null,
    follow: {
      connection: () => openCoordinator(coordinator, `shardis:${clientId}:coordinator`, typeof coordinator === "string" ? shared : {}),
      cluster,
      leaseMs,
      refreshMs,
      policy,
      staleWaitMs,
      migration: {
        // A command held while its slots move never outlives its commandTimeout.
        waitMs: Math.min(staleWaitMs, redisOptions.commandTimeout || Infinity),
        migrateTimeoutMs: positiveInteger(options.migrateTimeoutMs ?? 5_000, "migrateTimeoutMs"),
        auth: { username: redisOptions.username, password: redisOptions.password },
        db: redisOptions.db ?? 0,
      },
    },
    ...ownedConnections(options, redisOptions, clientId),
  };
}

function positiveInteger(value: unknown, name: string): number {
  if (!Number.isSafeInteger(value) || (value as number) < 1) throw new ArgumentError(`${name} must be a positive integer (ms), got ${JSON.stringify(value)}`);
  return value as number;
}

export function setupFromClients(clients: Record<number, Redis> | ReadonlyMap<number, Redis>, options: FromGroupsOptions): ClientSetup {
  const entries: [unknown, unknown][] = clients instanceof Map ? [...clients.entries()] : Object.entries(clients ?? {});
  if (entries.length === 0) throw new TopologyError("fromGroups needs at least one ioredis client, e.g. { 1: redisA, 2: redisB }");
  const readFrom = (options as { readFrom?: unknown }).readFrom;
  if (readFrom !== undefined && readFrom !== "master") {
    throw new ArgumentError("readFrom needs replica connections, and fromGroups wraps one connection per group: use new ShardedRedis({ groups: [{ id, master, replicas }], readFrom })");
  }
  const byId = new Map<number, Redis>();
  for (const [key, redis] of entries) {
    const id = Number(key);
    if (!Number.isSafeInteger(id) || id < 1) throw new TopologyError(`group ids must be positive integers, got ${JSON.stringify(key)}`);
    if (!isIoredis(redis)) throw new TopologyError(`group ${id} must be an ioredis client (new Redis(...))`);
    byId.set(id, redis);
  }
  const ids = [...byId.keys()].sort((a, b) => a - b);
  const prefixes = new Set(ids.map((id) => byId.get(id)!.options.keyPrefix ?? ""));
  if (options.keyPrefix === undefined && prefixes.size > 1) {
    throw new TopologyError(
      `the wrapped clients have different keyPrefix options (${[...prefixes].map((p) => JSON.stringify(p)).join(", ")}); give one keyPrefix in the options`,
    );
  }
  const groups: GroupSpec[] = ids.map((id) => {
    const { host = "127.0.0.1", port = 6379 } = byId.get(id)!.options;
    return { id, master: `${host.includes(":") ? `[${host}]` : host}:${port}` };
  });
  const owned = options.closeWrappedClients === true;
  return {
    table: validateTable({ groups, slots: options.slots ?? evenSlotRanges(ids) }),
    connections: { connect: (group) => ({ redis: byId.get(group.id)!, owned }) },
    clientId: options.clientId ?? randomClientId(),
    keyPrefix: (options.keyPrefix ?? [...prefixes][0]) || undefined,
    showFriendlyErrorStack: options.showFriendlyErrorStack,
    enableAutoPipelining: options.enableAutoPipelining === true,
    router: routerOptions(options),
    maxQueuedCommands: maxQueuedCommands(options),
  };
}

function routerOptions(options: { allowKeys?: boolean; allowFlush?: boolean }): RouterOptions {
  return { allowKeys: options.allowKeys === true, allowFlush: options.allowFlush === true };
}

function randomClientId(): string {
  return randomBytes(6).toString("hex");
}

function ownedConnectionOptions(group: GroupSpec, redisOptions: RedisOptions, clientId: string, sentinels: readonly string[] = []): RedisOptions {
  return {
    // host/port, or the sentinels and master name of a Sentinel-named group.
    ...masterConnectionOptions(group, sentinels, redisOptions),
    // The sharded client applies the prefix (slots are computed on prefixed keys).
    keyPrefix: undefined,
    // Batching is done by the sharded client across groups (WriteCoalescer).
    enableAutoPipelining: false,
    // A command is never resent behind the router's back (DESIGN §5).
    autoResendUnfulfilledCommands: false,
    // Reconnects back off with jitter, so clients that lost a group do not return in lockstep (unless given).
    retryStrategy: redisOptions.retryStrategy !== undefined ? redisOptions.retryStrategy : jitteredRetryStrategy(),
    // The migrator finds a client's connections by this name (DESIGN §5).
    connectionName: `shardis:${clientId}`,
  };
}
