// A live migration whose source or target group fails over mid-way (issue 5,
// point 2), on real processes: two Sentinel-named groups (a master and one
// replica each, 3 sentinels, quorum 2), a coordinator, two clients following
// it. The clients INCR counters in the moving slots and elsewhere, each INCR
// followed by WAIT 1 (the README's safety option); the migrator moves ~30,000
// keys over 256 slots. While keys are moving, the source's (or the target's)
// master is SIGKILLed right after its replica lost its link (a replica
// lagging at the moment of the crash: what asynchronous replication allows).
// Counters set to 1000 beforehand are first touched by a client inside that
// window, so the client moves them itself (its own MIGRATE). The migration
// must complete by itself; every counter must hold at least its acknowledged
// increments (and at most its attempts); every key loaded before the
// migration must be on the target; no key of the moved slots may be left on
// the source.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import IORedis, { type Redis } from 'ioredis';
import { ShardedRedis, slotOf } from '../../src/index.js';
import { ShardisAdmin, type GroupSpec, type MigrationProgress, type MigrationReport } from '../../src/admin/index.js';
import { RedisServer, startSentinels, stopAllRedisServers, type SentinelSet } from '../../src/testing/index.js';
import { respCommand } from '../../src/testing/resp.js';
import { sleep, until, within } from '../fixtures/integration-kit.js';
import { uniqueCluster } from '../fixtures/coordinator-kit.js';

const GROUPS: GroupSpec[] = [
  { id: 1, sentinel: { name: 'g1' } },
  { id: 2, sentinel: { name: 'g2' } },
];
/** Group 1 owns 0..511, group 2 512..1023; slots 0..255 move from group 1 to group 2. */
const MOVING = { from: 0, to: 255 } as const;
const FILL_PER_SLOT = 120;
/** Keys moved before the crash. */
const KILL_AFTER_MOVED = 4000;

let set: SentinelSet;
let coordinatorServer: RedisServer;
const closers: (() => Promise<unknown>)[] = [];

before(async () => {
  [set, coordinatorServer] = await Promise.all([
    startSentinels({ masters: ['g1', 'g2'], replicas: 1, sentinels: 3, quorum: 2, downAfterMs: 1000, failoverTimeoutMs: 5000 }),
    RedisServer.start(),
  ]);
});

after(async () => {
  for (const close of closers.splice(0).reverse()) await close().catch(() => {});
  await stopAllRedisServers();
});

function connectTo(address: string): Redis {
  const port = Number(address.slice(address.lastIndexOf(':') + 1));
  const redis = new IORedis({ host: '127.0.0.1', port, retryStrategy: () => null, maxRetriesPerRequest: 0 });
  redis.on('error', () => {});
  closers.push(() => redis.quit());
  return redis;
}

/** One hash tag per slot in from..to (tags[i] lands in slot from + i). */
function tagsIn(from: number, to: number): string[] {
  const tags = new Array<string>(to - from + 1);
  let found = 0;
  for (let i = 0; found < tags.length; i++) {
    const slot = slotOf(`t${i}`);
    if (slot >= from && slot <= to && tags[slot - from] === undefined) {
      tags[slot - from] = `t${i}`;
      found++;
    }
  }
  return tags;
}

/** Keys `{tag}:<prefix>:<n>`, `perSlot` in each slot of from..to, written to `redis` with the value `v:<key>`, then WAITed for. */
async function fill(redis: Redis, from: number, to: number, perSlot: number, prefix: string): Promise<string[]> {
  const keys = tagsIn(from, to).flatMap((tag) => Array.from({ length: perSlot }, (_, n) => `{${tag}}:${prefix}:${n}`));
  for (let i = 0; i < keys.length; i += 2000) {
    const pipeline = redis.pipeline();
    for (const key of keys.slice(i, i + 2000)) pipeline.set(key, `v:${key}`);
    await pipeline.exec();
  }
  assert.equal(Number(await redis.call('WAIT', '1', '5000')), 1, 'the replica has the loaded keys');
  return keys;
}

