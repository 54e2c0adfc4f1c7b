// Specification of reads from replicas (issue 5, DESIGN §3.6), on real
// redis-server processes, replicas made with --replicaof: with readFrom
// other than 'master', read-only keyed commands on stable slots go to a
// healthy replica of their group; writes, MULTI, EVAL, and every command on a
// slot in any migration state go to the master; a replica that is down,
// detached or lagging is skipped and its reads fall back to the master.
// Which server answered is read from each server's INFO commandstats.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Redis } from 'ioredis';
import IORedis from 'ioredis';
import { ShardedRedis, ArgumentError, slotOf, type GroupSpec, type MasterGroupSpec, type SlotRange, type ShardedRedisOptions } from '../../src/index.js';
import { RedisServer, keygen, startRedisServers, stopAllRedisServers } from '../../src/testing/index.js';
import { direct, keyIn, rejection, sleep, until } from '../fixtures/integration-kit.js';
import { uniqueCluster, writeTable } from '../fixtures/coordinator-kit.js';

const key = keygen('replicas');
const made: ShardedRedis[] = [];
const raw: Redis[] = [];

/** Two groups: group 1 with two replicas, group 2 with one. */
let masters: RedisServer[] = [];
let replicas1: RedisServer[] = [];
let replica2: RedisServer;
let groups: GroupSpec[] = [];
let coordinatorServer: RedisServer;

function to(server: RedisServer): Redis {
  const redis = direct(server);
  redis.on('error', () => {});
  raw.push(redis);
  return redis;
}

async function replicaOf(master: RedisServer): Promise<RedisServer> {
  const [replica] = await startRedisServers(1, { args: ['--replicaof', master.host, String(master.port)] });
  await linkUp(replica!);
  return replica!;
}

/** Waits until the replica's link to its master is up (the first sync done). */
async function linkUp(replica: RedisServer): Promise<void> {
  const redis = to(replica);
  await until(10_000, `${replica.address} replicating`, async () => /master_link_status:up/.test(await redis.info('replication')), 50);
}

function client(options: Partial<ShardedRedisOptions> & Record<string, unknown> = {}, ofGroups: GroupSpec[] = groups): ShardedRedis {
  const c = new ShardedRedis({ groups: ofGroups, replicaCheckMs: 50, ...options } as ShardedRedisOptions);
  c.on('error', () => {});
  made.push(c);
  return c;
}

async function healthy(c: ShardedRedis, count?: number): Promise<void> {
  await until(10_000, 'every replica healthy', () => {
    const all = c.replicas();
    return all.length > 0 && (count === undefined || all.length === count) && all.every((r) => r.healthy);
  }, 20);
}

/** How many times `command` ran on the server since the last CONFIG RESETSTAT. */
async function calls(redis: Redis, command: string): Promise<number> {
  const match = new RegExp(`^cmdstat_${command}:calls=(\\d+)`, 'm').exec(await redis.info('commandstats'));
  return match ? Number(match[1]) : 0;
}

async function resetStats(...servers: Redis[]): Promise<void> {
  await Promise.all(servers.map((s) => s.config('RESETSTAT')));
}

/** Waits until every replica of `master` has every write made so far. */
async function replicated(master: Redis, count = 1): Promise<void> {
  await master.wait(count, 5000);
}

before(async () => {
  [coordinatorServer, ...masters] = await startRedisServers(3);
  replicas1 = [await replicaOf(masters[0]!), await replicaOf(masters[0]!)];
  replica2 = await replicaOf(masters[1]!);
  groups = [
    { id: 1, master: masters[0]!.address, replicas: replicas1.map((r) => r.address) },
    { id: 2, master: masters[1]!.address, replicas: [replica2.address] },
  ];
});

after(async () => {
  await Promise.all(made.map((c) => c.quit().catch(() => c.disconnect())));
  for (const r of raw) r.disconnect();
  await stopAllRedisServers();
});

