// Shared helpers of the integration specifications: real redis-server groups,
// clients that are always closed, and keys built deliberately in one group or
// in one slot.
import { once } from 'node:events';
import IORedis, { type Redis, type RedisOptions } from 'ioredis';
import { ShardedRedis, slotOf, type GroupSpec, type StaticTableOptions } from '../../src/index.js';
import { startRedisServers, type RedisServer } from '../../src/testing/index.js';

/** Real redis-server groups (ids 1..n), plus optional plain servers to compare with. */
export interface TestGroups {
  /** servers[i] is the master of group i + 1. */
  readonly servers: RedisServer[];
  /** `groups` for ShardedRedisOptions: `{ id: i + 1, master: servers[i].address }`. */
  readonly groups: GroupSpec[];
  /** Extra servers that are no group: for plain ioredis clients to compare with. */
  readonly plain: RedisServer[];
  /** A ShardedRedis over the groups; closed by stop(). */
  client(options?: Omit<StaticTableOptions, 'groups'>): ShardedRedis;
  /** A plain ioredis client to one of the plain servers (default the first); closed by stop(). */
  plainClient(redisOptions?: RedisOptions, index?: number): Redis;
  /** A plain ioredis client to group `id`'s master (not through shardis); closed by stop(). */
  direct(id: number, redisOptions?: RedisOptions): Redis;
  /** Closes every client made here, then stops the servers. */
  stop(): Promise<void>;
}

/** Starts `count` groups and `plain` extra servers. */
export async function startGroups(count: number, plain = 0): Promise<TestGroups> {
  const all = await startRedisServers(count + plain);
  const servers = all.slice(0, count);
  const extra = all.slice(count);
  const groups: GroupSpec[] = servers.map((s, i) => ({ id: i + 1, master: s.address }));
  const sharded: ShardedRedis[] = [];
  const raw: Redis[] = [];
  const rawTo = (server: RedisServer, redisOptions: RedisOptions): Redis => {
    const redis = new IORedis({ ...redisOptions, host: server.host, port: server.port });
    redis.on('error', () => {}); // reconnect noise while a test kills a server
    raw.push(redis);
    return redis;
  };
  return {
    servers,
    groups,
    plain: extra,
    client(options = {}) {
      const client = new ShardedRedis({ ...options, groups });
      client.on('error', () => {});
      sharded.push(client);
      return client;
    },
    plainClient(redisOptions = {}, index = 0) {
      const server = extra[index];
      if (server === undefined) throw new Error(`no plain server #${index}; startGroups(n, plain) starts them`);
      return rawTo(server, redisOptions);
    },
    direct(id, redisOptions = {}) {
      const server = servers[id - 1];
      if (server === undefined) throw new Error(`no group ${id}`);
      return rawTo(server, redisOptions);
    },
    async stop() {
      for (const client of sharded) client.disconnect();
      for (const redis of raw) redis.disconnect();
      await Promise.all(all.map((s) => s.stop()));
    },
  };
}

/** Anything that knows which group owns which slot. */
interface Owners {
  readonly slotTable: { readonly owner: Readonly<Int32Array> };
}

/** The group that owns `key` (as stored on the servers, i.e. with any keyPrefix already applied). */
export function groupOf(client: Owners, key: string | Buffer): number {
  return client.slotTable.owner[slotOf(key)]!;
}

const MAX_TRIES = 10_000;

/**
 * A fresh key from `gen` whose slot (of `prefix + key`) is owned by `group`.
 * With 3 even groups this takes about 3 tries; bounded so a bug cannot hang a test.
 */
export function keyIn(client: Owners, group: number, gen: (name?: string) => string, name = 'k', prefix = ''): string {
  for (let i = 0; i < MAX_TRIES; i++) {
    const key = gen(name);
    if (groupOf(client, prefix + key) === group) return key;
  }
  throw new Error(`no key for group ${group} in ${MAX_TRIES} tries`);
}

/** A hash tag owned by `group` (or any group): keys `{tag}:x` all share its slot. */
export function tagIn(client: Owners, gen: (name?: string) => string, group?: number): string {
  for (let i = 0; i < MAX_TRIES; i++) {
    const tag = gen('tag');
    if (group === undefined || groupOf(client, `{${tag}}`) === group) return tag;
  }
  throw new Error(`no tag for group ${group} in ${MAX_TRIES} tries`);
}

/** `names.length` keys sharing one slot through one hash tag (owned by `group` when given). */
export function sameSlot(client: Owners, gen: (name?: string) => string, names: string[], group?: number): string[] {
  const tag = tagIn(client, gen, group);
  return names.map((name) => `{${tag}}:${name}`);
}

/** Settles a promise into `{ ok, value }` or `{ error }`, so replies and errors compare alike. */
export type Outcome = { ok: true; value: unknown } | { ok: false; error: { name: string; message: string; ctor: string } };

export async function outcome(promise: Promise<unknown>): Promise<Outcome> {
  try {
    return { ok: true, value: await promise };
  } catch (error) {
    const e = error as Error;
    return { ok: false, error: { name: e.name, message: e.message, ctor: e.constructor.name } };
  }
}

/** Collects every batch of an object-mode stream (ScanStream and friends). */
export async function collect<T>(stream: AsyncIterable<T[]>): Promise<T[]> {
  const items: T[] = [];
  for await (const batch of stream) items.push(...batch);
  return items;
}

/** redisOptions for a client that fails fast while a group is down, and reconnects quickly once it is back. */
export const FAIL_FAST: RedisOptions = { maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => 50 };

/**
 * Kills group `id`'s server (SIGKILL) and waits until `client` saw its
 * connection close. Returns `restore`: restarts the server on the same port
 * and waits until `client`'s connection to it is ready again.
 */
export async function downGroup(env: TestGroups, client: ShardedRedis, id: number): Promise<() => Promise<void>> {
  const server = env.servers[id - 1];
  if (server === undefined) throw new Error(`no group ${id}`);
  const redis = client.group(id);
  const closed = once(redis, 'close');
  await server.kill();
  await closed;
  return async () => {
    await server.restart();
    if (redis.status !== 'ready') await once(redis, 'ready');
  };
}

/** How many times each group (ids 1..groups) has run `command` so far, from INFO commandstats. */
export async function commandCalls(client: ShardedRedis, command: string, groups = 3): Promise<number[]> {
  const name = command.toLowerCase().replace('|', '\\|');
  return Promise.all(
    Array.from({ length: groups }, async (_, i) => {
      const info = await client.group(i + 1).info('commandstats');
      const match = new RegExp(`^cmdstat_${name}:calls=(\\d+)`, 'm').exec(info);
      return match ? Number(match[1]) : 0;
    }),
  );
}
