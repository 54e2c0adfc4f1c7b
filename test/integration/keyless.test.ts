// Specification: commands without keys (DESIGN §3.5). Some are fanned out to
// every group on purpose (PING, DBSIZE summed, SCRIPT LOAD, SCAN and
// scanStream across all groups, FLUSHDB/FLUSHALL and KEYS only when opted
// in); the ones that would break a sharded client are refused with a
// CommandNotAllowedError that says why. group(id) gives raw access.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import IORedis from 'ioredis';
import {
  ShardedRedis,
  CommandNotAllowedError,
  UnknownCommandError,
  TopologyError,
  ArgumentError,
  ShardisError,
} from '../../src/index.js';
import { keygen } from '../../src/testing/index.js';
import { startGroups, keyIn, groupOf, collect, commandCalls, type TestGroups } from './helpers.js';

let env: TestGroups;
let client: ShardedRedis;
const gen = keygen('keyless');

before(async () => {
  env = await startGroups(3);
  client = env.client();
  await client.connect();
});

after(async () => {
  await env.stop();
});

/** A fresh key owned by group `g`. */
const key = (g: number, name = 'k'): string => keyIn(client, g, gen, name);

/** How many times each group has run `command` so far (INFO commandstats). */
const calls = (command: string): Promise<number[]> => commandCalls(client, command);

function deltas(after: number[], before: number[]): number[] {
  return after.map((n, i) => n - before[i]!);
}

/** Each group's DBSIZE, read through its raw connection. */
function sizes(): Promise<number[]> {
  return Promise.all([1, 2, 3].map((g) => client.group(g).dbsize()));
}

/** `perGroup` fresh keys in each group, all starting with one fresh prefix (for MATCH). */
async function seed(perGroup: number): Promise<{ prefix: string; keys: string[] }> {
  const prefix = gen('seed');
  const scoped = (name?: string) => `${prefix}:${gen(name)}`;
  const keys = [1, 2, 3].flatMap((g) => Array.from({ length: perGroup }, (_, i) => keyIn(client, g, scoped, `s${i}`)));
  await client.mset(...keys.flatMap((k) => [k, 'v']));
  return { prefix, keys };
}

describe('fanned out to every group', () => {
  test("PING answers 'PONG' (or the message) after every group answered", async () => {
    const before = await calls('ping');
    assert.equal(await client.ping(), 'PONG');
    assert.equal(await client.ping('hello'), 'hello');
    assert.deepEqual(deltas(await calls('ping'), before), [2, 2, 2]);
  });

  test('DBSIZE is the sum of every group', async () => {
    await client.mset(key(1), 'a', key(2), 'b', key(3), 'c', key(3, 'more'), 'd');
    const perGroup = await sizes();
    assert.ok(perGroup.every((n) => n > 0));
    assert.equal(await client.dbsize(), perGroup[0]! + perGroup[1]! + perGroup[2]!);
  });

  test("SCRIPT LOAD loads on every master; SCRIPT EXISTS is true only where every group has it", async () => {
    const lua = `return '${gen('script')}'`;
    const sha = createHash('sha1').update(lua).digest('hex');
    assert.equal(await client.script('LOAD', lua), sha);
    for (const g of [1, 2, 3]) assert.deepEqual(await client.group(g).script('EXISTS', sha), [1], `group ${g}`);
    assert.deepEqual(await client.script('EXISTS', sha, '0'.repeat(40)), [1, 0]);
    // EVALSHA then works for a key in any group.
    for (const g of [1, 2, 3]) assert.equal(typeof (await client.evalsha(sha, 1, key(g))), 'string');
    // Once one group lost it, it no longer exists "everywhere".
    await client.group(2).script('FLUSH');
    assert.deepEqual(await client.script('EXISTS', sha), [0]);
  });
});