interface Tally {
  /** INCRs sent. */
  attempted: number;
  /** INCRs answered, then WAIT 1 answered 1 (acknowledged). */
  acked: number;
}

/**
 * Each client runs `loops` loops of INCR + WAIT 1 (fan-out: WAIT on every
 * group's connection, answering the minimum, so the INCR is covered wherever
 * it ran, on the source or the target) over `counters`, until stopped.
 */
function counterLoad(clients: readonly ShardedRedis[], counters: readonly string[], loops: number) {
  const tally = new Map<string, Tally>(counters.map((c) => [c, { attempted: 0, acked: 0 }]));
  const stats = { failed: 0, unconfirmed: 0, acked: 0, ackedDuringMove: 0 };
  let moving = false;
  let running = true;
  let n = 0;
  const runs = clients.flatMap((client) =>
    Array.from({ length: loops }, async () => {
      while (running) {
        const counter = counters[n++ % counters.length]!;
        const t = tally.get(counter)!;
        t.attempted++;
        try {
          await client.incr(counter);
        } catch {
          stats.failed++;
          await sleep(20);
          continue;
        }
        const replicas = await client.call('WAIT', '1', '500').then(Number, () => 0);
        if (replicas >= 1) {
          t.acked++;
          stats.acked++;
          if (moving) stats.ackedDuringMove++;
        } else {
          stats.unconfirmed++;
        }
      }
    }),
  );
  return {
    tally,
    stats,
    movingNow: (value: boolean) => (moving = value),
    stop: async () => {
      running = false;
      await within(15_000, 'the INCR loops to end', Promise.all(runs));
    },
  };
}

/** The keys of slots from..to on the server `redis` is connected to. */
async function keysInSlots(redis: Redis, from: number, to: number): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'COUNT', 2000);
    for (const key of keys) if (slotOf(key) >= from && slotOf(key) <= to) found.push(key);
    cursor = next;
  } while (cursor !== '0');
  return found;
}

async function replicaLinkDown(port: number): Promise<boolean> {
  const info = await respCommand(port, ['INFO', 'replication']).catch(() => '');
  return !/^master_link_status:up\r?$/m.test(String(info));
}

/**
 * SIGKILLs `name`'s master while its replica is cut off from it: the master
 * refuses PSYNC and SYNC (ACL) and drops its replica, takes 150 ms of writes
 * the replica does not get (`duringLag` starts some), then is killed. Answers the old master's address
 * and its server.
 */
async function crashWithLaggingReplica(name: string, duringLag: () => void): Promise<{ oldAddress: string; server: RedisServer }> {
  const oldAddress = await set.masterAddress(name);
  const servers = [set.group(name).master, ...set.group(name).replicas];
  const master = servers.find((s) => s.address === oldAddress)!;
  const replica = servers.find((s) => s !== master)!;
  await respCommand(master.port, ['ACL', 'SETUSER', 'default', '-psync', '-sync']);
  await respCommand(master.port, ['CLIENT', 'KILL', 'TYPE', 'replica']);
  await until(1000, `the replica of ${name} sees its link down`, () => replicaLinkDown(replica.port), 2);
  duringLag();
  await sleep(150);
  await master.kill();
  return { oldAddress, server: master };
}

/**
 * Starts the killed master again, as a replica of the promoted one: what
 * Sentinel does by itself 10–20 s after it comes back. Restarted as it was,
 * it would be an empty master until then (no persistence here), which a
 * second failover on a loaded machine could pick, wiping the group.
 */
async function rejoinAsReplica(killed: RedisServer, promoted: string): Promise<RedisServer> {
  const at = promoted.lastIndexOf(':');
  return RedisServer.start({ port: killed.port, args: ['--replicaof', promoted.slice(0, at), promoted.slice(at + 1)] });
}

