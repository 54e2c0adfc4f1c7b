// Specification: atomic multi-key commands (DESIGN §3.2). Their keys MUST
// share one slot. Keys in different slots reject with a CrossSlotError before
// anything is sent (no server sees the command, no key changes), whether the
// slots belong to different groups or to the same group. Keys that share a
// slot (a hash tag, or by chance) run on the group owning that slot and give
// exactly what ioredis gives on one server.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Redis } from 'ioredis';
import type Commander from 'ioredis/built/utils/Commander';
import { ShardedRedis, CrossSlotError, ShardisError, slotOf } from '../../src/index.js';
import { keygen } from '../../src/testing/index.js';
import { startGroups, keyIn, groupOf, sameSlot, outcome, commandCalls, type TestGroups } from './helpers.js';

type Client = Commander;

let env: TestGroups;
let client: ShardedRedis;
let plain: Redis;
const gen = keygen('atomic');

const EVAL_LUA = "redis.call('set', KEYS[1], ARGV[1]); return redis.call('incr', KEYS[2])";
const LIBRARY = [
  '#!lua name=shardis_atomic_spec',
  "redis.register_function('set_and_incr', function(keys, args)",
  "  redis.call('set', keys[1], args[1])",
  "  return redis.call('incr', keys[2])",
  'end)',
].join('\n');
let evalSha = '';

before(async () => {
  env = await startGroups(3, 1);
  client = env.client();
  plain = env.plainClient();
  await Promise.all([client.connect(), plain.ping()]);
  for (const r of [client, plain] as const) {
    // Both fan out to every group on the sharded client.
    evalSha = String(await r.script('LOAD', EVAL_LUA));
    assert.equal(await r.function('LOAD', 'REPLACE', LIBRARY), 'shardis_atomic_spec');
  }
});

after(async () => {
  await env.stop();
});

/** One atomic command: `run` passes its keys in argument order, so they are the keys a CrossSlotError lists. */
interface AtomicCase {
  /** The command name as Redis (and INFO commandstats) knows it. */
  readonly command: string;
  readonly keyCount: number;
  readonly setup?: (r: Client, k: string[]) => Promise<unknown>;
  readonly run: (r: Client, k: string[]) => Promise<unknown>;
  /** Replies in no fixed order (sets): compare sorted. */
  readonly unordered?: boolean;
}