describe('SCAN across all groups', () => {
  test('SCAN with the composite cursor visits every key once, group after group, and ends with "0"', async () => {
    const { prefix, keys } = await seed(40);
    const seen: string[] = [];
    let cursor = '0';
    let pages = 0;
    do {
      const [next, batch] = await client.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 10);
      assert.equal(typeof next, 'string');
      seen.push(...batch);
      cursor = next;
      pages++;
      assert.ok(pages < 1000, 'SCAN must end');
    } while (cursor !== '0');
    assert.ok(pages > 3, `several pages (${pages})`);
    assert.deepEqual([...seen].sort(), [...keys].sort(), 'every key exactly once');
  });

  test('scanBuffer answers like ioredis scanBuffer: the cursor and the keys as Buffers', async () => {
    const { prefix, keys } = await seed(3);
    const seen: string[] = [];
    let cursor = '0';
    for (let pages = 0; pages < 1000; pages++) {
      const [next, batch]: [Buffer, Buffer[]] = await client.scanBuffer(cursor, 'MATCH', `${prefix}:*`);
      assert.ok(Buffer.isBuffer(next), `the cursor is a Buffer, got ${typeof next}`);
      assert.ok(batch.every((k) => Buffer.isBuffer(k)));
      seen.push(...batch.map(String));
      cursor = String(next);
      if (cursor === '0') break;
    }
    assert.equal(String(cursor), '0');
    assert.deepEqual(seen.sort(), [...keys].sort());
  });

  test('an invalid SCAN cursor is an ArgumentError', async () => {
    for (const cursor of ['abc', '-1']) {
      const error = await client.scan(cursor).catch((e: unknown) => e);
      assert.ok(error instanceof ArgumentError, `cursor ${cursor}: got ${String(error)}`);
    }
  });

  test('scanStream({ match, count }) yields every key of every group exactly once', async () => {
    const { prefix, keys } = await seed(30);
    const got = await collect<string>(client.scanStream({ match: `${prefix}:*`, count: 7 }));
    assert.deepEqual([...got].sort(), [...keys].sort());
    assert.deepEqual(new Set(got.map((k) => groupOf(client, k))), new Set([1, 2, 3]));
  });

  test('scanBufferStream yields the same keys as Buffers', async () => {
    const { prefix, keys } = await seed(10);
    const got = await collect<Buffer>(client.scanBufferStream({ match: `${prefix}:*`, count: 5 }));
    assert.ok(got.every((k) => Buffer.isBuffer(k)));
    assert.deepEqual(got.map((k) => k.toString()).sort(), [...keys].sort());
  });

  test('sscanStream, hscanStream and zscanStream walk one key on the group owning it', async () => {
    const members = Array.from({ length: 300 }, (_, i) => `m${i}`);
    const s = key(1, 'set');
    const h = key(2, 'hash');
    const z = key(3, 'zset');
    await client.sadd(s, ...members);
    await client.hset(h, Object.fromEntries(members.map((m, i) => [m, String(i)])));
    await client.zadd(z, ...members.flatMap((m, i) => [i, m]));

    const setItems = await collect<string>(client.sscanStream(s, { count: 20 }));
    assert.deepEqual([...new Set(setItems)].sort(), [...members].sort());

    const hashItems = await collect<string>(client.hscanStream(h, { count: 20 }));
    const hash = new Map<string, string>();
    for (let i = 0; i < hashItems.length; i += 2) hash.set(hashItems[i]!, hashItems[i + 1]!);
    assert.deepEqual(hash, new Map(members.map((m, i) => [m, String(i)])));

    const zsetItems = await collect<string>(client.zscanStream(z, { match: 'm1*', count: 20 }));
    const zset = new Map<string, string>();
    for (let i = 0; i < zsetItems.length; i += 2) zset.set(zsetItems[i]!, zsetItems[i + 1]!);
    const expected = members.flatMap((m, i) => (m.startsWith('m1') ? [[m, String(i)] as const] : []));
    assert.deepEqual(zset, new Map(expected));
  });
});

