// Specification of the client's side of a live slot migration (DESIGN §5,
// client column), on real redis-server processes. The tables are written by
// hand here, one state at a time, so each state's behaviour is seen on its
// own: pending routes as before; preparing holds; migrating moves a command's
// keys with MIGRATE (no REPLACE) before running it on the target, and a key
// found on both sides is the target's; stable(B) routes to the target.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Redis } from 'ioredis';
import { ShardedRedis, StaleTopologyError, slotOf, type GroupSpec, type Migration, type SlotRange } from '../../src/index.js';
import { RedisServer, startRedisServers, stopAllRedisServers } from '../../src/testing/index.js';
import { direct, rejection, sleep, until, within } from '../fixtures/integration-kit.js';
import { registry, uniqueCluster, writeTable } from '../fixtures/coordinator-kit.js';

let coordinatorServer: RedisServer;
let servers: RedisServer[] = [];
let groups: GroupSpec[] = [];
let coordinator: Redis;
let onGroup: Redis[] = [];
const made: ShardedRedis[] = [];

/** A hash tag whose slot is `slot`, so `{tag}:anything` lands there. */
function tagIn(slot: number): string {
  for (let i = 0; ; i++) if (slotOf(`t${i}-${process.pid}`) === slot) return `t${i}-${process.pid}`;
}

/** Slot `slot` owned by `owner`; every other slot by group 3. */
function ownedBy(slot: number, owner: number): SlotRange[] {
  const ranges: SlotRange[] = [];
  if (slot > 0) ranges.push({ from: 0, to: slot - 1, group: 3 });
  ranges.push({ from: slot, to: slot, group: owner });
  if (slot < 1023) ranges.push({ from: slot + 1, to: 1023, group: 3 });
  return ranges;
}

/** A cluster where slot `slot` moves from group 1 to group 2, and a client following it. */
async function moving(slot: number, clientOptions: { staleWaitMs?: number } = {}) {
  const cluster = uniqueCluster('mig');
  let version = 1;
  await writeTable(coordinator, cluster, version, { groups, slots: ownedBy(slot, 1) });
  const client = new ShardedRedis({ coordinator: `redis://${coordinatorServer.address}`, cluster, refreshMs: 100, leaseMs: 3000, ...clientOptions });
  client.on('error', () => {});
  made.push(client);
  await client.connect();
  const state = async (next: Migration['state'] | 'stable(B)') => {
    version++;
    if (next === 'stable(B)') await writeTable(coordinator, cluster, version, { groups, slots: ownedBy(slot, 2) });
    else {
      const migrations: Migration[] = [{ slots: [[slot, slot]], from: 1, to: 2, state: next }];
      await writeTable(coordinator, cluster, version, { groups, slots: ownedBy(slot, 1), migrations });
    }
    await until(2000, `version ${version} applied`, () => client.slotTable.version === version);
  };
  return { client, cluster, state, version: () => version };
}

before(async () => {
  [coordinatorServer, ...servers] = await startRedisServers(4);
  groups = servers.map((s, i) => ({ id: i + 1, master: s.address }));
  coordinator = direct(coordinatorServer);
  onGroup = servers.map((s) => direct(s));
});

after(async () => {
  await Promise.all(made.map((c) => c.quit().catch(() => c.disconnect())));
  await Promise.all([coordinator, ...onGroup].map((r) => r.quit().catch(() => r.disconnect())));
  await stopAllRedisServers();
});

