// The migrator's connection to the source group's master: kept for the whole
// run, reconnecting on its own, but never sending a command later by itself:
// no resend after a reconnect, and no offline queue (a migrator that was
// paused, and fenced off the source meanwhile, must not have a MIGRATE go out
// once ioredis reconnects; a retried step goes through `retrying`, which
// checks the lock first). Its command timeout fits MIGRATE of a large key.
import IORedis, { type Redis, type RedisOptions } from "ioredis";
import createDebug from "debug";
import { failInFlightOnClose } from "../../in-flight.js";
import { groupLabel, type GroupSpec } from "../../topology/table.js";
import { masterConnectionOptions } from "../../topology/master-address.js";
import { connectionIdsNamed } from "./fence.js";

const debug = createDebug("shardis:migrator");

export interface SourceLinkOptions {
  readonly redisOptions: RedisOptions;
  /** Connect timeout. */
  readonly connectTimeoutMs: number;
  /** Longest command: MIGRATE's own timeout plus headroom. */
  readonly commandTimeoutMs: number;
  /** The connection's name (migratorName(cluster)). */
  readonly name: string;
}

/** The name of a migrator's connections to a source: one migrator per cluster runs at a time, so any other connection of this name is a predecessor's. */
export function migratorName(cluster: string): string {
  return `shardis-migrator:${cluster}`;
}

export async function openSource(group: GroupSpec, options: SourceLinkOptions, sentinels?: readonly string[]): Promise<Redis> {
  const redis = new IORedis({
    // A Sentinel-named source: the connection follows a failover of its master.
    ...masterConnectionOptions(group, sentinels, options.redisOptions),
    keyPrefix: undefined,
    lazyConnect: true,
    enableOfflineQueue: false,
    connectTimeout: options.connectTimeoutMs,
    commandTimeout: options.commandTimeoutMs,
    retryStrategy: (times: number) => Math.min(50 * times, 1000),
    maxRetriesPerRequest: 1,
    enableAutoPipelining: false,
    autoResendUnfulfilledCommands: false,
    connectionName: options.name,
  });
  redis.on("error", (error: Error) => debug("group %d (%s): %s", group.id, groupLabel(group), error.message));
  // A MIGRATE in flight when the connection is killed (a paused migrator fenced by its successor) must fail, not hang.
  failInFlightOnClose(redis, () => new Error("Connection is closed."));
  try {
    await redis.connect();
  } catch (error) {
    redis.disconnect();
    throw error;
  }
  return redis;
}

/**
 * Kills the source connections of earlier migrators of the cluster (all but
 * this one's): one that was paused, not dead, must not send a MIGRATE or an
 * UNLINK after another took over. Answers how many were killed.
 */
export async function fencePredecessors(source: Redis, name: string): Promise<number> {
  const own = String(await source.client("ID"));
  const list = String(await source.call("CLIENT", "LIST", "TYPE", "normal"));
  const ids = connectionIdsNamed(list, new Set([name])).filter((id) => id !== own);
  let killed = 0;
  for (const id of ids) killed += Number(await source.call("CLIENT", "KILL", "ID", id));
  if (killed > 0) debug("killed %d connections of earlier migrators (%s)", killed, name);
  return killed;
}

/** MIGRATE's AUTH/AUTH2 arguments for the target, from the admin's redisOptions. */
export function migrateAuth(redisOptions: RedisOptions): string[] {
  const { username, password } = redisOptions;
  if (password === undefined || password === null || password === "") return [];
  return username === undefined || username === null || username === "" ? ["AUTH", password] : ["AUTH2", username, password];
}
