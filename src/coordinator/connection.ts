import IORedis, { type Redis, type RedisOptions } from "ioredis";
import createDebug from "debug";
import { ArgumentError } from "../errors.js";
import { jitteredRetryStrategy } from "../backoff.js";

const debug = createDebug("shardis:coordinator");

/** Where the coordinator is: a redis:// URL, ioredis options, or an ioredis client you already have. */
export type CoordinatorLocation = string | RedisOptions | Redis;

/** The coordinator connections of one client or admin. */
export interface CoordinatorConnection {
  /** For scripts and reads. */
  readonly redis: Redis;
  /** True when shardis opened `redis` and closes it. */
  readonly owned: boolean;
  /** A new connection for SUBSCRIBE (always owned). */
  subscriber(): Redis;
  /** Closes what shardis opened. */
  close(): Promise<void>;
}

/** Options shardis always sets on its own coordinator connections. */
const COORDINATOR_DEFAULTS: RedisOptions = {
  // A confirmation that was not answered is not resent later, out of order.
  autoResendUnfulfilledCommands: false,
  enableAutoPipelining: false,
  // Fail fast when the coordinator is away; the refresh loop retries on its own.
  maxRetriesPerRequest: 1,
};

/** Reconnects back off with jitter (many clients lose the coordinator at once); a retryStrategy given wins. */
const RECONNECT: RedisOptions = { retryStrategy: jitteredRetryStrategy() };

/**
 * Opens (or adopts) the coordinator connection. `name` becomes the
 * connection name, so operators can tell shardis connections apart.
 */
export function openCoordinator(location: CoordinatorLocation, name: string, extra: RedisOptions = {}): CoordinatorConnection {
  let redis: Redis;
  let owned: boolean;
  if (isIoredis(location)) {
    if (location.options.keyPrefix) {
      throw new ArgumentError(
        "the coordinator client has a keyPrefix; shardis keeps its own keys (shardis:{<cluster>}:...), so give it a client without keyPrefix",
      );
    }
    redis = location;
    owned = false;
  } else if (typeof location === "string") {
    if (!/^rediss?:\/\//.test(location)) {
      throw new ArgumentError(`coordinator must be a redis:// URL, ioredis options or an ioredis client, got ${JSON.stringify(location)}`);
    }
    redis = new IORedis(location, { ...RECONNECT, ...extra, ...COORDINATOR_DEFAULTS, keyPrefix: undefined, connectionName: name });
    owned = true;
  } else if (typeof location === "object" && location !== null) {
    redis = new IORedis({ ...RECONNECT, ...extra, ...location, ...COORDINATOR_DEFAULTS, keyPrefix: undefined, connectionName: name });
    owned = true;
  } else {
    throw new ArgumentError(`coordinator must be a redis:// URL, ioredis options or an ioredis client, got ${JSON.stringify(location)}`);
  }
  // Outages are reported by whoever uses the connection; ioredis' own error events are only logged.
  if (owned) redis.on("error", (error: Error) => debug("%s: %s", name, error.message));
  const opened: Redis[] = owned ? [redis] : [];
  return {
    redis,
    owned,
    subscriber() {
      // duplicate() keeps the address, credentials and TLS of the command connection.
      const subscriber = redis.duplicate({ ...COORDINATOR_DEFAULTS, lazyConnect: false, keyPrefix: undefined, connectionName: `${name}:events` });
      opened.push(subscriber);
      return subscriber;
    },
    async close() {
      await Promise.all(opened.splice(0).map((r) => closeQuietly(r)));
    },
  };
}

/** QUIT when up (pending replies arrive first), otherwise disconnect at once. */
export async function closeQuietly(redis: Redis): Promise<void> {
  if (redis.status === "end") return;
  if (redis.status !== "ready") return void redis.disconnect();
  await redis.quit().catch(() => redis.disconnect());
}

export function isIoredis(value: unknown): value is Redis {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as Redis).sendCommand === "function" &&
    typeof (value as Redis).options === "object" &&
    !(value as { isCluster?: boolean }).isCluster
  );
}
