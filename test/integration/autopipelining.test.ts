// Specification of enableAutoPipelining on a sharded client, on real
// redis-server processes: the writes of one event-loop turn are coalesced per
// group, and nothing else changes — every command gets exactly the reply it
// would get without the option, in order, none lost or doubled, including
// commands issued before a group's connection is ready (DESIGN §7).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Redis } from 'ioredis';
import { ShardedRedis, slotOf, type GroupSpec, type StaticTableOptions } from '../../src/index.js';
import { keygen, startRedisServers, stopAllRedisServers, type RedisServer } from '../../src/testing/index.js';
import { direct, groupsOf, keyIn, within } from '../fixtures/integration-kit.js';

const key = keygen('autopipelining');

let servers: RedisServer[] = [];
let groups: GroupSpec[] = [];
/** Direct connections to each server, to look at what the server sees. */
let observers: Redis[] = [];
const made: ShardedRedis[] = [];
const raws: Redis[] = [];

function client(options: Partial<StaticTableOptions> = {}): ShardedRedis {
  const sharded = new ShardedRedis({ groups, ...options });
  made.push(sharded);
  return sharded;
}

before(async () => {
  servers = await startRedisServers(3);
  groups = groupsOf(servers);
  observers = servers.map((server) => direct(server));
});

after(async () => {
  for (const sharded of made) sharded.disconnect();
  for (const redis of [...raws, ...observers]) redis.disconnect();
  await stopAllRedisServers();
});

/** `total_reads_processed` of each server: how many reads it made from client sockets. */
async function readsPerServer(): Promise<number[]> {
  return Promise.all(
    observers.map(async (observer) => {
      const stats = await observer.info('stats');
      const match = /^total_reads_processed:(\d+)/m.exec(stats);
      assert.ok(match, 'INFO stats has total_reads_processed');
      return Number(match[1]);
    }),
  );
}

/** `count` INCRs over `keys`, all issued in one turn of the event loop. */
async function incrementAll(sharded: ShardedRedis, keys: readonly string[], count: number): Promise<number[]> {
  return within(
    10_000,
    `${count} INCRs`,
    Promise.all(Array.from({ length: count }, (_, i) => sharded.incr(keys[i % keys.length]!))),
  );
}

/** Reads every counter straight from its server (not through the client under test). */
async function countersOnServers(sharded: ShardedRedis, keys: readonly string[]): Promise<number[]> {
  return Promise.all(keys.map(async (k) => Number(await observers[sharded.slotTable.owner[slotOf(k)]! - 1]!.get(k))));
}

/**
 * A mixed batch issued in one turn of the event loop: single-key commands on
 * every group, split commands (MGET, DEL, EXISTS) across groups, a hash, a
 * Redis error (WRONGTYPE), a cross-group pipeline and a MULTI. Returns each
 * command's outcome, errors as "error: <message>".
 */
async function mixedBatch(sharded: ShardedRedis, k: Record<string, string>): Promise<unknown[]> {
  const tag = `{${k['tag']}}`;
  const calls: Promise<unknown>[] = [
    sharded.get(k['a1']!),
    sharded.set(k['a2']!, 'new-a2'),
    sharded.get(k['a2']!), // sees the SET just before it
    sharded.mget(k['a1']!, k['a2']!, k['a3']!, k['missing']!),
    sharded.hgetall(k['hash']!),
    sharded.hset(k['hash']!, 'f3', 'v3'),
    sharded.hgetall(k['hash']!),
    sharded.get(k['hash']!), // WRONGTYPE
    sharded.incr(k['counter']!),
    sharded.incrby(k['counter']!, 10),
    sharded.exists(k['a1']!, k['a2']!, k['a3']!, k['missing']!),
    sharded.del(k['a1']!, k['a3']!, k['missing']!),
    sharded.mget(k['a1']!, k['a2']!, k['a3']!),
    sharded.pipeline().get(k['a2']!).incr(k['counter']!).hget(k['hash']!, 'f1').get(k['hash']!).exec(),
    sharded.multi().set(`${tag}:x`, '1').incr(`${tag}:x`).get(`${tag}:x`).exec(),
    sharded.lpush(k['list']!, 'a', 'b', 'c'),
    sharded.lrange(k['list']!, 0, -1),
    sharded.ping(),
    sharded.dbsize().then((n) => typeof n), // the count depends on other tests' keys
  ];
  const outcomes = await within(10_000, 'the mixed batch', Promise.allSettled(calls));
  return outcomes.map((o) => (o.status === 'fulfilled' ? normalize(o.value) : `error: ${(o.reason as Error).message}`));
}

