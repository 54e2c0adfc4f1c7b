// Specification: commands that are safe to split (DESIGN §3.3) are split per
// group and merged back: MGET keeps the caller's key order, MSET writes every
// pair on the group owning its key, DEL/UNLINK/EXISTS/TOUCH add up their
// counts exactly as one Redis would count them. A split command that fails on
// some groups rejects with a PartialFailureError naming which groups failed
// and which applied their part.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Redis } from 'ioredis';
import { ShardedRedis, PartialFailureError, GroupUnavailableError } from '../../src/index.js';
import { keygen } from '../../src/testing/index.js';
import { startGroups, keyIn, groupOf, outcome, downGroup, FAIL_FAST, commandCalls, type TestGroups } from './helpers.js';

let env: TestGroups;
let client: ShardedRedis;
let plain: Redis;
const gen = keygen('split');

before(async () => {
  env = await startGroups(3, 1);
  client = env.client();
  plain = env.plainClient();
  await Promise.all([client.connect(), plain.ping()]);
});

after(async () => {
  await env.stop();
});

/** A fresh key owned by group `g`. */
const key = (g: number, name = 'k'): string => keyIn(client, g, gen, name);

/** How many times each group has run `command` so far (INFO commandstats). */
const calls = (command: string): Promise<number[]> => commandCalls(client, command);

/** Each group's increase of `command` calls between two `calls()` snapshots. */
function delta(after: number[], before: number[]): number[] {
  return after.map((n, i) => n - before[i]!);
}

test('MGET over keys in all 3 groups answers in the caller order, null for missing keys, duplicates repeated', async () => {
  const [a, b, c] = [key(1, 'a'), key(2, 'b'), key(3, 'c')];
  const [a2, c2] = [key(1, 'a2'), key(3, 'c2')];
  await Promise.all([a, b, c, a2, c2].map((k) => client.group(groupOf(client, k)).set(k, `v-${k}`)));
  const missing = key(2, 'missing');

  const before = await calls('mget');
  const reply = await client.mget(c, a, missing, b, a, c2, a2, c, b);
  assert.deepEqual(reply, [`v-${c}`, `v-${a}`, null, `v-${b}`, `v-${a}`, `v-${c2}`, `v-${a2}`, `v-${c}`, `v-${b}`]);
  assert.deepEqual(delta(await calls('mget'), before), [1, 1, 1], 'one MGET per group, all sent for one call');

  // The array form and a single key give the same as ioredis.
  assert.deepEqual(await client.mget([b, a]), [`v-${b}`, `v-${a}`]);
  assert.deepEqual(await client.mget(missing), [null]);
});

test('MGET gives the same reply as plain ioredis, including a non-string key (null) and the arity error', async () => {
  const [a, b, c] = [key(1), key(2), key(3)];
  const list = key(2, 'list');
  for (const r of [client, plain] as const) {
    await r.mset(a, '1', b, '2', c, '3');
    await r.rpush(list, 'x');
  }
  for (const args of [[a, b, c], [list, a, 'nope', c, b, b], [c, list]]) {
    assert.deepEqual(await client.mget(...args), await plain.mget(...args), `mget ${args.join(' ')}`);
  }
  assert.deepEqual(await outcome(client.call('mget')), await outcome(plain.call('mget')));
});

test('mgetBuffer merges raw bytes in key order', async () => {
  const [a, b, c] = [key(1), key(2), key(3)];
  const va = Buffer.from([0x00, 0xff, 0x10]);
  const vb = Buffer.from([0xc3, 0x28]); // not valid UTF-8
  const vc = Buffer.alloc(0);
  await client.mset(a, va, b, vb, c, vc);
  const reply = await client.mgetBuffer(b, key(3, 'missing'), a, c);
  assert.deepEqual(reply, [vb, null, va, vc]);
  assert.ok(reply.every((v) => v === null || Buffer.isBuffer(v)));
});

