// Specification: pipelines, MULTI/EXEC and scripts defined with defineCommand
// (DESIGN §3.4 and §3.2).
//
// pipeline(): commands go to their groups (each group's share as one ioredis
// pipeline) and exec() answers `[error, result][]` in the caller's order,
// exactly like an ioredis pipeline on one server.
// multi(): a transaction runs on one server, so all its keys must share one
// slot; otherwise exec() rejects with a CrossSlotError and nothing is sent.
// defineCommand: a script's keys route it; keys in 2 slots are a CrossSlotError.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ChainableCommander, Redis, Result } from 'ioredis';
import { ShardedRedis, CrossSlotError, ArgumentError, ShardisError, GroupUnavailableError } from '../../src/index.js';
import { keygen } from '../../src/testing/index.js';
import { startGroups, keyIn, groupOf, sameSlot, outcome, downGroup, FAIL_FAST, commandCalls, type TestGroups } from './helpers.js';

// Commands added by defineCommand below, typed the way ioredis documents it.
declare module 'ioredis' {
  interface RedisCommander<Context> {
    shardisSpecIncr(key: string): Result<number, Context>;
    shardisSpecCopy(from: string, to: string): Result<string, Context>;
  }
}

const INCR_LUA = "return redis.call('incr', KEYS[1])";
const COPY_LUA = "redis.call('set', KEYS[2], redis.call('get', KEYS[1])); return 'copied'";

let env: TestGroups;
let client: ShardedRedis;
let plain: Redis;
const gen = keygen('pipeline');

before(async () => {
  env = await startGroups(3, 1);
  client = env.client();
  plain = env.plainClient();
  await Promise.all([client.connect(), plain.ping()]);
  for (const r of [client, plain] as const) {
    r.defineCommand('shardisSpecIncr', { numberOfKeys: 1, lua: INCR_LUA });
    r.defineCommand('shardisSpecCopy', { numberOfKeys: 2, lua: COPY_LUA });
  }
});

after(async () => {
  await env.stop();
});

/** A fresh key owned by group `g`. */
const key = (g: number, name = 'k'): string => keyIn(client, g, gen, name);

type Entry = [error: Error | null, result: unknown];

/** A pipeline entry in comparable form: the error's class, name and message, or the result. */
function normalize(entries: Entry[] | null): unknown {
  if (entries === null) return null;
  return entries.map((entry) => {
    const [error, result] = entry;
    if (error) return { length: entry.length, error: [error.constructor.name, error.name, error.message] };
    return { length: entry.length, result };
  });
}

/** Builds the same pipeline on the sharded client and on plain ioredis, and requires the same exec() answer. */
async function samePipeline(build: (p: ChainableCommander) => ChainableCommander): Promise<Entry[]> {
  const got = await build(client.pipeline()).exec();
  const want = await build(plain.pipeline()).exec();
  assert.deepEqual(normalize(got), normalize(want));
  assert.ok(got);
  return got;
}

/** How many times each group has run `command` so far (INFO commandstats). */
const calls = (command: string): Promise<number[]> => commandCalls(client, command);