describe("readFrom 'master' (the default)", () => {
  test('opens no replica connection and reads every key on the masters', async () => {
    const c = client({ clientId: `masters-${process.pid}` });
    const [m1, r1a, r1b] = [to(masters[0]!), to(replicas1[0]!), to(replicas1[1]!)];
    const k = keyIn(c, 1, key);
    await c.set(k, 'v');
    await replicated(m1, 2);
    await resetStats(m1, r1a, r1b);
    assert.equal(await c.get(k), 'v');
    assert.equal(await calls(m1, 'get'), 1);
    assert.equal((await calls(r1a, 'get')) + (await calls(r1b, 'get')), 0);
    assert.deepEqual(c.replicas(), []);
    for (const replica of [r1a, r1b]) {
      assert.doesNotMatch(await replica.client('LIST') as string, new RegExp(`name=shardis:masters-${process.pid}\\b`));
    }
  });
});

describe("readFrom 'replica'", () => {
  test('reads (GET, MGET, EXISTS, HGETALL, EVAL_RO, pipelines) go to replicas; writes, MULTI and EVAL to masters', async () => {
    const c = client({ readFrom: 'replica' });
    await healthy(c, 3);
    const [m1, m2, r1a, r1b, r2] = [to(masters[0]!), to(masters[1]!), to(replicas1[0]!), to(replicas1[1]!), to(replica2)];
    const a = keyIn(c, 1, key);
    const b = keyIn(c, 2, key);
    await c.mset(a, 'A', b, 'B');
    await replicated(m1, 2);
    await replicated(m2, 1);
    await resetStats(m1, m2, r1a, r1b, r2);

    assert.equal(await c.get(a), 'A');
    assert.equal(await c.get(b), 'B');
    assert.deepEqual(await c.mget(a, b, 'nope'), ['A', 'B', null]);
    assert.equal(await c.exists(a, b), 2);
    assert.equal(await c.call('eval_ro', "return redis.call('get', KEYS[1])", 1, a), 'A');
    const piped = await c.pipeline().get(a).get(b).exec();
    assert.deepEqual(piped, [[null, 'A'], [null, 'B']]);
    await c.set(a, 'A2');
    assert.deepEqual(await c.multi().get(a).exec(), [[null, 'A2']]);
    assert.equal(await c.eval("return redis.call('get', KEYS[1])", 1, a), 'A2');

    // Group 1: GET, the pipelined GET, MGET, EXISTS and EVAL_RO (whose script's GET counts as a GET) on its
    // replicas; the SET, the MULTI's GET and EVAL (and its GET) on its master.
    const replicaGets1 = (await calls(r1a, 'get')) + (await calls(r1b, 'get'));
    assert.equal(replicaGets1, 3, 'GET a, the pipelined GET a and the GET in EVAL_RO on group 1 replicas');
    assert.equal((await calls(r1a, 'mget')) + (await calls(r1b, 'mget')), 1);
    assert.equal((await calls(r1a, 'exists')) + (await calls(r1b, 'exists')), 1);
    assert.equal((await calls(r1a, 'eval_ro')) + (await calls(r1b, 'eval_ro')), 1);
    assert.equal(await calls(m1, 'get'), 2, 'the GETs inside MULTI and EVAL on the master');
    assert.equal(await calls(m1, 'set'), 1);
    assert.equal(await calls(m1, 'eval'), 1);
    assert.equal(await calls(m1, 'mget') + (await calls(m1, 'exists')) + (await calls(m1, 'eval_ro')), 0);
    // Group 2: GET×2, MGET and EXISTS on its replica, nothing read on its master.
    assert.equal(await calls(r2, 'get'), 2);
    assert.equal(await calls(r2, 'mget'), 1);
    assert.equal(await calls(m2, 'get') + (await calls(m2, 'mget')) + (await calls(m2, 'exists')), 0);
  });

  test('spreads reads over the healthy replicas of a group (round robin)', async () => {
    const c = client({ readFrom: 'replicaPreferred' });
    await healthy(c, 3);
    const [r1a, r1b] = [to(replicas1[0]!), to(replicas1[1]!)];
    const k = keyIn(c, 1, key);
    await resetStats(r1a, r1b);
    for (let i = 0; i < 10; i++) await c.get(k);
    assert.equal(await calls(r1a, 'get'), 5);
    assert.equal(await calls(r1b, 'get'), 5);
  });

  test('blocking reads and keyless reads stay on masters', async () => {
    const c = client({ readFrom: 'replica' });
    await healthy(c, 3);
    const [m1, r1a, r1b] = [to(masters[0]!), to(replicas1[0]!), to(replicas1[1]!)];
    const s = keyIn(c, 1, key);
    await c.xadd(s, '*', 'f', 'v');
    await resetStats(m1, r1a, r1b);
    const read = await c.xread('COUNT', 1, 'STREAMS', s, '0');
    assert.equal(read?.[0]?.[0], s);
    assert.equal(await calls(m1, 'xread'), 1);
    await c.randomkey();
    assert.equal((await calls(r1a, 'xread')) + (await calls(r1b, 'xread')) + (await calls(r1a, 'randomkey')) + (await calls(r1b, 'randomkey')), 0);
  });
});

