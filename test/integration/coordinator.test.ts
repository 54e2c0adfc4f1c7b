// Specification of a client that follows the slot table kept in a coordinator
// (DESIGN §2, §4), on real redis-server processes: it starts from the table,
// follows every change, registers and acks only after draining, keeps its
// last good table when a bad one is written, and fails closed when its lease
// runs out.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import IORedis, { type Redis } from 'ioredis';
import {
  ShardedRedis,
  StaleTopologyError,
  TopologyError,
  CoordinatorUnavailableError,
  ArgumentError,
  slotOf,
  type GroupSpec,
  type CoordinatorOptions,
} from '../../src/index.js';
import { RedisServer, keygen, startRedisServers, stopAllRedisServers } from '../../src/testing/index.js';
import { join } from 'node:path';
import { childEnv, direct, rejection, runTsChild, sleep, until, within } from '../fixtures/integration-kit.js';
import { registry, tableJson, uniqueCluster, writeRawTable, writeTable } from '../fixtures/coordinator-kit.js';
import { coordinatorKeys } from '../../src/coordinator/keys.js';

const key = keygen('coord');

/** A script that keeps its server busy for ARGV[1] ms (a slow command in flight on KEYS[1]'s group). */
const BUSY_SCRIPT = `
local t = redis.call('TIME')
local stop = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000 + tonumber(ARGV[1])
repeat t = redis.call('TIME') until tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000 >= stop
return 'done'`;

let coordinatorServer: RedisServer;
let servers: RedisServer[] = [];
let groups: GroupSpec[] = [];
let coordinator: Redis;
const made: ShardedRedis[] = [];
const raw: Redis[] = [];

function follower(cluster: string, options: Partial<CoordinatorOptions> = {}): ShardedRedis {
  const client = new ShardedRedis({ coordinator: `redis://${coordinatorServer.address}`, cluster, refreshMs: 200, leaseMs: 2000, ...options });
  client.on('error', () => {});
  made.push(client);
  return client;
}

function to(server: RedisServer): Redis {
  const redis = direct(server);
  raw.push(redis);
  return redis;
}

/** Collects the client's error events. */
function errorsOf(client: ShardedRedis): Error[] {
  const errors: Error[] = [];
  client.on('error', (error) => errors.push(error));
  return errors;
}

/** A key whose slot group `group` owns under the even split of `ids`. */
function keyOwnedBy(client: ShardedRedis, group: number): string {
  for (;;) {
    const k = key();
    if (client.slotTable.owner[slotOf(k)] === group) return k;
  }
}

/** A coordinator server for one test (to stop or kill), with version 1 of a fresh cluster's table. */
async function coordinatorOfItsOwn(): Promise<{ own: RedisServer; ownCoordinator: Redis; cluster: string }> {
  const [own] = await startRedisServers(1);
  const ownCoordinator = direct(own!);
  raw.push(ownCoordinator);
  ownCoordinator.on('error', () => {});
  const cluster = uniqueCluster();
  await writeTable(ownCoordinator, cluster, 1, { groups });
  return { own: own!, ownCoordinator, cluster };
}

before(async () => {
  [coordinatorServer, ...servers] = await startRedisServers(4);
  groups = servers.map((s, i) => ({ id: i + 1, master: s.address }));
  coordinator = to(coordinatorServer);
});

after(async () => {
  await Promise.all(made.map((c) => c.quit().catch(() => c.disconnect())));
  await Promise.all(raw.map((r) => r.quit().catch(() => r.disconnect())));
  await stopAllRedisServers();
});