describe('pipeline()', () => {
  test('over keys in all groups: [error, result] per command in caller order, an error entry in its place', async () => {
    const [a, b, c] = [key(1), key(2), key(3)];
    const [a2, c2] = [key(1, 'a2'), key(3, 'c2')];
    const entries = await samePipeline((p) =>
      p
        .set(a, '1')
        .set(b, 'text')
        .incr(a)
        .incr(b) // not an integer: [ReplyError] here, the rest runs
        .get(c)
        .set(c, 'c', 'GET')
        .hset(a2, { f: 'v', g: 'w' })
        .hgetall(a2)
        .rpush(c2, 'x', 'y')
        .lrange(c2, 0, -1)
        .get(a)
        .getBuffer(b)
        .zadd(c2, 1, 'm') // WRONGTYPE
        .incrbyfloat(a, 0.5),
    );
    assert.equal(entries.length, 14);
    assert.ok(entries[3]![0] instanceof Error);
    assert.match(entries[3]![0]!.message, /not an integer/);
    assert.deepEqual(entries[10], [null, '2']);
    // Each command reached the group owning its key.
    assert.equal(await client.group(1).get(a), '2.5');
    assert.equal(await client.group(2).get(b), 'text');
    assert.equal(await client.group(3).get(c), 'c');
  });

  test('each group gets its share as one pipeline (one round trip), all groups at once', async () => {
    const keys = [key(1), key(2), key(3), key(1, 'x'), key(2, 'x'), key(3, 'x')];
    const before = await calls('set');
    const p = client.pipeline();
    for (const k of keys) p.set(k, k);
    await p.exec();
    assert.deepEqual((await calls('set')).map((n, i) => n - before[i]!), [2, 2, 2]);
    assert.deepEqual(await client.mget(...keys), keys);
  });

  test('split commands (MGET, MSET, DEL, EXISTS) inside a pipeline merge like the plain commands', async () => {
    const [a, b, c] = [key(1), key(2), key(3)];
    await samePipeline((p) =>
      p
        .mset(a, '1', b, '2', c, '3')
        .mget(c, 'nope', a, b)
        .mset({ [a]: 'x', [c]: 'z' })
        .exists(a, b, c, a)
        .del(a, b)
        .mget(a, b, c)
        .unlink(c, 'nope')
        .mget(a, b, c),
    );
  });

  test('keyless commands inside: PING like ioredis, DBSIZE summed over the groups', async () => {
    const k = key(2);
    await samePipeline((p) => p.ping().set(k, 'v').ping('hello').get(k));
    const entries = await client.pipeline().set(key(1), 'v').dbsize().exec();
    const sizes = await Promise.all([1, 2, 3].map((g) => client.group(g).dbsize()));
    assert.deepEqual(entries, [[null, 'OK'], [null, sizes[0]! + sizes[1]! + sizes[2]!]]);
  });

  test('array form pipeline([[name, ...args]]) like ioredis', async () => {
    const [a, b] = [key(1), key(3)];
    const commands = [
      ['set', a, 'v'],
      ['get', a],
      ['mset', a, 'x', b, 'y'],
      ['mget', b, a],
      ['incr', b],
    ];
    const got = await client.pipeline(commands).exec();
    const want = await plain.pipeline(commands).exec();
    assert.deepEqual(normalize(got), normalize(want));
    assert.deepEqual(got?.slice(0, 4), [
      [null, 'OK'],
      [null, 'v'],
      [null, 'OK'],
      [null, ['y', 'x']],
    ]);
  });

  test('per-command callbacks are called with (error, result), and exec(callback) with the entries', async () => {
    const [a, b] = [key(1), key(2)];
    const seen: [string, Error | null | undefined, unknown][] = [];
    const p = client.pipeline();
    p.set(a, '5', (err, res) => seen.push(['set', err, res]));
    p.set(b, 'word');
    p.incr(a, (err, res) => seen.push(['incr a', err, res]));
    p.incr(b, (err, res) => seen.push(['incr b', err, res]));
    p.mget(a, b, (err, res) => seen.push(['mget', err, res]));
    const viaCallback = await new Promise<Entry[] | null | undefined>((resolve, reject) => {
      p.exec((err, res) => (err ? reject(err) : resolve(res)));
    });
    assert.equal(viaCallback?.length, 5);
    assert.deepEqual(seen.map(([name]) => name).sort(), ['incr a', 'incr b', 'mget', 'set']);
    const byName = new Map(seen.map(([name, err, res]) => [name, { err, res }]));
    assert.deepEqual(byName.get('set'), { err: null, res: 'OK' });
    assert.deepEqual(byName.get('incr a'), { err: null, res: 6 });
    assert.match(String(byName.get('incr b')?.err), /not an integer/);
    assert.deepEqual(byName.get('mget'), { err: null, res: ['6', 'word'] });
  });

  test('an empty pipeline resolves [] like ioredis', async () => {
    assert.deepEqual(await client.pipeline().exec(), await plain.pipeline().exec());
    assert.deepEqual(await client.pipeline().exec(), []);
    assert.deepEqual(await client.pipeline([]).exec(), []);
  });

  test('a cross-slot atomic command inside: that entry is [CrossSlotError], the others still run', async () => {
    const [a, b] = [key(1), key(2)];
    const before = await calls('rename');
    const entries = await client.pipeline().set(a, 'A').rename(a, b).set(b, 'B').msetnx(a, '1', b, '2').get(a).exec();
    assert.ok(entries);
    assert.equal(entries.length, 5);
    assert.deepEqual(entries[0], [null, 'OK']);
    assert.ok(entries[1]![0] instanceof CrossSlotError, `got ${String(entries[1]![0])}`);
    assert.equal(entries[1]!.length, 1, 'a one-element [error] like ioredis');
    assert.deepEqual((entries[1]![0] as CrossSlotError).keys, [a, b]);
    assert.deepEqual(entries[2], [null, 'OK']);
    assert.ok(entries[3]![0] instanceof CrossSlotError);
    assert.deepEqual(entries[4], [null, 'A']);
    assert.deepEqual((await calls('rename')).map((n, i) => n - before[i]!), [0, 0, 0], 'RENAME was not sent');
    assert.deepEqual(await client.mget(a, b), ['A', 'B']);
  });

  test('a multi-key command missing some of its keys gets Redis\'s error in its entry, like ioredis', async () => {
    const k = key(3);
    await samePipeline((p) => p.set(k, 'v').call('rename', k).call('eval', 'return 1', 2, k).get(k));
  });

  test('.length counts the queued commands, like ioredis', async () => {
    const p = client.pipeline();
    const q = plain.pipeline();
    assert.equal(p.length, 0);
    for (const r of [p, q]) r.set(key(1), 'v').mget(key(1), key(2)).ping().rename(key(1), key(2));
    assert.equal(p.length, 4);
    assert.equal(p.length, q.length);
    await Promise.all([p.exec(), q.exec()]);
  });
});

