// Specification: a ShardedRedis returns exactly what ioredis returns.
//
// The same commands run on a ShardedRedis over 3 real groups and on a plain
// ioredis client (same options) to a 4th server; every reply, and every error
// (class, name, message), must be deep-equal. Keys are picked in each of the
// 3 groups so every group answers. The whole suite runs with ioredis' default
// options (RESP3, CLIENT SETINFO), again with `{ protocol: 2 }`, and with the
// other ioredis options that change reply shapes (replyMapping: 'resp3',
// stringNumbers) or the transport (enableAutoPipelining). Some replies differ
// between profiles on plain ioredis too; only sharded vs plain must match.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Redis, RedisOptions, Result } from 'ioredis';
import type Commander from 'ioredis/built/utils/Commander';
import { ShardedRedis, slotOf } from '../../src/index.js';
import { keygen } from '../../src/testing/index.js';
import { startGroups, keyIn, groupOf, outcome, type TestGroups } from './helpers.js';

// A command added with defineCommand below, typed the way ioredis documents it.
declare module 'ioredis' {
  interface RedisCommander<Context> {
    prefixSpecGet(key: string): Result<string | null, Context>;
  }
}

type Client = Commander;
type Step = (r: Client) => Promise<unknown>;

let env: TestGroups;

before(async () => {
  env = await startGroups(3, 1);
});

after(async () => {
  await env.stop();
});

/**
 * [label, options for both clients, options for the plain client only].
 * enableAutoPipelining is a transport detail that must not change any reply;
 * the plain client runs without it, since ioredis' own auto-pipelining
 * mishandles callBuffer() (it sends the key as the command name).
 */
const PROFILES: [label: string, options: RedisOptions, plainOnly?: RedisOptions][] = [
  ['ioredis defaults (RESP3, CLIENT SETINFO)', {}],
  ['protocol: 2', { protocol: 2 }],
  ['replyMapping: resp3', { protocol: 3, replyMapping: 'resp3' }],
  ['stringNumbers: true', { stringNumbers: true }],
  ['enableAutoPipelining: true', { enableAutoPipelining: true }, { enableAutoPipelining: false }],
];

/** A sharded client and a plain one with the same options, made in `before` of the enclosing describe. */
interface Pair {
  readonly sharded: ShardedRedis;
  /** A fresh key owned by group `g` (1..3); the plain server gets the same name. */
  key(g: number, name?: string): string;
  /**
   * Runs each step on the sharded client, then on plain ioredis, and
   * requires the same outcome: the same value, or an error of the same
   * class with the same name and message.
   */
  same(steps: Step[]): Promise<void>;
  /** As `same`, for steps whose replies come in no fixed order (sets): compares them sorted. */
  sameSorted(steps: ((r: Client) => Promise<string[]>)[]): Promise<void>;
}

function pair(redisOptions: RedisOptions, plainOnly?: RedisOptions): Pair {
  let sharded: ShardedRedis | undefined;
  let plain: Redis | undefined;
  const gen = keygen('parity');
  before(async () => {
    sharded = env.client({ redisOptions });
    plain = env.plainClient({ ...redisOptions, ...plainOnly });
    await Promise.all([sharded.connect(), plain.ping()]);
  });
  const same = async (steps: Step[]): Promise<void> => {
    for (const [i, step] of steps.entries()) {
      const got = await outcome(step(sharded!));
      const want = await outcome(step(plain!));
      assert.deepEqual(got, want, `step ${i}: ${step.toString()}`);
    }
  };
  return {
    get sharded() {
      return sharded!;
    },
    key: (g, name = 'k') => keyIn(sharded!, g, gen, name),
    same,
    sameSorted: (steps) => same(steps.map((step) => async (r: Client) => [...(await step(r))].sort())),
  };
}