describe('refused', () => {
  const refused: [string, () => Promise<unknown>, RegExp][] = [
    ['select', () => client.select(1), /database|db/i],
    ['move', () => client.move('some-key', 1), /database/i],
    ['swapdb', () => client.swapdb(0, 1), /database/i],
    ['migrate', () => client.migrate('127.0.0.1', 1, 'some-key', 0, 1000), /migrat/i],
    ['subscribe', () => client.subscribe('channel'), /connection|dedicated/i],
    ['monitor', () => client.call('monitor'), /connection|dedicated/i],
  ];
  for (const [name, run, why] of refused) {
    test(`${name.toUpperCase()} is refused with a CommandNotAllowedError that says why; nothing is sent`, async () => {
      const before = await calls(name);
      const error = await run().then(
        (r) => assert.fail(`${name} must be refused, got ${JSON.stringify(r)}`),
        (e: unknown) => e,
      );
      assert.ok(error instanceof CommandNotAllowedError, `got ${String(error)}`);
      assert.ok(error instanceof ShardisError);
      assert.equal(error.code, 'ERR_COMMAND_NOT_ALLOWED');
      assert.equal(error.command.toLowerCase(), name);
      assert.match(error.message, new RegExp(`^${name.toUpperCase()} is not allowed on a sharded client: .{10,}`));
      assert.match(error.message, why);
      assert.deepEqual(await calls(name), before, `${name} reached no group`);
    });
  }

  test('after a refused SELECT the client still works on database 0', async () => {
    await client.select(1).catch(() => {});
    const k = key(2);
    await client.set(k, 'db0');
    assert.equal(await client.group(2).get(k), 'db0');
    const db0 = env.direct(2, { db: 0 });
    assert.equal(await db0.get(k), 'db0');
  });

  test('KEYS is refused unless allowKeys: true; then it concatenates the keys of every group', async () => {
    const { prefix, keys } = await seed(4);
    const before = await calls('keys');
    const error = await client.keys(`${prefix}:*`).catch((e: unknown) => e);
    assert.ok(error instanceof CommandNotAllowedError, `got ${String(error)}`);
    assert.match(error.message, /allowKeys/);
    assert.deepEqual(await calls('keys'), before);

    const allowed = env.client({ allowKeys: true });
    const got = await allowed.keys(`${prefix}:*`);
    assert.deepEqual([...got].sort(), [...keys].sort());
    assert.deepEqual(deltas(await calls('keys'), before), [1, 1, 1]);
  });

  test("an unknown command is an UnknownCommandError that points to group(id)", async () => {
    const error = await client.call('nosuchcommand', 'x').catch((e: unknown) => e);
    assert.ok(error instanceof UnknownCommandError, `got ${String(error)}`);
    assert.equal(error.code, 'ERR_UNKNOWN_COMMAND');
    assert.equal(error.command, 'nosuchcommand');
    assert.match(error.message, /group\(id\)/);
  });
});

describe('raw access', () => {
  test('group(id) is the raw ioredis client of that group: no routing, no prefix', async () => {
    for (const [i, server] of env.servers.entries()) {
      const raw = client.group(i + 1);
      assert.ok(raw instanceof IORedis);
      assert.equal(raw, client.group(i + 1), 'the same connection every time');
      assert.equal(raw.options.port, server.port);
    }
    // A key owned by group 2, written through group 1's raw connection, stays on group 1.
    const k = key(2);
    await client.group(1).set(k, 'raw');
    assert.equal(await env.direct(1).get(k), 'raw');
    assert.equal(await client.get(k), null, 'the routed read goes to group 2');
  });

  test('group(unknown id) throws a TopologyError naming the known groups', () => {
    for (const id of [0, 4, 99]) {
      assert.throws(
        () => client.group(id),
        (error: unknown) => error instanceof TopologyError && /unknown group/.test(error.message) && /1, 2, 3/.test(error.message),
      );
    }
  });

  test('groups() lists every group with its id, address and raw client, in id order', () => {
    const listed = client.groups();
    assert.deepEqual(
      listed.map(({ id, address }) => ({ id, address })),
      env.servers.map((s, i) => ({ id: i + 1, address: s.address })),
    );
    for (const g of listed) assert.equal(g.redis, client.group(g.id));
  });
});

// Last: these erase every group.
describe('FLUSHDB / FLUSHALL', () => {
  for (const command of ['flushdb', 'flushall'] as const) {
    test(`${command.toUpperCase()} is refused unless allowFlush: true, and nothing is flushed`, async () => {
      await seed(2);
      const sizesBefore = await sizes();
      const before = await calls(command);
      const error = await client[command]().catch((e: unknown) => e);
      assert.ok(error instanceof CommandNotAllowedError, `got ${String(error)}`);
      assert.match(error.message, /allowFlush/);
      assert.deepEqual(await sizes(), sizesBefore, 'nothing flushed');
      assert.deepEqual(await calls(command), before, 'not sent');
    });

    test(`${command.toUpperCase()} with allowFlush: true empties every group`, async () => {
      await seed(2);
      assert.ok((await sizes()).every((n) => n > 0));
      const flusher = env.client({ allowFlush: true });
      assert.equal(await flusher[command](), 'OK');
      assert.deepEqual(await sizes(), [0, 0, 0]);
      assert.equal(await client.dbsize(), 0);
    });
  }
});