async function failoverMidMigration(victim: 'source' | 'target', diagnostic: (message: string) => void): Promise<void> {
  const started = performance.now();
  const elapsed = () => `${((performance.now() - started) / 1000).toFixed(1)} s`;
  const cluster = uniqueCluster('mfo');
  const admin = new ShardisAdmin({ coordinator: `redis://${coordinatorServer.address}`, cluster });
  closers.push(() => admin.close());
  await admin.initCluster({ groups: GROUPS, sentinels: [...set.addresses], slots: [{ from: 0, to: 511, group: 1 }, { from: 512, to: 1023, group: 2 }] });

  // Empty groups (an earlier test's keys), then the keys to move and some that stay.
  for (const name of ['g1', 'g2']) {
    const redis = connectTo(await set.masterAddress(name));
    await redis.flushall();
    assert.equal(Number(await redis.call('WAIT', '1', '5000')), 1);
  }
  const sourceMaster = connectTo(await set.masterAddress('g1'));
  const moving = await fill(sourceMaster, MOVING.from, MOVING.to, FILL_PER_SLOT, 'f');
  const staying = await fill(sourceMaster, MOVING.to + 1, 511, 8, 's');
  // Counters at 1000 (acknowledged), first touched by a client while the replica lags: the client moves them itself.
  const late = tagsIn(MOVING.from, MOVING.to).map((tag) => `{${tag}}:late`);
  await sourceMaster.mset(...late.flatMap((key) => [key, '1000']));
  assert.equal(Number(await sourceMaster.call('WAIT', '1', '5000')), 1);

  const counters = [
    ...tagsIn(MOVING.from, MOVING.to).filter((_, i) => i % 8 === 0).map((tag) => `{${tag}}:ctr`), // 32 moving
    ...tagsIn(300, 307).map((tag) => `{${tag}}:ctr`), // 8 staying on group 1
    ...tagsIn(700, 707).map((tag) => `{${tag}}:ctr`), // 8 on group 2
  ];
  const clients = [0, 1].map(() => {
    const client = new ShardedRedis({ coordinator: `redis://${coordinatorServer.address}`, cluster, refreshMs: 200, leaseMs: 5000, redisOptions: { commandTimeout: 3000 } });
    client.on('error', () => {});
    closers.push(() => client.quit());
    return client;
  });
  await within(20_000, 'the clients connect', Promise.all(clients.map((c) => c.connect())));
  const load = counterLoad(clients, counters, 4);
  closers.push(() => load.stop());
  await sleep(500);

  // The migration, and the crash once it has moved KILL_AFTER_MOVED keys.
  const victimName = victim === 'source' ? 'g1' : 'g2';
  let progress: MigrationProgress | null = null;
  let reached: () => void = () => {};
  const killPoint = new Promise<void>((resolve) => (reached = resolve));
  const migration = admin.migrate({
    slots: [MOVING],
    to: 2,
    batchMs: 2,
    pauseMs: 3,
    onProgress: (p) => {
      progress = p;
      if (p.phase === 'migrating') load.movingNow(true);
      if (p.phase === 'migrating' && p.moved >= KILL_AFTER_MOVED) reached();
    },
  });
  const outcome = migration.then(
    (report) => ({ report, error: null }),
    (error: Error) => ({ report: null, error }),
  );
  await within(30_000, `the migration moves ${KILL_AFTER_MOVED} keys`, Promise.race([killPoint, outcome.then(() => undefined)]));
  const early = await Promise.race([outcome, sleep(0).then(() => null)]);
  if (early !== null) throw early.error ?? new Error('the migration ended before the crash');
  assert.equal(progress!.phase, 'migrating', `the migration is still moving keys when ${victimName} is crashed (it is ${progress!.phase}, ${progress!.moved} moved)`);
  let lateTouches: Promise<unknown> = Promise.resolve();
  const { oldAddress, server } = await crashWithLaggingReplica(victimName, () => {
    lateTouches = Promise.allSettled(late.map((key) => clients[0]!.incr(key)));
  });
  diagnostic(`${elapsed()}: ${victim} (${victimName}, ${oldAddress}) SIGKILLed with ${progress!.moved} of ${moving.length} keys moved`);
  const promoted = await set.waitForFailover(victimName, oldAddress, 30_000);
  diagnostic(`${elapsed()}: ${victimName} failed over to ${promoted}`);
  await rejoinAsReplica(server, promoted);

  const { report, error } = await within(60_000, 'the migration ends', outcome);
  diagnostic(`${elapsed()}: migration ${error === null ? 'completed' : `failed: ${error.message}`}`);
  if (error !== null) throw error;
  const done = report as MigrationReport;
  await lateTouches;
  load.movingNow(false);
  await sleep(300);
  await load.stop();
  diagnostic(
    `moved ${done.moved}, busy ${done.busy}, verify passes ${done.verifyPasses}, replicas waited for ${done.waitReplicas}, ${done.ms} ms; INCRs: ${load.stats.acked} acknowledged ` +
      `(${load.stats.ackedDuringMove} while keys moved), ${load.stats.unconfirmed} not confirmed by WAIT, ${load.stats.failed} failed`,
  );

  // The table: the slots are group 2's, no migration left.
  const table = (await admin.readTable())!;
  assert.deepEqual(table.migrations, []);
  for (let slot = MOVING.from; slot <= MOVING.to; slot++) assert.equal(table.owner[slot], 2, `slot ${slot} is group 2's`);

  const g1 = connectTo(await set.masterAddress('g1'));
  const g2 = connectTo(await set.masterAddress('g2'));
  // Nothing of the moved slots is left on the source.
  const left = await keysInSlots(g1, MOVING.from, MOVING.to);
  assert.deepEqual(left.slice(0, 10), [], `${left.length} keys of the moved slots are left on the source`);
  // Every key loaded before the migration (acknowledged by WAIT) is where its slot is owned.
  for (const [keys, redis, where] of [[moving, g2, 'the target'], [staying, g1, 'the source']] as const) {
    const missing: string[] = [];
    for (let i = 0; i < keys.length; i += 2000) {
      const part = keys.slice(i, i + 2000);
      const values = await redis.mget(...part);
      part.forEach((key, j) => {
        if (values[j] !== `v:${key}`) missing.push(key);
      });
    }
    assert.deepEqual(missing.slice(0, 10), [], `${missing.length} of ${keys.length} loaded keys are missing on ${where}`);
  }
  // Every counter holds its acknowledged increments, and no more than were sent.
  const wrong: string[] = [];
  for (const [counter, t] of load.tally) {
    const owner = table.owner[slotOf(counter)] === 1 ? g1 : g2;
    const value = Number(await owner.get(counter));
    if (value < t.acked || value > t.attempted) wrong.push(`${counter}: ${value}, acknowledged ${t.acked}, sent ${t.attempted}`);
  }
  const lateValues = await g2.mget(...late);
  late.forEach((counter, i) => {
    const value = Number(lateValues[i]);
    if (value !== 1000 && value !== 1001) wrong.push(`${counter}: ${lateValues[i]}, acknowledged 1000, sent 1 INCR`);
  });
  assert.deepEqual(wrong, [], 'counters hold their acknowledged increments');
  assert.ok(load.stats.ackedDuringMove > 0, 'INCRs were acknowledged while keys moved');

  // The old master is a replica again (the next test needs every group replicated).
  await until(30_000, `${oldAddress} rejoins ${victimName} as a replica`, async () => {
    const role = await respCommand(server.port, ['ROLE']).catch(() => null);
    return Array.isArray(role) && role[0] === 'slave' && role[3] === 'connected';
  }, 100);
  diagnostic(`${elapsed()}: ${oldAddress} is a replica again`);
}

describe('a migration whose source or target fails over mid-way', { timeout: 180_000 }, () => {
  test('the source master is SIGKILLed while keys move: the migration completes, no acknowledged write is lost', { timeout: 120_000 }, async (t) => {
    await failoverMidMigration('source', (m) => t.diagnostic(m));
  });

  test('the target master is SIGKILLed while keys move: the migration completes, no acknowledged write is lost', { timeout: 120_000 }, async (t) => {
    await failoverMidMigration('target', (m) => t.diagnostic(m));
  });
});