for (const [label, redisOptions, plainOnly] of PROFILES) {
  describe(`parity with ioredis, ${label}`, () => {
    const p = pair(redisOptions, plainOnly);
    const { key, same, sameSorted } = p;

    test('strings: GET/SET with EX, NX, XX and GET options, GETRANGE, APPEND, STRLEN, missing keys', async () => {
      for (const g of [1, 2, 3]) {
        const k = key(g);
        const missing = key(g, 'missing');
        await same([
          (r) => r.get(k),
          (r) => r.set(k, 'hello'),
          (r) => r.get(k),
          (r) => r.set(k, 'world', 'NX'),
          (r) => r.set(k, 'hello world', 'XX'),
          (r) => r.set(k, 'again', 'EX', 100, 'GET'),
          (r) => r.ttl(k),
          (r) => r.set(k, 'x', 'NX', 'GET'),
          (r) => r.get(k),
          (r) => r.getrange(k, 1, 3),
          (r) => r.getrange(k, -3, -1),
          (r) => r.append(k, '!'),
          (r) => r.strlen(k),
          (r) => r.set(missing, 'v', 'XX'),
          (r) => r.get(missing),
          (r) => r.set(missing, 'v', 'EX', 100, 'NX', 'GET'),
          (r) => r.get(missing),
        ]);
      }
    });

    test('getBuffer and setBuffer with binary values (every byte 0x00..0xff) and binary keys', async () => {
      const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      for (const g of [1, 2, 3]) {
        const k = key(g, 'bin');
        await same([
          (r) => r.set(k, bytes),
          (r) => r.setBuffer(k, bytes, 'GET'),
          (r) => r.getBuffer(k),
          (r) => r.strlen(k),
          (r) => r.getrangeBuffer(k, 250, -1),
          (r) => r.get(key(g, 'nothing')),
          (r) => r.getBuffer(key(g, 'nothing')),
        ]);
      }
      // A key that is not valid UTF-8: routed by its raw bytes, and readable back.
      const binaryKey = Buffer.concat([Buffer.from(key(2, 'raw')), Buffer.from([0xff, 0x00, 0xfe])]);
      await same([(r) => r.set(binaryKey, bytes), (r) => r.getBuffer(binaryKey), (r) => r.exists(binaryKey)]);
      const owner = groupOf(p.sharded, binaryKey);
      assert.deepEqual(await p.sharded.group(owner).getBuffer(binaryKey), bytes, 'the key lives on the group owning slotOf(its bytes)');
    });

    test('counters: INCR, INCRBY, DECR, INCRBYFLOAT, and the error for a non-integer', async () => {
      for (const g of [1, 2, 3]) {
        const n = key(g, 'n');
        const f = key(g, 'f');
        const s = key(g, 's');
        await same([
          (r) => r.incr(n),
          (r) => r.incrby(n, 41),
          (r) => r.decr(n),
          (r) => r.decrby(n, 10),
          (r) => r.get(n),
          (r) => r.incrbyfloat(f, 0.1),
          (r) => r.incrbyfloat(f, '2.5e3'),
          (r) => r.incrbyfloat(f, -1),
          (r) => r.set(s, 'not a number'),
          (r) => r.incr(s),
          (r) => r.incrbyfloat(s, 1),
          (r) => r.incrby(n, 'abc'),
        ]);
      }
    });

    test('hashes: HSET object and Map forms, HGETALL, HMGET, HINCRBY, HLEN, HDEL', async () => {
      for (const g of [1, 2, 3]) {
        const h = key(g, 'h');
        await same([
          (r) => r.hgetall(h),
          (r) => r.hset(h, { a: '1', b: 'two', c: '' }),
          (r) => r.hset(h, new Map([['d', '4'], ['a', 'one']])),
          (r) => r.hset(h, 'e', '5', 'f', '6'),
          (r) => r.hgetall(h),
          (r) => r.hmget(h, 'a', 'missing', 'b', 'a'),
          (r) => r.hget(h, 'c'),
          (r) => r.hincrby(h, 'd', 10),
          (r) => r.hlen(h),
          (r) => r.hdel(h, 'e', 'nope'),
          (r) => r.hexists(h, 'e'),
          (r) => r.hgetallBuffer(h),
        ]);
      }
    });

    test('lists: LPUSH, RPUSH, LRANGE, LPOP with count, LINDEX, LLEN', async () => {
      for (const g of [1, 2, 3]) {
        const l = key(g, 'l');
        await same([
          (r) => r.lrange(l, 0, -1),
          (r) => r.lpush(l, 'a', 'b', 'c'),
          (r) => r.rpush(l, 'z'),
          (r) => r.lrange(l, 0, -1),
          (r) => r.lrange(l, 1, 2),
          (r) => r.lindex(l, -1),
          (r) => r.lpop(l, 2),
          (r) => r.llen(l),
          (r) => r.rpop(l),
        ]);
      }
    });

    test('sets: SADD, SMEMBERS (sorted), SISMEMBER, SCARD, SREM', async () => {
      for (const g of [1, 2, 3]) {
        const s = key(g, 's');
        await same([
          (r) => r.sadd(s, 'x', 'y', 'z', 'x'),
          (r) => r.sismember(s, 'y'),
          (r) => r.sismember(s, 'nope'),
          (r) => r.scard(s),
          (r) => r.srem(s, 'y', 'nope'),
          (r) => r.smismember(s, 'x', 'y'),
        ]);
        await sameSorted([(r) => r.smembers(s), (r) => r.smembers(key(g, 'empty'))]);
      }
    });

    test('sorted sets: ZADD, ZRANGE WITHSCORES, ZSCORE, ZINCRBY, ZRANGEBYSCORE, ZRANK', async () => {
      for (const g of [1, 2, 3]) {
        const z = key(g, 'z');
        await same([
          (r) => r.zadd(z, 1, 'one', 2.5, 'two-and-a-half', -3, 'minus-three'),
          (r) => r.zrange(z, 0, '-1'),
          (r) => r.zrange(z, 0, '-1', 'WITHSCORES'),
          (r) => r.zrange(z, 0, '1', 'REV', 'WITHSCORES'),
          (r) => r.zscore(z, 'two-and-a-half'),
          (r) => r.zscore(z, 'missing'),
          (r) => r.zincrby(z, 0.5, 'one'),
          (r) => r.zrangebyscore(z, '-inf', '+inf', 'WITHSCORES'),
          (r) => r.zrank(z, 'one'),
          (r) => r.zcard(z),
          (r) => r.zadd(z, 'not-a-score', 'm'),
        ]);
      }
    });

    test('streams: XADD with explicit ids, XRANGE, XLEN, XREAD (one stream, COUNT, nothing new)', async () => {
      for (const g of [1, 2, 3]) {
        const x = key(g, 'x');
        await same([
          (r) => r.xadd(x, '1-1', 'f', 'v', 'g', 'w'),
          (r) => r.xadd(x, '2-0', 'f', 'v2'),
          (r) => r.xadd(x, '1-0', 'f', 'too-old'),
          (r) => r.xlen(x),
          (r) => r.xrange(x, '-', '+'),
          (r) => r.xrange(x, '-', '+', 'COUNT', 1),
          (r) => r.xrevrange(x, '+', '-'),
          (r) => r.xread('STREAMS', x, '0'),
          (r) => r.xread('COUNT', 1, 'STREAMS', x, '1-1'),
          (r) => r.xread('STREAMS', x, '2-0'),
          (r) => r.xread('STREAMS', key(g, 'no-stream'), '0'),
        ]);
      }
    });

    test('keyspace: EXPIRE, TTL, PERSIST, TYPE, OBJECT ENCODING', async () => {
      for (const g of [1, 2, 3]) {
        const str = key(g, 'str');
        const int = key(g, 'int');
        const long = key(g, 'long');
        const list = key(g, 'list');
        const hash = key(g, 'hash');
        const missing = key(g, 'missing');
        await same([
          (r) => r.set(str, 'short'),
          (r) => r.set(int, '12345'),
          (r) => r.set(long, 'x'.repeat(100)),
          (r) => r.rpush(list, 'a'),
          (r) => r.hset(hash, 'f', 'v'),
          (r) => r.ttl(str),
          (r) => r.expire(str, 100),
          (r) => r.ttl(str),
          (r) => r.persist(str),
          (r) => r.ttl(str),
          (r) => r.ttl(missing),
          (r) => r.expire(missing, 100),
          (r) => r.type(str),
          (r) => r.type(list),
          (r) => r.type(hash),
          (r) => r.type(missing),
          (r) => r.object('ENCODING', str),
          (r) => r.object('ENCODING', int),
          (r) => r.object('ENCODING', long),
          (r) => r.object('ENCODING', list),
          (r) => r.object('ENCODING', hash),
          (r) => r.object('ENCODING', missing),
        ]);
      }
    });

    test('call() and callBuffer() route by their keys like the named methods', async () => {
      for (const g of [1, 2, 3]) {
        const k = key(g);
        const h = key(g, 'h');
        await same([
          (r) => r.call('set', k, 'via call'),
          (r) => r.call('get', k),
          (r) => r.call('set', [k, 'array form']),
          (r) => r.callBuffer('get', k),
          (r) => r.call('hset', h, 'a', '1', 'b', '2'),
          (r) => r.call('hgetall', h),
          (r) => r.call('SET', k, 'upper-case name', 'GET'),
          (r) => r.callBuffer('getrange', k, 0, 4),
        ]);
        assert.equal(await p.sharded.group(g).get(k), 'upper-case name', 'call() wrote to the group owning the key');
      }
    });

    test('errors: WRONGTYPE, arity errors, syntax errors: same class, name and message as ioredis', async () => {
      for (const g of [1, 2, 3]) {
        const list = key(g, 'list');
        const str = key(g, 'str');
        await same([
          (r) => r.rpush(list, 'a'),
          (r) => r.set(str, 'v'),
          (r) => r.get(list),
          (r) => r.lpush(str, 'x'),
          (r) => r.hgetall(str),
          (r) => r.zscore(list, 'm'),
          (r) => r.xadd(str, '*', 'f', 'v'),
          (r) => r.call('set', str),
          (r) => r.call('set', str, 'v', 'EX', 'soon'),
          (r) => r.call('set', str, 'v', 'BOGUS'),
          (r) => r.call('lpush', list),
        ]);
      }
      // No key at all: an arity error from Redis itself, not a routing error.
      await same([(r) => r.call('get'), (r) => r.call('hset'), (r) => r.call('xadd')]);
    });

    test('split and keyless commands merge into the reply ioredis gives (MGET, MSET, DEL, EXISTS, PING)', async () => {
      const [a, b, c] = [key(1), key(2), key(3)];
      await same([
        (r) => r.mset(a, '1', b, '2', c, '3'),
        (r) => r.mset({ [c]: 'three', [a]: 'one' }),
        (r) => r.mget(c, 'nope', a, b, a),
        (r) => r.mgetBuffer(b, c),
        (r) => r.exists(a, b, c, a, 'nope'),
        (r) => r.touch(a, b, c),
        (r) => r.del(a, b, 'nope'),
        (r) => r.unlink(c, c),
        (r) => r.mget(a, b, c),
        (r) => r.ping(),
        (r) => r.ping('hello'),
        (r) => r.pingBuffer('bytes'),
      ]);
    });

    test('every reply came from the group owning the key (spot check through group(id))', async () => {
      for (const g of [1, 2, 3]) {
        const k = key(g, 'where');
        await p.sharded.set(k, `in ${g}`);
        for (const other of [1, 2, 3]) {
          assert.equal(await p.sharded.group(other).get(k), other === g ? `in ${g}` : null, `group ${other} for a key of group ${g}`);
        }
      }
    });
  });
}