describe('a slot moving from group 1 to group 2, state by state', () => {
  test('pending routes to the source; preparing holds commands; migrating moves their keys first', async () => {
    const slot = 101;
    const tag = tagIn(slot);
    const { client, state } = await moving(slot);
    const k = `{${tag}}:k`;
    await client.set(k, 'a');
    assert.equal(await onGroup[0]!.get(k), 'a');

    await state('pending');
    await client.set(k, 'b');
    assert.equal(await onGroup[0]!.get(k), 'b', 'pending: still the source');

    await state('preparing');
    let done = false;
    const held = client.set(k, 'c').then((reply) => ((done = true), reply));
    await sleep(300);
    assert.equal(done, false, 'preparing: the command is held');
    assert.equal(await onGroup[0]!.get(k), 'b', 'nothing was sent to the source');

    await state('migrating');
    assert.equal(await within(2000, 'the held SET', held), 'OK');
    assert.equal(await onGroup[1]!.get(k), 'c', 'the key moved to the target, then the command ran there');
    assert.equal(await onGroup[0]!.exists(k), 0, 'and it is gone from the source');
  });

  test('migrating: reads, MGET with stable keys, pipelines, MULTI and Lua all move their keys first', async () => {
    const slot = 202;
    const tag = tagIn(slot);
    const { client, state } = await moving(slot);
    const keys = ['a', 'b', 'c', 'd', 'e', 'f'].map((name) => `{${tag}}:${name}`);
    for (const k of keys) await onGroup[0]!.set(k, `v-${k}`);
    const stable = `elsewhere-${process.pid}`;
    await client.set(stable, 'stable');
    await state('pending');
    await state('preparing');
    await state('migrating');

    assert.equal(await client.get(keys[0]!), `v-${keys[0]}`);
    assert.deepEqual(await client.mget(keys[1]!, stable), [`v-${keys[1]}`, 'stable']);
    const results = await client.pipeline().get(keys[2]!).get(stable).incr(`{${tag}}:counter`).exec();
    assert.deepEqual(results, [[null, `v-${keys[2]}`], [null, 'stable'], [null, 1]]);
    assert.deepEqual(await client.multi().get(keys[3]!).set(keys[4]!, 'x').exec(), [[null, `v-${keys[3]}`], [null, 'OK']]);
    assert.equal(await client.eval('return redis.call("GET", KEYS[1])', 1, keys[5]!), `v-${keys[5]}`);
    for (const k of keys) assert.equal(await onGroup[0]!.exists(k), 0, `${k} left the source`);
    assert.equal(await onGroup[1]!.get(keys[4]!), 'x');
  });

  test('a key on both sides: the target copy wins and the source copy is deleted', async () => {
    const slot = 303;
    const tag = tagIn(slot);
    const { client, state } = await moving(slot);
    const k = `{${tag}}:both`;
    await state('pending');
    await state('preparing');
    await state('migrating');
    await onGroup[0]!.set(k, 'stale copy on the source');
    await onGroup[1]!.set(k, 'newer copy on the target');
    assert.equal(await client.get(k), 'newer copy on the target');
    assert.equal(await onGroup[0]!.exists(k), 0);
    // And the same key twice in one command (one MIGRATE must not list it twice).
    await onGroup[0]!.set(`{${tag}}:twice`, '1');
    assert.deepEqual(await client.mget(`{${tag}}:twice`, `{${tag}}:twice`), ['1', '1']);
  });

  test('migrating: a key already moved (or never on the source) is not MIGRATEd again by the same client', async () => {
    const slot = 404;
    const tag = tagIn(slot);
    const { client, state } = await moving(slot);
    const [moved, absent] = [`{${tag}}:moved`, `{${tag}}:absent`];
    await onGroup[0]!.set(moved, '0');
    await state('pending');
    await state('preparing');
    await state('migrating');
    const migrateCalls = async () => Number(/cmdstat_migrate:calls=(\d+)/.exec(String(await onGroup[0]!.info('commandstats')))?.[1] ?? 0);
    const before = await migrateCalls();
    await client.incr(moved);
    await client.get(absent);
    assert.equal(await migrateCalls(), before + 2, 'the first touch of each key MIGRATEs it');
    for (let i = 0; i < 20; i++) await Promise.all([client.incr(moved), client.set(absent, String(i))]);
    assert.equal(await migrateCalls(), before + 2, 'later ones go straight to the target');
    assert.equal(await onGroup[1]!.get(moved), '21');
    assert.equal(await onGroup[1]!.get(absent), '19');
    assert.equal(await onGroup[0]!.exists(moved, absent), 0);
    // A command that skips the MIGRATE does not overtake one sent before it that needs one.
    const [fresh, list] = [`{${tag}}:fresh`, `{${tag}}:list`];
    await onGroup[0]!.set(fresh, 'f');
    await client.rpush(list, 'zero'); // list is gone from the source from now on
    const first = client.eval('redis.call("GET", KEYS[1]); return redis.call("RPUSH", KEYS[2], "first")', 2, fresh, list);
    const second = client.rpush(list, 'second');
    await Promise.all([first, second]);
    assert.deepEqual(await onGroup[1]!.lrange(list, 0, -1), ['zero', 'first', 'second']);
  });

  test('stable(B): the target owns the slot', async () => {
    const slot = 404;
    const tag = tagIn(slot);
    const { client, state } = await moving(slot);
    await state('pending');
    await state('preparing');
    await state('migrating');
    await state('stable(B)');
    await client.set(`{${tag}}:after`, 'on B');
    assert.equal(await onGroup[1]!.get(`{${tag}}:after`), 'on B');
  });

  test('a preparing that never ends: held commands fail with StaleTopologyError after staleWaitMs', async () => {
    const slot = 505;
    const tag = tagIn(slot);
    const { client, state } = await moving(slot, { staleWaitMs: 400 });
    await state('pending');
    await state('preparing');
    const { error, ms } = await rejection(client.set(`{${tag}}:x`, 'y'));
    assert.ok(error instanceof StaleTopologyError, String(error));
    assert.match(error.message, /being prepared to move from group 1 to group 2/);
    assert.ok(ms >= 350 && ms < 2000, `${ms} ms`);
  });

  test('a BLPOP blocked on the source when its slot starts to move is unblocked, sent again, and answered from the target', async () => {
    const slot = 606;
    const tag = tagIn(slot);
    const { client, cluster, state, version } = await moving(slot);
    const list = `{${tag}}:list`;
    await state('pending');
    const started = Date.now();
    const blocked = client.blpop(list, 5);
    await sleep(100);
    await state('preparing');
    // The ack of preparing does not wait for the BLPOP's 5 seconds.
    const me = client.clientId;
    await until(1500, 'ack of preparing', async () => (await registry(coordinator, cluster)).get(me)?.version === version());
    await state('migrating');
    await sleep(100);
    await onGroup[1]!.rpush(list, 'pushed on the target');
    assert.deepEqual(await within(3000, 'the BLPOP', blocked), [list, 'pushed on the target']);
    assert.ok(Date.now() - started < 4000);
  });

  test('a BLPOP sent again keeps the time it had left', async () => {
    const slot = 707;
    const tag = tagIn(slot);
    const { client, state } = await moving(slot);
    await state('pending');
    const started = Date.now();
    const blocked = client.blpop(`{${tag}}:empty`, 1.5);
    await sleep(300);
    await state('preparing');
    await state('migrating');
    assert.equal(await within(4000, 'the BLPOP', blocked), null);
    const ms = Date.now() - started;
    assert.ok(ms >= 1300 && ms < 2600, `answered after ${ms} ms for a 1.5 s timeout`);
  });
});