/** Pipeline results carry Error objects; compare them by message. */
function normalize(value: unknown): unknown {
  if (value instanceof Error) return `error: ${value.message}`;
  if (Array.isArray(value)) return value.map(normalize);
  return value;
}

/** Keys for the mixed batch, one set per client so their data never meets; a1..a3 land in groups 1..3. */
function batchKeys(sharded: ShardedRedis): Record<string, string> {
  return {
    a1: keyIn(sharded, 1, key, 'a1'),
    a2: keyIn(sharded, 2, key, 'a2'),
    a3: keyIn(sharded, 3, key, 'a3'),
    missing: key('missing'),
    hash: key('hash'),
    counter: key('counter'),
    list: key('list'),
    tag: key('tag'),
  };
}

async function seed(sharded: ShardedRedis, k: Record<string, string>): Promise<void> {
  await sharded.set(k['a1']!, 'v1');
  await sharded.set(k['a2']!, 'v2');
  await sharded.set(k['a3']!, 'v3');
  await sharded.hset(k['hash']!, 'f1', 'v1', 'f2', 'v2');
  await sharded.set(k['counter']!, '5');
}

describe('enableAutoPipelining over three groups', () => {
  test('5,000 concurrent INCRs over 100 keys: every reply distinct per key, and the counters add up exactly', async () => {
    const sharded = client({ redisOptions: { enableAutoPipelining: true } });
    await within(5000, 'connect()', sharded.connect());
    const keys = Array.from({ length: 100 }, (_, i) => key(`counter-${i}`));
    const replies = await incrementAll(sharded, keys, 5000);

    // Each key was incremented 50 times and saw each of 1..50 exactly once.
    const seen = new Map<string, number[]>();
    replies.forEach((reply, i) => {
      const k = keys[i % keys.length]!;
      seen.set(k, [...(seen.get(k) ?? []), reply]);
    });
    for (const [k, values] of seen) {
      assert.deepEqual(
        [...values].sort((a, b) => a - b),
        Array.from({ length: 50 }, (_, i) => i + 1),
        `replies of ${k}`,
      );
      assert.deepEqual(values, [...values].sort((a, b) => a - b), `replies of ${k} come back in the order the INCRs were issued`);
    }
    const counters = await countersOnServers(sharded, keys);
    assert.deepEqual(counters, keys.map(() => 50));
    assert.equal(counters.reduce((a, b) => a + b, 0), 5000);
    // The keys really are spread over all three groups.
    assert.deepEqual(new Set(keys.map((k) => sharded.slotTable.owner[slotOf(k)])), new Set([1, 2, 3]));
    await sharded.quit();
  });

  test('the writes of one turn are coalesced: each server reads the 5,000 commands in a handful of reads', async () => {
    const sharded = client({ redisOptions: { enableAutoPipelining: true } });
    await within(5000, 'connect()', sharded.connect());
    const keys = Array.from({ length: 100 }, (_, i) => key(`coalesced-${i}`));
    const before = await readsPerServer();
    await incrementAll(sharded, keys, 5000);
    const after = await readsPerServer();
    // ~1,700 commands per server; written one by one they take hundreds of reads.
    // (The observer's own INFO adds one read per server.)
    const reads = after.map((n, i) => n - before[i]!);
    for (const [i, n] of reads.entries()) assert.ok(n <= 100, `server of group ${i + 1} made ${n} reads for ~1,700 commands`);
    await sharded.quit();
  });

  test('a mixed batch issued in one turn gets exactly the replies it gets without auto-pipelining', async () => {
    const plain = client();
    const auto = client({ redisOptions: { enableAutoPipelining: true } });
    await within(5000, 'connect()', Promise.all([plain.connect(), auto.connect()]));
    const plainKeys = batchKeys(plain);
    const autoKeys = batchKeys(auto);
    await seed(plain, plainKeys);
    await seed(auto, autoKeys);

    const expected = await mixedBatch(plain, plainKeys);
    const actual = await mixedBatch(auto, autoKeys);
    assert.deepEqual(actual, expected);
    // And the expectation is what Redis says, not an accident of both clients.
    assert.deepEqual(expected.slice(0, 4), ['v1', 'OK', 'new-a2', ['v1', 'new-a2', 'v3', null]]);
    assert.match(String(expected[7]), /^error: WRONGTYPE/);
    await Promise.all([plain.quit(), auto.quit()]);
  });

  test('commands issued while the groups are still connecting (lazyConnect) are all answered, in order', async () => {
    const sharded = client({ redisOptions: { enableAutoPipelining: true, lazyConnect: true } });
    assert.equal(sharded.status, 'wait');
    const keys = Array.from({ length: 30 }, (_, i) => key(`lazy-${i}`));
    const replies = await incrementAll(sharded, keys, 3000);
    assert.deepEqual(replies.slice(0, 30), keys.map(() => 1));
    assert.deepEqual(replies.slice(-30), keys.map(() => 100));
    assert.deepEqual(await countersOnServers(sharded, keys), keys.map(() => 100));
    assert.equal(sharded.status, 'ready');
    await sharded.quit();
  });

  test('commands issued right after construction, before "ready", are all answered', async () => {
    const sharded = client({ redisOptions: { enableAutoPipelining: true } });
    assert.equal(sharded.status, 'connecting');
    const k = batchKeys(sharded);
    const written = await within(5000, 'writes before ready', Promise.all([sharded.set(k['a1']!, 'x'), sharded.set(k['a2']!, 'y'), sharded.set(k['a3']!, 'z')]));
    assert.deepEqual(written, ['OK', 'OK', 'OK']);
    assert.deepEqual(await sharded.mget(k['a1']!, k['a2']!, k['a3']!), ['x', 'y', 'z']);
    await sharded.quit();
  });
});