// Protocol-independent: Redis's own errors, with ioredis' default options.
describe('parity with ioredis: errors Redis reports itself pass through unchanged', () => {
  const { key, same } = pair({});

  test('errors: a multi-key command missing some of its keys gets Redis\'s own error, not a routing error', async () => {
    const k = key(2);
    await same([
      (r) => r.call('rename', k),
      (r) => r.call('copy', k),
      (r) => r.call('lmove', k),
      (r) => r.call('smove', k),
      (r) => r.call('zunionstore', k, 3, k),
      (r) => r.call('eval', 'return 1', 2, k),
      (r) => r.call('evalsha', 'e0e1f9fabfc9d4800c877a703b823ac0578ff8db', 3, k),
      (r) => r.call('fcall', 'no_such_function', 5),
    ]);
  });

  test('errors: a keyless command that Redis rejects on every group gets Redis\'s own error, not a PartialFailureError', async () => {
    await same([
      (r) => r.call('ping', 'too', 'many'),
      (r) => r.call('dbsize', 'extra'),
      (r) => r.call('script', 'exists'),
      (r) => r.call('script', 'load'),
    ]);
  });
});

describe('keyPrefix in redisOptions', () => {
  const prefix = 'app:';
  let sharded: ShardedRedis;
  let plain: Redis;
  const gen = keygen('prefixed');

  before(async () => {
    sharded = env.client({ redisOptions: { keyPrefix: prefix } });
    plain = env.plainClient({ keyPrefix: prefix });
    await Promise.all([sharded.connect(), plain.ping()]);
  });

  /** A key whose bare slot and prefixed slot are owned by different groups. */
  function keyWhosePrefixMoves(): string {
    for (let i = 0; i < 1000; i++) {
      const k = gen('moves');
      if (groupOf(sharded, k) !== groupOf(sharded, prefix + k)) return k;
    }
    throw new Error('no key whose prefix moves it to another group in 1000 tries');
  }

  test('keys land prefixed on the servers, in the group owning the slot of the PREFIXED key', async () => {
    const k = keyWhosePrefixMoves();
    const owner = groupOf(sharded, prefix + k);
    const bareOwner = groupOf(sharded, k);
    assert.notEqual(owner, bareOwner);

    assert.equal(await sharded.set(k, 'v'), 'OK');
    assert.equal(await sharded.get(k), 'v');
    // group(id) is the raw connection: no prefix applied there.
    assert.equal(await sharded.group(owner).get(prefix + k), 'v');
    assert.equal(await sharded.group(owner).exists(k), 0, 'the bare key was not written');
    assert.equal(await sharded.group(bareOwner).exists(prefix + k), 0, 'nothing in the group of the bare slot');
    assert.equal(await sharded.group(bareOwner).exists(k), 0);
    assert.equal(slotOf(prefix + k) === slotOf(k), false);
  });

  test('prefixed replies equal plain ioredis with the same keyPrefix, for one key and split commands', async () => {
    const keys = [1, 2, 3].map((g) => keyIn(sharded, g, gen, 'k', prefix));
    const steps: Step[] = [
      (r) => r.mset(keys[0]!, 'a', keys[1]!, 'b', keys[2]!, 'c'),
      (r) => r.mget(keys[2]!, 'nope', keys[0]!, keys[1]!),
      (r) => r.exists(...keys, 'nope'),
      (r) => r.hset(keys[0]! + ':h', { f: 'v' }),
      (r) => r.hgetall(keys[0]! + ':h'),
      (r) => r.call('get', keys[1]!),
      (r) => r.del(...keys),
      (r) => r.mget(...keys),
    ];
    for (const [i, step] of steps.entries()) {
      assert.deepEqual(await outcome(step(sharded)), await outcome(step(plain)), `step ${i}: ${step.toString()}`);
    }
  });

  test('pipelines, transactions and defined commands apply the prefix and route by the prefixed key', async () => {
    const k = keyWhosePrefixMoves();
    const owner = groupOf(sharded, prefix + k);
    const entries = await sharded.pipeline().set(k, 'piped').get(k).exec();
    assert.deepEqual(entries, [
      [null, 'OK'],
      [null, 'piped'],
    ]);
    assert.equal(await sharded.group(owner).get(prefix + k), 'piped');

    const tag = gen('tag');
    const [a, b] = [`{${tag}}:a`, `{${tag}}:b`];
    const tagOwner = groupOf(sharded, prefix + a);
    assert.deepEqual(await sharded.multi().set(a, '1').incr(b).exec(), [
      [null, 'OK'],
      [null, 1],
    ]);
    assert.deepEqual(await sharded.group(tagOwner).mget(prefix + a, prefix + b), ['1', '1']);

    sharded.defineCommand('prefixSpecGet', { numberOfKeys: 1, lua: "return redis.call('get', KEYS[1])" });
    assert.equal(await sharded.prefixSpecGet(k), 'piped');
  });

  test('a hash tag in a prefixed key still decides the slot', async () => {
    const tag = gen('tag');
    const a = `{${tag}}:a`;
    const b = `{${tag}}:b`;
    const owner = groupOf(sharded, prefix + a);
    assert.equal(owner, groupOf(sharded, `{${tag}}`));
    await sharded.mset(a, '1', b, '2');
    assert.deepEqual(await sharded.group(owner).mget(prefix + a, prefix + b), ['1', '2']);
  });
});