const CASES: AtomicCase[] = [
  {
    command: 'msetnx',
    keyCount: 2,
    setup: (r, [, b]) => r.set(b!, 'old'),
    run: (r, [a, b]) => r.msetnx(a!, 'new-a', b!, 'new-b'),
  },
  {
    command: 'rename',
    keyCount: 2,
    setup: (r, [a, b]) => r.mset(a!, 'moving', b!, 'overwritten'),
    run: (r, [a, b]) => r.rename(a!, b!),
  },
  {
    command: 'smove',
    keyCount: 2,
    setup: (r, [a, b]) => Promise.all([r.sadd(a!, 'm', 'n'), r.sadd(b!, 'o')]),
    run: (r, [a, b]) => r.smove(a!, b!, 'm'),
  },
  {
    command: 'lmove',
    keyCount: 2,
    setup: (r, [a, b]) => Promise.all([r.rpush(a!, 'x', 'y'), r.rpush(b!, 'z')]),
    run: (r, [a, b]) => r.lmove(a!, b!, 'LEFT', 'RIGHT'),
  },
  {
    command: 'blmove',
    keyCount: 2,
    // An element is there, so BLMOVE never blocks.
    setup: (r, [a]) => r.rpush(a!, 'x', 'y'),
    run: (r, [a, b]) => r.blmove(a!, b!, 'RIGHT', 'LEFT', 1),
  },
  {
    command: 'sunionstore',
    keyCount: 3,
    setup: (r, [, a, b]) => Promise.all([r.sadd(a!, '1', '2'), r.sadd(b!, '2', '3')]),
    run: (r, [dest, a, b]) => r.sunionstore(dest!, a!, b!),
  },
  {
    command: 'zunionstore',
    keyCount: 3,
    setup: (r, [, a, b]) => Promise.all([r.zadd(a!, 1, 'x'), r.zadd(b!, 2, 'x', 3, 'y')]),
    run: (r, [dest, a, b]) => r.zunionstore(dest!, 2, a!, b!, 'WEIGHTS', 1, 2),
  },
  {
    command: 'bitop',
    keyCount: 3,
    setup: (r, [, a, b]) => r.mset(a!, 'abc', b!, 'xyz'),
    run: (r, [dest, a, b]) => r.bitop('AND', dest!, a!, b!),
  },
  {
    command: 'eval',
    keyCount: 2,
    setup: (r, [, b]) => r.set(b!, '41'),
    run: (r, [a, b]) => r.eval(EVAL_LUA, 2, a!, b!, 'from-eval'),
  },
  {
    command: 'evalsha',
    keyCount: 2,
    setup: (r, [, b]) => r.set(b!, '9'),
    run: (r, [a, b]) => r.evalsha(evalSha, 2, a!, b!, 'from-evalsha'),
  },
  {
    command: 'fcall',
    keyCount: 2,
    setup: (r, [, b]) => r.set(b!, '99'),
    run: (r, [a, b]) => r.fcall('set_and_incr', 2, a!, b!, 'from-fcall'),
  },
  {
    command: 'xread',
    keyCount: 2,
    setup: (r, [a, b]) => Promise.all([r.xadd(a!, '1-1', 'f', 'a'), r.xadd(b!, '1-2', 'f', 'b'), r.xadd(b!, '2-0', 'g', 'c')]),
    run: (r, [a, b]) => r.xread('STREAMS', a!, b!, '0', '1-2'),
  },
  {
    command: 'sinter',
    keyCount: 2,
    setup: (r, [a, b]) => Promise.all([r.sadd(a!, '1', '2', '3', 'x'), r.sadd(b!, '2', '3', '4', 'x')]),
    run: (r, [a, b]) => r.sinter(a!, b!),
    unordered: true,
  },
  {
    command: 'copy',
    keyCount: 2,
    setup: (r, [a]) => r.set(a!, 'copied'),
    run: (r, [a, b]) => r.copy(a!, b!),
  },
];

/** How many times each group has run `command` so far (INFO commandstats). */
const calls = (command: string): Promise<number[]> => commandCalls(client, command);

/** A key's type and content, in a fixed order (set members sorted), or null when it does not exist. */
async function snapshot(r: Client, k: string): Promise<unknown> {
  const type = await r.type(k);
  switch (type) {
    case 'none':
      return null;
    case 'string':
      return [type, await r.get(k)];
    case 'list':
      return [type, await r.lrange(k, 0, -1)];
    case 'set':
      return [type, (await r.smembers(k)).sort()];
    case 'zset':
      return [type, await r.zrange(k, 0, '-1', 'WITHSCORES')];
    case 'hash':
      return [type, Object.entries(await r.hgetall(k)).sort()];
    case 'stream':
      return [type, await r.xrange(k, '-', '+')];
    default:
      return [type];
  }
}

/** Every key's state on the group owning it (read through the raw group connection). */
function state(keys: string[]): Promise<unknown[]> {
  return Promise.all(keys.map((k) => snapshot(client.group(groupOf(client, k)), k)));
}

/** `count` keys in distinct slots of ONE group. */
function distinctSlotsIn(group: number, count: number): string[] {
  const keys: string[] = [];
  while (keys.length < count) {
    const k = keyIn(client, group, gen, `same-group-${keys.length}`);
    if (!keys.some((other) => slotOf(other) === slotOf(k))) keys.push(k);
  }
  return keys;
}

async function expectCrossSlot(c: AtomicCase, keys: string[]): Promise<void> {
  await c.setup?.(client, keys);
  const stateBefore = await state(keys);
  const callsBefore = await calls(c.command);

  const error = await c.run(client, keys).then(
    (reply) => assert.fail(`${c.command} over slots ${keys.map(slotOf).join(', ')} must reject, got ${JSON.stringify(reply)}`),
    (e: unknown) => e,
  );
  assert.ok(error instanceof CrossSlotError, `${c.command}: got ${String(error)}`);
  assert.ok(error instanceof ShardisError);
  assert.equal(error.code, 'ERR_CROSS_SLOT');
  assert.equal(error.name, 'CrossSlotError');
  assert.equal(error.command.toLowerCase(), c.command);
  assert.deepEqual(error.keys, keys, 'the keys, in argument order');
  assert.deepEqual(error.slots, keys.map(slotOf), 'the slot of each key');
  assert.match(error.message, /Nothing was sent/);
  assert.match(error.message, new RegExp(c.command.toUpperCase()));

  assert.deepEqual(await calls(c.command), callsBefore, `${c.command} reached no server`);
  assert.deepEqual(await state(keys), stateBefore, `${c.command} changed no key`);
}