test('MSET in argument form writes every pair on the group owning its key', async () => {
  const keys = [key(1), key(2), key(3), key(1, 'second'), key(3, 'second')];
  const before = await calls('mset');
  assert.equal(await client.mset(keys[0]!, 'v0', keys[1]!, 'v1', keys[2]!, 'v2', keys[3]!, 'v3', keys[4]!, 'v4'), 'OK');
  assert.deepEqual(delta(await calls('mset'), before), [1, 1, 1]);
  for (const [i, k] of keys.entries()) {
    const owner = groupOf(client, k);
    for (const g of [1, 2, 3]) {
      assert.equal(await client.group(g).get(k), g === owner ? `v${i}` : null, `key ${i} on group ${g}`);
    }
  }
  // The same key twice: the last value wins, as in Redis.
  assert.equal(await client.mset(keys[0]!, 'first', keys[2]!, 'x', keys[0]!, 'last'), 'OK');
  assert.equal(await client.group(1).get(keys[0]!), 'last');
});

test('MSET in object form and Map form', async () => {
  const [a, b, c] = [key(1), key(2), key(3)];
  assert.equal(await client.mset({ [a]: 'oa', [b]: 'ob', [c]: 'oc' }), 'OK');
  assert.deepEqual(await client.mget(a, b, c), ['oa', 'ob', 'oc']);
  assert.equal(await client.group(2).get(b), 'ob');

  assert.equal(await client.mset(new Map([[c, 'mc'], [a, 'ma'], [b, 'mb']])), 'OK');
  assert.deepEqual(await client.mget(a, b, c), ['ma', 'mb', 'mc']);
  assert.equal(await client.group(1).get(a), 'ma');
  assert.equal(await client.group(3).get(c), 'mc');
});

test('MSET with a key and no value fails like Redis (arity error), and writes nothing', async () => {
  const [a, b] = [key(1), key(2)];
  const got = await outcome(client.call('mset', a, '1', b));
  const want = await outcome(plain.call('mset', a, '1', b));
  assert.deepEqual(got, want);
  assert.equal(got.ok, false);
  assert.equal(await client.exists(a, b), 0);
});

test('DEL, UNLINK, EXISTS, TOUCH add up the counts of every group, duplicates counted as Redis counts them', async () => {
  // The plain server gets the same key names, to compare with one Redis.
  const names = { a: key(1), b: key(2), c: key(3), a2: key(1, 'a2'), missing: key(2, 'missing') };
  const write = async (r: ShardedRedis | Redis) => {
    await r.mset(names.a, '1', names.b, '2', names.c, '3', names.a2, '4');
  };
  await write(client);
  await write(plain);
  const checks: [string, (r: ShardedRedis | Redis) => Promise<number>][] = [
    ['exists all', (r) => r.exists(names.a, names.b, names.c, names.a2)],
    ['exists duplicates', (r) => r.exists(names.a, names.a, names.b, names.missing, names.c, names.c, names.c)],
    ['touch duplicates', (r) => r.touch(names.c, names.a, names.c, names.missing, names.b)],
    ['unlink duplicates', (r) => r.unlink(names.b, names.b, names.missing)],
    ['exists after unlink', (r) => r.exists(names.a, names.b, names.c)],
    ['del duplicates', (r) => r.del(names.a, names.c, names.a, names.missing, names.a2, names.c)],
    ['exists after del', (r) => r.exists(names.a, names.b, names.c, names.a2)],
    ['del nothing left', (r) => r.del(names.a, names.b, names.c)],
  ];
  const expected = [4, 6, 4, 1, 2, 3, 0, 0];
  for (const [i, [label, check]] of checks.entries()) {
    const got = await check(client);
    assert.equal(got, await check(plain), `${label}: same count as one Redis`);
    assert.equal(got, expected[i], label);
  }
});

test('DEL and EXISTS send one sub-command to each group involved, none to the others', async () => {
  const keys = [key(1), key(2), key(3), key(2, 'again')];
  await client.mset(...keys.flatMap((k) => [k, 'v']));
  const before = await calls('exists');
  assert.equal(await client.exists(...keys), 4);
  assert.deepEqual(delta(await calls('exists'), before), [1, 1, 1]);
  const beforeDel = await calls('del');
  assert.equal(await client.del(keys[1]!, keys[3]!), 2, 'keys of one group: one DEL');
  assert.deepEqual(delta(await calls('del'), beforeDel), [0, 1, 0]);
});