describe('multi()', () => {
  test('keys in one slot (hash tag): same answer shape as an ioredis MULTI', async () => {
    for (const g of [1, 2, 3]) {
      const [a, b, h] = sameSlot(client, gen, ['a', 'b', 'h'], g);
      const build = (m: ChainableCommander) =>
        m.set(a!, '1').incr(b!).get(a!).hset(h!, { f: 'v' }).hgetall(h!).incr(h!).mget(a!, b!).ping();
      const got = await build(client.multi()).exec();
      const want = await build(plain.multi()).exec();
      assert.deepEqual(normalize(got), normalize(want));
      assert.deepEqual(got?.[6], [null, ['1', '1']]);
      assert.equal(await client.group(g).get(b!), '1', `ran on group ${g}, the owner of the tag`);
    }
  });

  test('array form multi([[name, ...args]]) like ioredis', async () => {
    const [a, b] = sameSlot(client, gen, ['a', 'b']);
    const commands = [
      ['set', a, '1'],
      ['incr', a],
      ['mget', a, b],
    ];
    const got = await client.multi(commands).exec();
    assert.deepEqual(normalize(got), normalize(await plain.multi(commands).exec()));
    assert.deepEqual(got, [
      [null, 'OK'],
      [null, 2],
      [null, ['2', null]],
    ]);
  });

  test('a command Redis refuses while queuing (wrong arity) aborts the transaction with EXECABORT, like ioredis', async () => {
    const [a, b] = sameSlot(client, gen, ['a', 'b'], 1);
    await Promise.all([client.set(a!, 'before'), plain.set(a!, 'before')]);
    const abort = [
      (m: ChainableCommander) => m.set(a!, 'never').call('get').exec(), // no key at all
      (m: ChainableCommander) => m.set(a!, 'never').call('rename', b!).exec(), // one key of two
    ];
    for (const [i, aborted] of abort.entries()) {
      const got = await outcome(aborted(client.multi()));
      const want = await outcome(aborted(plain.multi()));
      assert.deepEqual(got, want, `case ${i}`);
      assert.equal(await client.get(a!), 'before', 'nothing of the aborted transaction was applied');
    }
  });

  test('keys in 2 slots: exec() rejects with CrossSlotError and nothing is written', async () => {
    const [a, b] = [key(1), key(3)];
    const before = await calls('multi');
    const m = client.multi().set(a, 'x').set(b, 'y').incr(a);
    const error = await m.exec().then(
      (r) => assert.fail(`must reject, got ${JSON.stringify(r)}`),
      (e: unknown) => e,
    );
    assert.ok(error instanceof CrossSlotError, `got ${String(error)}`);
    assert.equal(error.code, 'ERR_CROSS_SLOT');
    assert.deepEqual(error.keys, [a, b, a]);
    assert.equal(await client.exists(a, b), 0, 'nothing written');
    assert.deepEqual(await calls('multi'), before, 'no MULTI reached any group');

    // Same slot as each other but not as the rest: still one transaction over 2 slots.
    const [t1, t2] = sameSlot(client, gen, ['1', '2'], 2);
    await assert.rejects(client.multi().set(t1!, 'x').set(t2!, 'y').get(a).exec(), CrossSlotError);
    assert.equal(await client.exists(t1!, t2!), 0);
  });

  test('WATCH then MULTI on a tagged key that another client modifies: exec() resolves null, like ioredis', async () => {
    const [k, other] = sameSlot(client, gen, ['k', 'other'], 3);
    const second = env.client();
    const plainSecond = env.plainClient();
    for (const [r, intruder] of [[client, second], [plain, plainSecond]] as const) {
      await r.set(k!, 'start');
      assert.equal(await r.watch(k!), 'OK');
      await intruder.set(k!, 'theirs');
      assert.equal(await r.multi().set(k!, 'mine').set(other!, 'also mine').exec(), null);
      assert.equal(await r.get(k!), 'theirs');
      assert.equal(await r.exists(other!), 0);
    }
    // Unmodified: the transaction runs.
    assert.equal(await client.watch(k!), 'OK');
    assert.deepEqual(await client.multi().set(k!, 'mine').exec(), [[null, 'OK']]);
    assert.equal(await client.get(k!), 'mine');
  });

  test('multi({ pipeline: false }) rejects with ArgumentError', async () => {
    const result = client.multi({ pipeline: false });
    assert.ok(result instanceof Promise);
    const error = await result.then(
      () => assert.fail('must reject'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof ArgumentError, `got ${String(error)}`);
    assert.ok(error instanceof ShardisError);
    assert.equal(error.code, 'ERR_ARGUMENT');
  });
});

describe('defineCommand', () => {
  test('a script with numberOfKeys runs on the group owning its key', async () => {
    for (const g of [1, 2, 3]) {
      const k = key(g, 'counter');
      assert.equal(await client.shardisSpecIncr(k), 1);
      assert.equal(await client.shardisSpecIncr(k), 2);
      for (const other of [1, 2, 3]) assert.equal(await client.group(other).get(k), other === g ? '2' : null);
    }
  });

  test('after SCRIPT FLUSH on a group, the command still works (EVALSHA, then EVAL on NOSCRIPT)', async () => {
    for (const g of [1, 2, 3]) {
      const k = key(g, 'flushed');
      assert.equal(await client.shardisSpecIncr(k), 1);
      assert.equal(await client.shardisSpecIncr(k), 2);
      assert.equal(await client.group(g).script('FLUSH'), 'OK');
      assert.equal(await client.shardisSpecIncr(k), 3);
      assert.equal(await client.shardisSpecIncr(k), 4);
      assert.equal(await client.group(g).get(k), '4');
    }
  });

  test('defined commands in a pipeline, across groups and after SCRIPT FLUSH, answer like ioredis', async () => {
    const keys = [key(1), key(2), key(3)];
    const build = (p: ChainableCommander) => {
      for (const k of keys) p.shardisSpecIncr(k).incr(k).shardisSpecIncr(k);
      return p;
    };
    await samePipeline(build);
    await Promise.all([1, 2, 3].map((g) => client.group(g).script('FLUSH')));
    await plain.script('FLUSH');
    // ioredis resends a script that got NOSCRIPT after the rest of the pipeline,
    // so the values come in a different order than the commands; samePipeline
    // checked that shardis gives the very same entries.
    const entries = await samePipeline(build);
    const firstKey = entries.slice(0, 3);
    assert.ok(firstKey.every(([error]) => error === null));
    assert.deepEqual(firstKey.map(([, n]) => Number(n)).sort((x, y) => x - y), [4, 5, 6]);
    for (const [i, k] of keys.entries()) assert.equal(await client.group(i + 1).get(k), '6');
  });

  test('a defined command with 2 keys in one slot runs; in 2 slots it is a CrossSlotError, nothing sent', async () => {
    const [from, to] = sameSlot(client, gen, ['from', 'to'], 2);
    await client.set(from!, 'payload');
    assert.equal(await client.shardisSpecCopy(from!, to!), 'copied');
    assert.equal(await client.group(2).get(to!), 'payload');

    const [a, b] = [key(1), key(3)];
    await client.set(a, 'payload');
    const before = [await calls('evalsha'), await calls('eval')];
    const error = await client.shardisSpecCopy(a, b).catch((e: unknown) => e);
    assert.ok(error instanceof CrossSlotError, `got ${String(error)}`);
    assert.deepEqual(error.keys, [a, b]);
    assert.deepEqual([await calls('evalsha'), await calls('eval')], before, 'no script call was sent');
    assert.equal(await client.exists(b), 0);

    const entries = await client.pipeline().shardisSpecCopy(a, b).get(a).exec();
    assert.ok(entries?.[0]?.[0] instanceof CrossSlotError);
    assert.deepEqual(entries?.[1], [null, 'payload']);
    assert.equal(groupOf(client, a), 1);
  });
});

// Last: kills group 2's server, and restarts it before the test ends.
describe('a group down', () => {
  test('multi() on a slot of the dead group rejects with a GroupUnavailableError naming it; other groups still take transactions', { timeout: 15_000 }, async () => {
    const fast = env.client({ redisOptions: FAIL_FAST });
    await fast.connect();
    const [a, b] = sameSlot(fast, gen, ['a', 'b'], 2);
    const [c, d] = sameSlot(fast, gen, ['c', 'd'], 3);
    const restore = await downGroup(env, fast, 2);
    let error: unknown;
    try {
      error = await fast.multi().set(a!, '1').set(b!, '2').exec().then(
        (r) => assert.fail(`must reject while group 2 is down, got ${JSON.stringify(r)}`),
        (e: unknown) => e,
      );
      assert.deepEqual(await fast.multi().set(c!, '3').get(d!).exec(), [
        [null, 'OK'],
        [null, null],
      ]);
    } finally {
      await restore();
    }
    assert.ok(error instanceof GroupUnavailableError, `got ${String(error)}`);
    assert.equal(error.group, 2);
    assert.equal(await fast.exists(a!, b!), 0);
  });
});