describe('starting from the coordinator', () => {
  test('reads the table, routes by it, and says so with a topology event from version 0', async () => {
    const cluster = uniqueCluster();
    await writeTable(coordinator, cluster, 1, { groups });
    const client = follower(cluster);
    const [change] = (await within(3000, 'topology event', once(client as never, 'topology'))) as [{ from: number; to: number }];
    assert.deepEqual(change, { from: 0, to: 1 });
    const k = keyOwnedBy(client, 2);
    await client.set(k, 'v');
    assert.equal(await to(servers[1]!).get(k), 'v', 'the key is on the group the table names');
    assert.equal(client.slotTable.version, 1);
  });

  test('registers in the registry with its applied version, stamped with the coordinator clock', async () => {
    const cluster = uniqueCluster();
    await writeTable(coordinator, cluster, 1, { groups });
    const client = follower(cluster, { clientId: 'reg-one' });
    await client.connect();
    await until(2000, 'ack of version 1', async () => (await registry(coordinator, cluster)).get('reg-one')?.version === 1);
    const entry = (await registry(coordinator, cluster)).get('reg-one')!;
    const [seconds] = await coordinator.time();
    assert.ok(Math.abs(entry.at - Number(seconds) * 1000) < 5000, 'at is coordinator time in ms');
    assert.equal(entry.pid, process.pid);
    assert.equal(entry.name, 'shardis:reg-one');
    assert.equal(entry.leaseMs, 2000);
  });

  test('quit() removes the registry entry', async () => {
    const cluster = uniqueCluster();
    await writeTable(coordinator, cluster, 1, { groups });
    const client = follower(cluster, { clientId: 'reg-quit' });
    await client.connect();
    await until(2000, 'registered', async () => (await registry(coordinator, cluster)).has('reg-quit'));
    await client.quit();
    assert.equal((await registry(coordinator, cluster)).has('reg-quit'), false);
  });

  test('commands sent before the first table wait for it', async () => {
    const cluster = uniqueCluster();
    const client = follower(cluster, { staleWaitMs: 3000 });
    const k = key();
    const pending = client.set(k, 'early');
    await sleep(300);
    await writeTable(coordinator, cluster, 1, { groups });
    assert.equal(await within(3000, 'the held SET', pending), 'OK');
    assert.equal(await client.get(k), 'early');
  });

  test('an uninitialized cluster: commands fail with StaleTopologyError saying to run shardis init', async () => {
    const client = follower(uniqueCluster(), { staleWaitMs: 400 });
    const errors = errorsOf(client);
    const { error } = await rejection(client.get(key()));
    assert.ok(error instanceof StaleTopologyError, String(error));
    assert.match(error.message, /shardis init/);
    assert.ok(errors.some((e) => e instanceof TopologyError && /shardis init/.test(e.message)));
  });

  test('lazyConnect: nothing is asked of the coordinator before the first command', async () => {
    const cluster = uniqueCluster();
    await writeTable(coordinator, cluster, 1, { groups });
    const client = follower(cluster, { clientId: 'lazy-one', redisOptions: { lazyConnect: true } });
    await sleep(300);
    assert.equal(client.status, 'wait');
    assert.equal((await registry(coordinator, cluster)).has('lazy-one'), false);
    assert.equal(await client.ping(), 'PONG');
  });

  test('the coordinator may be an ioredis client of yours: used, and left open by quit()', async () => {
    const cluster = uniqueCluster();
    await writeTable(coordinator, cluster, 1, { groups });
    const mine = direct(coordinatorServer);
    raw.push(mine);
    const client = new ShardedRedis({ coordinator: mine, cluster });
    await client.connect();
    assert.equal(await client.set(key(), 'v'), 'OK');
    await client.quit();
    assert.equal(await mine.ping(), 'PONG');
  });

  test('the coordinator may be given as ioredis options', async () => {
    const cluster = uniqueCluster();
    await writeTable(coordinator, cluster, 1, { groups });
    const client = follower(cluster, { coordinator: { host: coordinatorServer.host, port: coordinatorServer.port } });
    await client.connect();
    assert.equal(client.slotTable.version, 1);
  });

  test('a process exits by itself after quit() or disconnect(): no timer or socket is left', async () => {
    const cluster = uniqueCluster();
    await writeTable(coordinator, cluster, 1, { groups });
    const env = { SHARDIS_TEST_GROUPS: groups.map((g) => g.master).join(','), SHARDIS_TEST_COORDINATOR: `redis://${coordinatorServer.address}`, SHARDIS_TEST_CLUSTER: cluster };
    const outcome = await runTsChild(join(__dirname, '..', 'fixtures', 'lifecycle-child.ts'), ['coordinator'], childEnv(env), 8000);
    const explain = `\nstdout: ${outcome.stdout}\nstderr: ${outcome.stderr}`;
    assert.equal(outcome.killedAtDeadline, false, `still running after 8 s${explain}`);
    assert.deepEqual([outcome.code, outcome.signal, outcome.stdout], [0, null, 'closed\n'], explain);
  });

  test('bad options are typed errors', () => {
    const url = `redis://${coordinatorServer.address}`;
    assert.throws(() => new ShardedRedis({ coordinator: url, cluster: 'bad{name}' }), ArgumentError);
    assert.throws(() => new ShardedRedis({ coordinator: url, cluster: 'x', groups } as never), ArgumentError);
    assert.throws(() => new ShardedRedis({ coordinator: url, cluster: 'x', refreshMs: 5000, leaseMs: 1000 }), /refreshMs/);
    assert.throws(() => new ShardedRedis({ coordinator: 'localhost:6379', cluster: 'x' }), /redis:\/\//);
  });
});

describe('following changes', () => {
  test('a new table is swapped in whole, through the events channel, with the old and new version', async () => {
    const cluster = uniqueCluster();
    await writeTable(coordinator, cluster, 1, { groups });
    const client = follower(cluster, { refreshMs: 1900, leaseMs: 2000 }); // polling too slow to be what delivers it
    await client.connect();
    const k = keyOwnedBy(client, 1);
    const changed = once(client as never, 'topology');
    const started = Date.now();
    await writeTable(coordinator, cluster, 2, { groups, slots: [{ from: 0, to: 1023, group: 3 }] });
    const [change] = (await within(1000, 'topology event', changed)) as [{ from: number; to: number }];
    assert.deepEqual(change, { from: 1, to: 2 });
    assert.ok(Date.now() - started < 500, `took ${Date.now() - started} ms`);
    await client.set(k, 'moved');
    assert.equal(await to(servers[2]!).get(k), 'moved');
    assert.equal(await to(servers[0]!).get(k), null);
  });

  test('a table carried by the event is applied from the message; a bad one there is refused like a stored one', async () => {
    const cluster = uniqueCluster();
    const keys = coordinatorKeys(cluster);
    await writeTable(coordinator, cluster, 1, { groups });
    const client = follower(cluster, { refreshMs: 1900, leaseMs: 2000 });
    await client.connect();
    const errors = errorsOf(client);
    // Published, not stored: only the message can have brought it.
    const v2 = JSON.stringify(tableJson(cluster, 2, { groups, slots: [{ from: 0, to: 1023, group: 3 }] }));
    await coordinator.publish(keys.events, `2 ${v2}`);
    await until(1000, 'version 2 from the message', () => client.slotTable.version === 2);
    assert.equal(client.slotTable.owner[0], 3);
    await coordinator.set(keys.table, v2);
    await coordinator.publish(keys.events, `3 ${JSON.stringify({ ...tableJson(cluster, 3, { groups }), slots: [{ from: 0, to: 1023, group: 9 }] })}`);
    await until(1000, 'an error event', () => errors.some((e) => e instanceof TopologyError && /unknown group 9/.test(e.message)));
    assert.equal(client.slotTable.version, 2, 'the last good table is kept');
    const k = key();
    await client.set(k, 'kept');
    assert.equal(await to(servers[2]!).get(k), 'kept');
  });

  test('a new group is connected; a removed group is closed once its commands are done', async () => {
    const cluster = uniqueCluster();
    await writeTable(coordinator, cluster, 1, { groups: groups.slice(0, 2) });
    const client = follower(cluster, { clientId: 'recon' });
    await client.connect();
    assert.deepEqual(client.groups().map((g) => g.id), [1, 2]);
    await writeTable(coordinator, cluster, 2, { groups: groups.slice(1), slots: [{ from: 0, to: 1023, group: 3 }] });
    await until(2000, 'version 2', () => client.slotTable.version === 2);
    assert.deepEqual(client.groups().map((g) => g.id), [2, 3]);
    const names = async (server: RedisServer) => String(await to(server).client('LIST')).split('\n').filter((line: string) => line.includes('name=shardis:recon '));
    await until(2000, 'group 1 connection closed', async () => (await names(servers[0]!)).length === 0);
    assert.equal(await client.set(key(), 'x'), 'OK');
  });

  test('the ack of a new version waits for commands in flight on slots that moved (drain)', async () => {
    const cluster = uniqueCluster();
    await writeTable(coordinator, cluster, 1, { groups });
    const client = follower(cluster, { clientId: 'drainer' });
    await client.connect();
    await until(2000, 'ack of 1', async () => (await registry(coordinator, cluster)).get('drainer')?.version === 1);
    const k = keyOwnedBy(client, 1);
    const blocked = client.eval(BUSY_SCRIPT, 1, k, 1000); // in flight on group 1 for one second
    await sleep(50);
    await writeTable(coordinator, cluster, 2, { groups, slots: [{ from: 0, to: 1023, group: 2 }] });
    await until(1000, 'version 2 applied', () => client.slotTable.version === 2);
    await sleep(300);
    assert.equal((await registry(coordinator, cluster)).get('drainer')?.version, 1, 'no ack while a command routed under version 1 is in flight');
    assert.equal(await blocked, 'done');
    await until(1500, 'ack of 2 after the drain', async () => (await registry(coordinator, cluster)).get('drainer')?.version === 2);
  });

  test('an ack also waits for the drains of older versions still in progress', async () => {
    const cluster = uniqueCluster();
    await writeTable(coordinator, cluster, 1, { groups, slots: [{ from: 0, to: 511, group: 1 }, { from: 512, to: 1023, group: 2 }] });
    const client = follower(cluster, { clientId: 'drainer-2' });
    await client.connect();
    const k = keyOwnedBy(client, 1);
    const blocked = client.eval(BUSY_SCRIPT, 1, k, 1000);
    await sleep(50);
    // Version 2 moves group 1's slots (BLPOP in flight there); version 3 only moves group 2's.
    await writeTable(coordinator, cluster, 2, { groups, slots: [{ from: 0, to: 511, group: 3 }, { from: 512, to: 1023, group: 2 }] });
    await until(1000, 'version 2 applied', () => client.slotTable.version === 2);
    await writeTable(coordinator, cluster, 3, { groups, slots: [{ from: 0, to: 511, group: 3 }, { from: 512, to: 1023, group: 1 }] });
    await until(1000, 'version 3 applied', () => client.slotTable.version === 3);
    await sleep(300);
    assert.ok(((await registry(coordinator, cluster)).get('drainer-2')?.version ?? 0) < 2, 'neither 2 nor 3 acked while the command is in flight');
    assert.equal(await blocked, 'done');
    await until(1500, 'ack of 3', async () => (await registry(coordinator, cluster)).get('drainer-2')?.version === 3);
  });

  test('pipelines and MGET route by the table current at exec', async () => {
    const cluster = uniqueCluster();
    await writeTable(coordinator, cluster, 1, { groups });
    const client = follower(cluster);
    await client.connect();
    const keys = [key(), key(), key(), key()];
    await client.mset(keys.flatMap((k) => [k, k]));
    const pipeline = client.pipeline();
    for (const k of keys) pipeline.get(k);
    await writeTable(coordinator, cluster, 2, { groups, slots: [{ from: 0, to: 1023, group: 1 }] });
    await until(2000, 'version 2', () => client.slotTable.version === 2);
    await client.mset(keys.flatMap((k) => [k, `${k}!`]));
    const results = await pipeline.exec();
    assert.deepEqual(results, keys.map((k) => [null, `${k}!`]));
    assert.deepEqual(await to(servers[0]!).mget(keys), keys.map((k) => `${k}!`));
  });
});

describe('bad tables are refused and the last good one is kept', () => {
  const cases: [string, (cluster: string) => string, RegExp][] = [
    ['malformed JSON', () => '{"format": 1, "version": 6,', /not valid JSON/],
    ['a version going backwards', (cluster) => JSON.stringify(tableJson(cluster, 4, { groups })), /went back from version 5 to 4/],
    [
      'a __proto__ slot',
      (cluster) => {
        const json = JSON.stringify(tableJson(cluster, 6, { groups }));
        return json.replace('"slots":[{', '"slots":[{"__proto__":{"group":1},');
      },
      /__proto__/,
    ],
    [
      'overlapping ranges',
      (cluster) => JSON.stringify({ ...tableJson(cluster, 6, { groups }), slots: [{ from: 0, to: 600, group: 1 }, { from: 500, to: 1023, group: 2 }] }),
      /owned twice/,
    ],
    ['missing ranges', (cluster) => JSON.stringify({ ...tableJson(cluster, 6, { groups }), slots: [{ from: 0, to: 1000, group: 1 }] }), /not owned: 1001\.\.1023/],
    ['an unknown group', (cluster) => JSON.stringify({ ...tableJson(cluster, 6, { groups }), slots: [{ from: 0, to: 1023, group: 9 }] }), /unknown group 9/],
    ['a newer format', (cluster) => JSON.stringify({ ...tableJson(cluster, 6, { groups }), format: 2 }), /upgrade shardis/],
  ];

  for (const [what, make, message] of cases) {
    test(`${what}: an error event, the last good table kept, and a later good table applied`, async () => {
      const cluster = uniqueCluster();
      await writeRawTable(coordinator, cluster, JSON.stringify(tableJson(cluster, 5, { groups, slots: [{ from: 0, to: 1023, group: 1 }] })), 5);
      const client = follower(cluster);
      await client.connect();
      const errors = errorsOf(client);
      await writeRawTable(coordinator, cluster, make(cluster), 6);
      await until(2000, 'an error event', () => errors.some((e) => e instanceof TopologyError));
      const error = errors.find((e) => e instanceof TopologyError)!;
      assert.match(error.message, message);
      assert.equal(client.slotTable.version, 5, 'the last good table is kept');
      const k = key();
      await client.set(k, 'still');
      assert.equal(await to(servers[0]!).get(k), 'still', 'routing by the last good table');
      // An operator fixes it with a good table.
      await writeRawTable(coordinator, cluster, JSON.stringify(tableJson(cluster, 7, { groups, slots: [{ from: 0, to: 1023, group: 2 }] })), 7);
      await until(2000, 'version 7', () => client.slotTable.version === 7);
    });
  }
});

describe('the lease', () => {
  test('coordinator stopped: served until the lease runs out, then StaleTopologyError; recovers when it returns', async () => {
    const { own, ownCoordinator, cluster } = await coordinatorOfItsOwn();
    const client = new ShardedRedis({ coordinator: `redis://${own.address}`, cluster, refreshMs: 100, leaseMs: 800, staleWaitMs: 300 });
    made.push(client);
    const errors = errorsOf(client);
    const stale = new Promise<void>((resolve) => client.once('stale', resolve));
    await client.connect();
    const k = key();
    await own.stop();
    const stoppedAt = Date.now();
    assert.equal(await client.set(k, 'within lease'), 'OK', 'served while the lease holds');
    await within(2000, 'stale event', stale);
    assert.ok(Date.now() - stoppedAt <= 1000, 'the lease ends about leaseMs after the last confirmation');
    const { error } = await rejection(client.get(k));
    assert.ok(error instanceof StaleTopologyError, String(error));
    assert.equal((error as StaleTopologyError).version, 1);
    assert.match(error.message, /onStaleTopology/);
    assert.ok(errors.some((e) => e instanceof CoordinatorUnavailableError), 'the outage was reported');

    // It comes back (empty: no persistence), and the operator writes the table again.
    await own.restart();
    await writeTable(ownCoordinator, cluster, 1, { groups });
    await until(3000, 'fresh again', async () => (await client.get(k).catch(() => 'stale')) === 'within lease');
  });

  test('coordinator restart with its data: clients confirm again and follow changes made after it', async () => {
    const { own, ownCoordinator, cluster } = await coordinatorOfItsOwn();
    const client = new ShardedRedis({ coordinator: `redis://${own.address}`, cluster, refreshMs: 100, leaseMs: 3000 });
    client.on('error', () => {});
    made.push(client);
    await client.connect();
    await ownCoordinator.save();
    await own.kill(); // a crash; the data dir (with the dump) is kept
    await own.restart();
    await writeTable(ownCoordinator, cluster, 2, { groups, slots: [{ from: 0, to: 1023, group: 2 }] });
    await until(2000, 'version 2 after the restart', () => client.slotTable.version === 2);
    const k = key();
    await client.set(k, 'after restart');
    assert.equal(await to(servers[1]!).get(k), 'after restart');
  });

  test('commands queued for a group that is down are failed, not sent later, when the lease runs out', async () => {
    const { own, ownCoordinator, cluster } = await coordinatorOfItsOwn();
    const [group] = await startRedisServers(1);
    await writeTable(ownCoordinator, cluster, 2, { groups: [{ id: 1, master: group!.address }] });
    const client = new ShardedRedis({ coordinator: `redis://${own.address}`, cluster, refreshMs: 100, leaseMs: 800, staleWaitMs: 300 });
    client.on('error', () => {});
    made.push(client);
    await client.connect();
    await until(2000, 'version 2', () => client.slotTable.version === 2);
    const k = key();
    await group!.stop();
    await sleep(100);
    const queued = client.set(k, 'must not land later'); // the lease holds: queued until the group is back
    await own.stop(); // no more confirmations: the lease runs out
    const { error } = await rejection(queued);
    assert.ok(error instanceof StaleTopologyError, String(error));
    assert.match(error.message, /was not sent/);
    await group!.restart();
    const check = direct(group!);
    raw.push(check);
    await sleep(300);
    assert.equal(await check.exists(k), 0, 'the queued SET never reached the group');
  });

  test("onStaleTopology: 'serve' keeps serving from the last table", async () => {
    const { own, ownCoordinator, cluster } = await coordinatorOfItsOwn();
    const client = new ShardedRedis({ coordinator: `redis://${own.address}`, cluster, refreshMs: 100, leaseMs: 500, onStaleTopology: 'serve' });
    client.on('error', () => {});
    made.push(client);
    await client.connect();
    await own.stop();
    await sleep(900);
    const k = key();
    assert.equal(await client.set(k, 'served stale'), 'OK');
    assert.equal(await client.get(k), 'served stale');
  });

  test('a pipeline waits for a fresh confirmation like a command', async () => {
    const { own, ownCoordinator, cluster } = await coordinatorOfItsOwn();
    const client = new ShardedRedis({ coordinator: `redis://${own.address}`, cluster, refreshMs: 100, leaseMs: 500, staleWaitMs: 300 });
    client.on('error', () => {});
    made.push(client);
    await client.connect();
    await own.stop();
    await sleep(800);
    const pipeline = client.pipeline().set(key(), 'a').get(key());
    const { error } = await rejection(pipeline.exec());
    assert.ok(error instanceof StaleTopologyError, String(error));
  });
});
