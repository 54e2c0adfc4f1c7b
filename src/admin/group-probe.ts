// Short-lived connections from the admin to group masters: one attempt, short
// timeouts, always closed after use. Used to count keys and memory (status)
// and to look for keys in slots about to change owner (assignSlots).
import IORedis, { type Redis, type RedisOptions } from "ioredis";
import { GroupUnavailableError, ShardisError } from "../errors.js";
import { closeQuietly } from "../coordinator/connection.js";
import { slotOf, SLOT_COUNT } from "../slot.js";
import { groupLabel, type GroupSpec } from "../topology/table.js";
import { masterConnectionOptions } from "../topology/master-address.js";

/** SCAN's COUNT hint when looking for keys. */
const SCAN_COUNT = 1000;
/**
 * SCAN calls one search may make: SCAN always ends, this only guards against
 * a server that never answers cursor 0 (10⁶ calls cover ~10⁹ keys).
 */
const MAX_SCAN_CALLS = 1_000_000;

export interface ProbeOptions {
  /** Credentials, TLS, db... as for the client's group connections. */
  readonly redisOptions: RedisOptions;
  /** Connect timeout and per-command timeout. */
  readonly timeoutMs: number;
}

/**
 * Connects to `group`'s master, runs `use`, and closes the connection. A
 * group that cannot be reached, or fails a command, is a
 * GroupUnavailableError with the underlying reason.
 */
export async function withMaster<T>(
  group: GroupSpec,
  options: ProbeOptions,
  use: (redis: Redis) => Promise<T>,
  /** The table's sentinels, for a Sentinel-named group. */
  sentinels?: readonly string[],
): Promise<T> {
  const redis = new IORedis({
    ...masterConnectionOptions(group, sentinels, options.redisOptions),
    // One attempt: no failover-driven reconnects either (its subscriptions would outlive quit()).
    failoverDetector: false,
    keyPrefix: undefined,
    lazyConnect: true,
    connectTimeout: options.timeoutMs,
    commandTimeout: options.timeoutMs,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    enableAutoPipelining: false,
    autoResendUnfulfilledCommands: false,
    connectionName: "shardis-admin",
  });
  // A failed connect() rejects with "Connection is closed."; the reason comes as an event.
  const last: { error: Error | null } = { error: null };
  redis.on("error", (error: Error) => {
    last.error = error;
  });
  let connected = false;
  try {
    await redis.connect();
    connected = true;
    return await use(redis);
  } catch (error) {
    if (error instanceof ShardisError) throw error;
    const cause = (connected ? null : last.error) ?? (error as Error);
    throw new GroupUnavailableError(group.id, groupLabel(group), cause.message, { cause });
  } finally {
    await closeQuietly(redis);
  }
}

/** Keys (DBSIZE) and memory in use (INFO memory's used_memory) of one server. */
export async function serverStats(redis: Redis): Promise<{ keys: number; usedMemory: number | null }> {
  const [keys, info] = await Promise.all([redis.dbsize(), redis.info("memory")]);
  const match = /^used_memory:(\d+)\r?$/m.exec(info);
  return { keys, usedMemory: match ? Number(match[1]) : null };
}

/**
 * SCANs the whole keyspace for keys whose slot is flagged in `inSlots`
 * (indexed by slot), and returns the first `limit` found, in SCAN order.
 */
export async function findKeysInSlots(redis: Redis, inSlots: Uint8Array, limit: number): Promise<{ key: Buffer; slot: number }[]> {
  if (inSlots.length !== SLOT_COUNT) throw new RangeError(`inSlots must have ${SLOT_COUNT} entries`);
  const found: { key: Buffer; slot: number }[] = [];
  let cursor = "0";
  for (let calls = 0; calls < MAX_SCAN_CALLS; calls++) {
    const [next, keys] = await redis.scanBuffer(cursor, "COUNT", SCAN_COUNT);
    for (const key of keys) {
      const slot = slotOf(key);
      if (inSlots[slot] === 1) {
        found.push({ key, slot });
        if (found.length >= limit) return found;
      }
    }
    cursor = String(next);
    if (cursor === "0") return found;
  }
  throw new ShardisError("ERR_SCAN_INCOMPLETE", `SCAN did not come back to cursor 0 after ${MAX_SCAN_CALLS} calls; the keys were not all checked`);
}

/** For each of `keys`, whether `redis` holds it (one pipeline of EXISTS). */
export async function existsEach(redis: Redis, keys: readonly (string | Buffer)[]): Promise<boolean[]> {
  const pipeline = redis.pipeline();
  for (const key of keys) pipeline.exists(key);
  const replies = (await pipeline.exec()) ?? [];
  return keys.map((_, i) => {
    const [error, reply] = replies[i] ?? [new Error("no reply to EXISTS"), null];
    if (error) throw error;
    return Number(reply) === 1;
  });
}