describe('fromGroups with enableAutoPipelining', () => {
  async function wrapped(): Promise<Redis[]> {
    const redises = servers.map((server) => direct(server));
    raws.push(...redises);
    await within(5000, 'the wrapped clients to be ready', Promise.all(redises.map((r) => (r.status === 'ready' ? undefined : once(r, 'ready')))));
    return redises;
  }

  test('concurrent INCRs add up exactly, and writes are coalesced', async () => {
    const [r1, r2, r3] = await wrapped();
    const sharded = ShardedRedis.fromGroups({ 1: r1!, 2: r2!, 3: r3! }, { enableAutoPipelining: true });
    made.push(sharded);
    const keys = Array.from({ length: 100 }, (_, i) => key(`wrapped-${i}`));
    const before = await readsPerServer();
    await incrementAll(sharded, keys, 5000);
    const after = await readsPerServer();
    assert.deepEqual(await countersOnServers(sharded, keys), keys.map(() => 50));
    for (const [i, n] of after.map((n, i) => n - before[i]!).entries()) {
      assert.ok(n <= 100, `server of group ${i + 1} made ${n} reads for ~1,700 commands`);
    }
    await sharded.quit();
  });

  test('a mixed batch gets the same replies as through a client without auto-pipelining', async () => {
    const [r1, r2, r3] = await wrapped();
    const auto = ShardedRedis.fromGroups({ 1: r1!, 2: r2!, 3: r3! }, { enableAutoPipelining: true });
    made.push(auto);
    const plain = client();
    await plain.connect();
    const autoKeys = batchKeys(auto);
    const plainKeys = batchKeys(plain);
    await seed(auto, autoKeys);
    await seed(plain, plainKeys);
    assert.deepEqual(await mixedBatch(auto, autoKeys), await mixedBatch(plain, plainKeys));
    await Promise.all([auto.quit(), plain.quit()]);
  });

  test('wrapped clients that are still connecting: commands wait for them and are all answered', async () => {
    const redises = servers.map((server) => direct(server));
    raws.push(...redises);
    const sharded = ShardedRedis.fromGroups({ 1: redises[0]!, 2: redises[1]!, 3: redises[2]! }, { enableAutoPipelining: true });
    made.push(sharded);
    const keys = Array.from({ length: 30 }, (_, i) => key(`wrapped-early-${i}`));
    const replies = await incrementAll(sharded, keys, 600);
    assert.deepEqual(replies.slice(-30), keys.map(() => 20));
    assert.deepEqual(await countersOnServers(sharded, keys), keys.map(() => 20));
    await sharded.quit();
  });
});