test('keys all in one group (different slots): still correct, one request to that group only', async () => {
  const keys = [key(3, 'x'), key(3, 'y'), key(3, 'z')];
  assert.ok(new Set(keys.map((k) => groupOf(client, k))).size === 1);
  const before = await calls('mset');
  await client.mset(keys[0]!, 'x', keys[1]!, 'y', keys[2]!, 'z');
  assert.deepEqual(delta(await calls('mset'), before), [0, 0, 1]);
  assert.deepEqual(await client.mget(keys[2]!, keys[0]!, 'nope', keys[1]!), ['z', 'x', null, 'y']);
  assert.deepEqual(await client.group(3).mget(...keys), ['x', 'y', 'z']);
  assert.equal(await client.exists(...keys, keys[0]!), 4);
  assert.equal(await client.touch(...keys), 3);
  assert.equal(await client.unlink(keys[0]!), 1);
  assert.equal(await client.del(...keys), 2);
  assert.equal(await client.exists(...keys), 0);
});

// The last tests kill group 2's server, and restart it before they end.
describe('a group down', () => {
  let fast: ShardedRedis;

  before(async () => {
    fast = env.client({ redisOptions: FAIL_FAST });
    await fast.connect();
  });

  test('MSET across groups rejects with PartialFailureError naming it; the live groups applied their part', { timeout: 15_000 }, async () => {
    const [a, b, c] = [key(1), key(2), key(3)];
    const restore = await downGroup(env, fast, 2);
    try {
      const error = await fast.mset(a, 'A', b, 'B', c, 'C').then(
        () => assert.fail('MSET must reject while group 2 is down'),
        (e: unknown) => e,
      );
      assert.ok(error instanceof PartialFailureError, `got ${String(error)}`);
      assert.equal(error.code, 'ERR_PARTIAL_FAILURE');
      assert.equal(error.command.toLowerCase(), 'mset');
      assert.deepEqual(error.failed.map((o) => o.group), [2]);
      assert.deepEqual(error.succeeded.map((o) => o.group).sort(), [1, 3]);
      const cause: Error | undefined = error.failed[0]!.error;
      assert.ok(cause instanceof GroupUnavailableError, `the failed part says why: ${String(cause)}`);
      assert.equal(cause.group, 2);
      assert.equal(cause.address, env.servers[1]!.address);
      assert.match(error.message, /group 2/);

      // Not atomic across groups (documented): the live groups wrote their keys.
      assert.equal(await fast.group(1).get(a), 'A');
      assert.equal(await fast.group(3).get(c), 'C');

      // MGET and DEL over the dead group fail the same way; a read of live groups only still works.
      const mget = await fast.mget(a, b, c).catch((e: unknown) => e);
      assert.ok(mget instanceof PartialFailureError);
      assert.deepEqual(mget.failed.map((o) => o.group), [2]);
      const del = await fast.del(a, b).catch((e: unknown) => e);
      assert.ok(del instanceof PartialFailureError);
      assert.deepEqual(del.succeeded.map((o) => o.group), [1]);
      assert.deepEqual(await fast.mget(c, a), ['C', null], 'DEL applied its part on group 1');
    } finally {
      await restore();
    }
    assert.equal(await fast.mset(a, 'A2', b, 'B2', c, 'C2'), 'OK', 'after the restart, the group takes commands again');
    assert.deepEqual(await fast.mget(a, b, c), ['A2', 'B2', 'C2']);
  });

  test('inside a pipeline: split entries reject with PartialFailureError naming the group; other entries are fine', { timeout: 15_000 }, async () => {
    const [a, b, c] = [key(1), key(2), key(3)];
    await fast.mset(a, 'A', b, 'B', c, 'C');
    const restore = await downGroup(env, fast, 2);
    const entries = await fast
      .pipeline()
      .set(a, 'A1')
      .get(b)
      .mget(a, b, c)
      .del(c, b)
      .get(c)
      .exec()
      .finally(restore);
    assert.ok(entries);
    assert.deepEqual(entries[0], [null, 'OK']);
    assert.ok(entries[1]![0] instanceof GroupUnavailableError, `GET on the dead group: ${String(entries[1]![0])}`);
    for (const i of [2, 3]) {
      const error: Error | null = entries[i]![0];
      assert.ok(error instanceof PartialFailureError, `entry ${i}: ${String(error)}`);
      assert.deepEqual(error.failed.map((o) => o.group), [2]);
      const cause: Error | undefined = error.failed[0]!.error;
      assert.ok(cause instanceof GroupUnavailableError, `entry ${i}: the failed part names the group, as outside a pipeline: ${String(cause)}`);
      assert.equal(cause.group, 2);
    }
    assert.deepEqual(entries[4], [null, null], 'DEL applied its part on group 3 before GET');
  });
});
