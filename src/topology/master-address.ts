// Where a group's master is right now. A group given by address has a fixed
// master; a group given by a Sentinel name has whatever master its sentinels
// elected last. MIGRATE (the client's, and the migrator's) names the target
// by address, so both resolve it here, from the same rules.
import IORedis, { type Redis, type RedisOptions } from "ioredis";
import { TopologyError } from "../errors.js";
import { parseAddress, type GroupSpec } from "./table.js";

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** Resolves the current master of one group (a fixed address, or asked anew each time). */
export type MasterResolver = () => Promise<HostPort>;

/** Connection options (credentials, TLS) for talking to sentinels. */
export interface SentinelAskOptions {
  readonly sentinelUsername?: string | undefined;
  readonly sentinelPassword?: string | undefined;
  readonly enableTLSForSentinelMode?: boolean | undefined;
  readonly sentinelTLS?: RedisOptions["tls"];
  /** Connect and command timeout per sentinel. @default 2000 */
  readonly timeoutMs?: number | undefined;
  /** Reuse a sentinel's answer this long (ms) when there is no connection to ask. @default 0 */
  readonly cacheMs?: number | undefined;
}

/**
 * The ioredis options for a connection to a group's master: host and port,
 * or, for a Sentinel-named group, the sentinels and the master name
 * (`role: 'master'`), so the connection follows a failover by itself.
 * Owned overrides are applied by the caller on top.
 */
export function masterConnectionOptions(group: GroupSpec, sentinels: readonly string[] | undefined, redisOptions: RedisOptions): RedisOptions {
  if (group.sentinel === undefined) {
    const { host, port } = parseAddress(group.master, `group ${group.id}: master`);
    return { ...redisOptions, host, port };
  }
  const { host: _host, port: _port, path: _path, ...rest } = redisOptions;
  return {
    ...rest,
    sentinels: sentinelAddresses(group, sentinels),
    name: group.sentinel.name,
    role: "master",
    // failoverDetector (reconnect on +switch-master) is left to redisOptions: in ioredis 6 its
    // sentinel subscriptions outlive quit() and keep the process alive.
  };
}

/**
 * The current master of `group`. Address groups: their `master`. Sentinel
 * groups: the peer of `connection` when it is up (free, and what ioredis
 * found through the sentinels), else the first sentinel that answers
 * `SENTINEL get-master-addr-by-name`.
 */
export function masterResolver(
  group: GroupSpec,
  sentinels: readonly string[] | undefined,
  connection?: () => Redis | undefined,
  options: SentinelAskOptions = {},
): MasterResolver {
  if (group.sentinel === undefined) {
    const fixed = parseAddress(group.master, `group ${group.id}: master`);
    return () => Promise.resolve(fixed);
  }
  const addresses = sentinelAddresses(group, sentinels);
  const name = group.sentinel.name;
  let cached: { address: HostPort; until: number } | null = null;
  return async () => {
    const peer = connectedPeer(connection?.());
    if (peer !== null) return peer;
    if (cached !== null && Date.now() < cached.until) return cached.address;
    const address = await askSentinels(addresses, name, options);
    cached = { address, until: Date.now() + (options.cacheMs ?? 0) };
    return address;
  };
}

/** The remote address of a ready connection, or null. */
export function connectedPeer(redis: Redis | undefined): HostPort | null {
  if (redis === undefined || redis.status !== "ready") return null;
  const socket = redis.stream as { remoteAddress?: string; remotePort?: number } | undefined;
  const host = socket?.remoteAddress;
  const port = socket?.remotePort;
  if (host === undefined || port === undefined) return null;
  // An IPv4 peer on a dual-stack socket reads "::ffff:10.0.0.1".
  return { host: host.startsWith("::ffff:") ? host.slice(7) : host, port };
}

/** A connection to one sentinel for a question or two: one attempt, short timeouts, errors kept quiet (callers report them). */
export function oneShotSentinelConnection(sentinel: HostPort, options: SentinelAskOptions, timeoutMs: number): Redis {
  const redis = new IORedis({
    host: sentinel.host,
    port: sentinel.port,
    username: options.sentinelUsername,
    password: options.sentinelPassword,
    tls: options.enableTLSForSentinelMode === true ? options.sentinelTLS : undefined,
    lazyConnect: true,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
  });
  redis.on("error", () => {});
  return redis;
}

/** Asks each sentinel in turn for `name`'s master; the first answer wins. */
export async function askSentinels(sentinels: readonly HostPort[], name: string, options: SentinelAskOptions = {}): Promise<HostPort> {
  const reasons: string[] = [];
  for (const sentinel of sentinels) {
    const redis = oneShotSentinelConnection(sentinel, options, options.timeoutMs ?? 2000);
    try {
      await redis.connect();
      const reply = (await redis.call("SENTINEL", "get-master-addr-by-name", name)) as [string, string] | null;
      if (Array.isArray(reply) && reply.length === 2) return { host: String(reply[0]), port: Number(reply[1]) };
      reasons.push(`${sentinel.host}:${sentinel.port}: knows no master "${name}"`);
    } catch (error) {
      reasons.push(`${sentinel.host}:${sentinel.port}: ${(error as Error).message}`);
    } finally {
      redis.disconnect();
    }
  }
  throw new TopologyError(`no sentinel named the master of "${name}" (${reasons.join("; ")})`);
}

function sentinelAddresses(group: GroupSpec, sentinels: readonly string[] | undefined): HostPort[] {
  if (sentinels === undefined || sentinels.length === 0) {
    throw new TopologyError(`group ${group.id} is given by a sentinel name, but the table lists no sentinels`);
  }
  return sentinels.map((s, i) => parseAddress(s, `sentinels[${i}]`));
}

/** The sentinel credentials and TLS of a set of ioredis options. */
export function sentinelAskOptions(redisOptions: RedisOptions): SentinelAskOptions {
  return {
    sentinelUsername: redisOptions.sentinelUsername,
    sentinelPassword: redisOptions.sentinelPassword,
    enableTLSForSentinelMode: redisOptions.enableTLSForSentinelMode,
    sentinelTLS: redisOptions.sentinelTLS,
  };
}

/** "host:port" of an address (an IPv6 host in brackets), as tables write it. */
export function formatHostPort({ host, port }: HostPort): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}