describe('a function as readFrom', () => {
  test('picks the server per group; the master is a valid answer', async () => {
    const seen: { id: number; healthy: readonly string[] }[] = [];
    const c = client({
      readFrom: (group, healthyReplicas) => {
        seen.push({ id: group.id, healthy: healthyReplicas });
        return group.id === 1 ? (group.replicas[1] ?? group.master) : group.master;
      },
    });
    await healthy(c, 3);
    const [m1, m2, r1a, r1b, r2] = [to(masters[0]!), to(masters[1]!), to(replicas1[0]!), to(replicas1[1]!), to(replica2)];
    const a = keyIn(c, 1, key);
    const b = keyIn(c, 2, key);
    await resetStats(m1, m2, r1a, r1b, r2);
    await c.get(a);
    await c.get(a);
    await c.get(b);
    assert.equal(await calls(r1b, 'get'), 2);
    assert.equal(await calls(r1a, 'get'), 0);
    assert.equal(await calls(m2, 'get'), 1);
    assert.equal(await calls(r2, 'get'), 0);
    assert.deepEqual(seen.find((s) => s.id === 1)?.healthy, replicas1.map((r) => r.address));
  });

  test('an address outside the group, or a throw, rejects the read with an ArgumentError; writes are not asked about', async () => {
    let answer: () => string = () => '10.9.9.9:1';
    const c = client({ readFrom: () => answer() });
    await healthy(c, 3);
    const k = keyIn(c, 1, key);
    assert.equal(await c.set(k, 'x'), 'OK');
    const { error } = await rejection(c.get(k));
    assert.ok(error instanceof ArgumentError, String(error));
    assert.match(error.message, /10\.9\.9\.9:1.*neither its master nor one of its replicas/);
    answer = () => {
      throw new Error('boom');
    };
    const thrown = await rejection(c.get(k));
    assert.ok(thrown.error instanceof ArgumentError);
    assert.match(thrown.error.message, /boom/);
    const [result] = (await c.pipeline().get(k).exec())!;
    assert.ok(result![0] instanceof ArgumentError);
  });
});

describe('bad readFrom options', () => {
  test('are refused with an ArgumentError at construction', () => {
    for (const options of [{ readFrom: 'slave' }, { readFrom: 42 }, { readFrom: 'replica', maxReplicaLagMs: 0 }, { readFrom: 'replica', replicaCheckMs: 1.5 }]) {
      assert.throws(() => new ShardedRedis({ groups, ...options } as unknown as ShardedRedisOptions), ArgumentError, JSON.stringify(options));
    }
  });

  test('fromGroups refuses readFrom other than master: wrapped clients have no replica connections', () => {
    const wrapped = new IORedis({ host: masters[0]!.host, port: masters[0]!.port, lazyConnect: true });
    raw.push(wrapped);
    assert.throws(() => ShardedRedis.fromGroups({ 1: wrapped }, { readFrom: 'replica' } as object), ArgumentError);
    ShardedRedis.fromGroups({ 1: wrapped }, { readFrom: 'master' } as object).disconnect();
  });
});