describe('keys in different slots: CrossSlotError, nothing sent', () => {
  for (const c of CASES) {
    test(`${c.command.toUpperCase()} with keys in different groups`, async () => {
      const keys = Array.from({ length: c.keyCount }, (_, i) => keyIn(client, i + 1, gen, `k${i}`));
      await expectCrossSlot(c, keys);
    });
  }

  test('the rule is one SLOT, not one group: different slots of the same group are refused too', async () => {
    for (const c of CASES) await expectCrossSlot(c, distinctSlotsIn(2, c.keyCount));
  });

  test('MSETNX across groups writes no key at all, not even where the keys are new', async () => {
    const [a, b] = [keyIn(client, 1, gen, 'a'), keyIn(client, 3, gen, 'b')];
    await assert.rejects(client.msetnx(a, '1', b, '2'), CrossSlotError);
    assert.equal(await client.group(1).exists(a), 0);
    assert.equal(await client.group(3).exists(b), 0);
    assert.equal(await client.exists(a, b), 0);
  });
});

describe('keys sharing one slot: run on the group owning it, same reply and state as ioredis', () => {
  for (const [i, c] of CASES.entries()) {
    const group = (i % 3) + 1;
    test(`${c.command.toUpperCase()} with hash-tagged keys in group ${group}`, async () => {
      const keys = sameSlot(client, gen, Array.from({ length: c.keyCount }, (_, j) => `k${j}`), group);
      for (const k of keys) assert.equal(groupOf(client, k), group);
      await c.setup?.(client, keys);
      await c.setup?.(plain, keys);

      const callsBefore = await calls(c.command);
      const sorted = (o: Awaited<ReturnType<typeof outcome>>) =>
        c.unordered && o.ok && Array.isArray(o.value) ? { ok: true, value: [...(o.value as string[])].sort() } : o;
      const got = sorted(await outcome(c.run(client, keys)));
      const want = sorted(await outcome(c.run(plain, keys)));
      assert.deepEqual(got, want);
      assert.equal(got.ok, true, `${c.command} succeeded`);

      const delta = (await calls(c.command)).map((n, g) => n - callsBefore[g]!);
      assert.deepEqual(delta, [1, 2, 3].map((g) => (g === group ? 1 : 0)), 'sent once, to the owning group');
      assert.deepEqual(await state(keys), await Promise.all(keys.map((k) => snapshot(plain, k))), 'same state as one Redis');
    });
  }

  test('keys in one slot without a hash tag are fine too (the rule is the slot)', async () => {
    const bySlot = new Map<number, string>();
    let pair: [string, string] | undefined;
    for (let i = 0; i < 10_000 && pair === undefined; i++) {
      const k = gen('untagged');
      const other = bySlot.get(slotOf(k));
      if (other !== undefined) pair = [other, k];
      else bySlot.set(slotOf(k), k);
    }
    assert.ok(pair, 'two untagged keys in one slot');
    const [a, b] = pair;
    assert.equal(await client.msetnx(a, '1', b, '2'), 1);
    assert.equal(await client.rename(a, b), 'OK');
    assert.deepEqual(await client.mget(a, b), [null, '1']);
  });

  test('FUNCTION LOAD and SCRIPT LOAD reached every group: FCALL and EVALSHA work for a tag in each group', async () => {
    for (const g of [1, 2, 3]) {
      const [a, b] = sameSlot(client, gen, ['a', 'b'], g);
      assert.equal(await client.fcall('set_and_incr', 2, a!, b!, 'x'), 1);
      assert.equal(await client.evalsha(evalSha, 2, a!, b!, 'y'), 2);
      assert.deepEqual(await client.group(g).mget(a!, b!), ['y', '2']);
    }
  });
});