describe('unhealthy replicas are skipped', () => {
  test('a replica killed during reads: every read answers (from the master), and it serves again once back', async () => {
    const [master] = await startRedisServers(1);
    const replica = await replicaOf(master!);
    const ofGroups: GroupSpec[] = [{ id: 1, master: master!.address, replicas: [replica.address] }];
    const c = client({ readFrom: 'replica' }, ofGroups);
    await healthy(c, 1);
    const m = to(master!);
    const k = key();
    await c.set(k, 'v');
    await replicated(m);
    await resetStats(m);
    const reads: Promise<string | null>[] = [];
    for (let round = 0; round < 40; round++) {
      for (let i = 0; i < 25; i++) reads.push(c.get(k));
      if (round === 10) void replica.kill();
      await sleep(5);
    }
    const answers = await Promise.allSettled(reads);
    const failed = answers.filter((a) => a.status === 'rejected');
    assert.deepEqual(failed, [], 'no read fails');
    assert.ok(answers.every((a) => a.status === 'fulfilled' && a.value === 'v'));
    assert.ok((await calls(m, 'get')) > 0, 'the master served reads');
    assert.equal(c.replicas()[0]!.healthy, false);

    await replica.restart();
    await linkUp(replica);
    await healthy(c, 1);
    const r = to(replica);
    await resetStats(r);
    assert.equal(await c.get(k), 'v');
    assert.equal(await calls(r, 'get'), 1);
  });

  test('a lagging replica (replication paused) is skipped: reads see the master, until it catches up', async () => {
    const [master] = await startRedisServers(1);
    const replica = await replicaOf(master!);
    const ofGroups: GroupSpec[] = [{ id: 1, master: master!.address, replicas: [replica.address] }];
    const c = client({ readFrom: 'replica', maxReplicaLagMs: 300 }, ofGroups);
    await healthy(c, 1);
    const [m, r] = [to(master!), to(replica)];
    const k = key();
    await c.set(k, 'old');
    await replicated(m);
    assert.ok(c.replicas()[0]!.lagMs! <= 300);

    // CLIENT PAUSE WRITE on a replica stops it applying the replication stream (it still answers reads).
    await r.call('CLIENT', 'PAUSE', '2500', 'WRITE');
    await c.set(k, 'new');
    await until(3000, 'the replica judged lagging', () => /lags|behind/.test(c.replicas()[0]!.reason ?? ''), 20);
    assert.equal(c.replicas()[0]!.healthy, false);
    assert.equal(await r.get(k), 'old', 'the replica is behind');
    await resetStats(m, r);
    assert.equal(await c.get(k), 'new');
    assert.equal(await calls(m, 'get'), 1);
    assert.equal(await calls(r, 'get'), 0);

    await healthy(c, 1);
    assert.equal(await r.get(k), 'new');
    await resetStats(r);
    assert.equal(await c.get(k), 'new');
    assert.equal(await calls(r, 'get'), 1);
  });

  test('a detached replica (REPLICAOF NO ONE) is skipped', async () => {
    const [master] = await startRedisServers(1);
    const replica = await replicaOf(master!);
    const ofGroups: GroupSpec[] = [{ id: 1, master: master!.address, replicas: [replica.address] }];
    const c = client({ readFrom: 'replicaPreferred' }, ofGroups);
    await healthy(c, 1);
    const [m, r] = [to(master!), to(replica)];
    await r.replicaof('NO', 'ONE');
    await until(3000, 'the detached replica skipped', () => !c.replicas()[0]!.healthy, 20);
    assert.match(c.replicas()[0]!.reason!, /not a replica/);
    const k = key();
    await c.set(k, 'only-on-master');
    await resetStats(m, r);
    assert.equal(await c.get(k), 'only-on-master');
    assert.equal(await calls(r, 'get'), 0);
  });
});

describe('following a coordinator', () => {
  /** Slot `slot` owned by `owner`, the others by group 2. */
  function ownedBy(slot: number, owner: number): SlotRange[] {
    const ranges: SlotRange[] = [];
    if (slot > 0) ranges.push({ from: 0, to: slot - 1, group: 2 });
    ranges.push({ from: slot, to: slot, group: owner });
    if (slot < 1023) ranges.push({ from: slot + 1, to: 1023, group: 2 });
    return ranges;
  }

  function follower(cluster: string): ShardedRedis {
    const c = new ShardedRedis({ coordinator: `redis://${coordinatorServer.address}`, cluster, refreshMs: 100, leaseMs: 3000, readFrom: 'replica', replicaCheckMs: 50 });
    c.on('error', () => {});
    made.push(c);
    return c;
  }

  test('slots in any migration state read the master; stable slots read replicas', async () => {
    const coordinator = to(coordinatorServer);
    const cluster = uniqueCluster('replicas');
    const slot = 77;
    let tag = '';
    for (let i = 0; slotOf(tag) !== slot; i++) tag = `r${i}`;
    const moving = `{${tag}}:k`;
    await writeTable(coordinator, cluster, 1, { groups, slots: ownedBy(slot, 1) });
    const c = follower(cluster);
    await c.connect();
    await healthy(c, 3);
    const [m1, r1a, r1b] = [to(masters[0]!), to(replicas1[0]!), to(replicas1[1]!)];
    await c.set(moving, 'v');
    await replicated(m1, 2);
    const replicaGets = async () => (await calls(r1a, 'get')) + (await calls(r1b, 'get'));

    await resetStats(m1, r1a, r1b);
    assert.equal(await c.get(moving), 'v');
    assert.equal(await replicaGets(), 1, 'stable: a replica reads');

    // pending: routed as before, but read on the master.
    await writeTable(coordinator, cluster, 2, { groups, slots: ownedBy(slot, 1), migrations: [{ slots: [[slot, slot]], from: 1, to: 2, state: 'pending' }] });
    await until(3000, 'version 2 applied', () => c.slotTable.version === 2);
    await resetStats(m1, r1a, r1b);
    assert.equal(await c.get(moving), 'v');
    assert.deepEqual(await c.pipeline().get(moving).exec(), [[null, 'v']]);
    assert.equal(await replicaGets(), 0, 'pending: no replica read');
    assert.equal(await calls(m1, 'get'), 2, 'pending: the master reads');

    // migrating: the key is moved to the target's master and read there.
    const [m2, r2] = [to(masters[1]!), to(replica2)];
    await writeTable(coordinator, cluster, 3, { groups, slots: ownedBy(slot, 1), migrations: [{ slots: [[slot, slot]], from: 1, to: 2, state: 'migrating' }] });
    await until(3000, 'version 3 applied', () => c.slotTable.version === 3);
    await resetStats(m1, m2, r1a, r1b, r2);
    assert.equal(await c.get(moving), 'v');
    assert.equal((await replicaGets()) + (await calls(r2, 'get')), 0, 'migrating: no replica read');
    assert.equal(await calls(m2, 'get'), 1, 'migrating: the target master reads');

    // stable on the target: its replica reads again.
    await writeTable(coordinator, cluster, 4, { groups, slots: ownedBy(slot, 2) });
    await until(3000, 'version 4 applied', () => c.slotTable.version === 4);
    await replicated(m2);
    await resetStats(m2, r2);
    assert.equal(await c.get(moving), 'v');
    assert.equal(await calls(r2, 'get'), 1, 'stable again: the replica reads');
    assert.equal(await calls(m2, 'get'), 0);
  });

  test('replicas added to and removed from the table are connected and closed', async () => {
    const coordinator = to(coordinatorServer);
    const cluster = uniqueCluster('replicas');
    const bare: MasterGroupSpec[] = groups.map((g) => ({ id: g.id, master: g.master! }));
    await writeTable(coordinator, cluster, 1, { groups: bare });
    const c = follower(cluster);
    await c.connect();
    assert.deepEqual(c.replicas(), []);
    const named = new RegExp(`name=shardis:${c.clientId}\\b`);
    const r2 = to(replica2);
    assert.doesNotMatch(await r2.client('LIST') as string, named);

    await writeTable(coordinator, cluster, 2, { groups: [bare[0]!, { ...bare[1]!, replicas: [replica2.address] }] });
    await until(3000, 'version 2 applied', () => c.slotTable.version === 2);
    await healthy(c, 1);
    assert.equal(c.replicas()[0]!.address, replica2.address);
    assert.match(await r2.client('LIST') as string, named);

    await writeTable(coordinator, cluster, 3, { groups: bare });
    await until(3000, 'version 3 applied', () => c.slotTable.version === 3);
    assert.deepEqual(c.replicas(), []);
    await until(3000, 'the replica connection closed', async () => !named.test(await r2.client('LIST') as string), 50);
  });
});
