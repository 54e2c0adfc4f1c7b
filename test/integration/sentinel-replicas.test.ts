// Reads from the replicas of a Sentinel-named group (DESIGN §3.6, §6), on
// real processes: 3 sentinels (quorum 2) watch one master with 2 replicas.
// The table lists no replica: shardis asks the sentinels (SENTINEL REPLICAS)
// and judges each replica itself, as it does listed ones. A replica that is
// down is skipped (reads answer from the master); after a failover the
// promoted replica is the master and never read as a replica, and the old
// master serves reads again once Sentinel made it a replica. Which server
// answered is read from each server's INFO commandstats.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Redis } from 'ioredis';
import { ShardedRedis, type GroupSpec, type ShardedRedisOptions, type ReadFromGroup } from '../../src/index.js';
import { findFreePort, keygen, startSentinels, stopAllRedisServers, type RedisServer, type SentinelSet } from '../../src/testing/index.js';
import { direct, sleep, until, within } from '../fixtures/integration-kit.js';

const key = keygen('sentinel-replicas');
const GROUPS: GroupSpec[] = [{ id: 1, sentinel: { name: 'g1' } }];

let set: SentinelSet;
/** Every server of g1 (roles change with a failover). */
let servers: RedisServer[] = [];
const made: ShardedRedis[] = [];
const raw: Redis[] = [];

before(async () => {
  set = await startSentinels({ masters: ['g1'], replicas: 2, sentinels: 3, quorum: 2, downAfterMs: 1000, failoverTimeoutMs: 5000 });
  servers = [set.group('g1').master, ...set.group('g1').replicas];
});

after(async () => {
  await Promise.all(made.map((c) => c.quit().catch(() => c.disconnect())));
  for (const r of raw) r.disconnect();
  await set?.stop();
  await stopAllRedisServers();
});

function client(options: Partial<ShardedRedisOptions> = {}): ShardedRedis {
  const c = new ShardedRedis({ groups: GROUPS, sentinels: [...set.addresses], replicaCheckMs: 50, ...options } as ShardedRedisOptions);
  c.on('error', () => {});
  made.push(c);
  return c;
}

async function close(c: ShardedRedis): Promise<void> {
  made.splice(made.indexOf(c), 1);
  await c.quit().catch(() => c.disconnect());
}

function to(server: RedisServer): Redis {
  const redis = direct(server, { retryStrategy: () => 100 });
  raw.push(redis);
  return redis;
}

function serverAt(address: string): RedisServer {
  const server = servers.find((s) => s.address === address);
  if (server === undefined) throw new Error(`no server of g1 at ${address}`);
  return server;
}

/** The servers of g1 that are replicas now (by the sentinels' current master), sorted by address. */
async function currentReplicas(): Promise<RedisServer[]> {
  const master = await set.masterAddress('g1');
  return servers.filter((s) => s.address !== master).sort((a, b) => a.address.localeCompare(b.address));
}

/** Waits until `c` reports exactly `addresses` as its replicas, all healthy. */
async function healthyReplicas(c: ShardedRedis, addresses: readonly string[], ms = 20_000): Promise<void> {
  const wanted = [...addresses].sort().join(',');
  await until(ms, `replicas ${wanted} found and healthy (have ${JSON.stringify(c.replicas())})`, () => {
    const all = c.replicas();
    return all.map((r) => r.address).sort().join(',') === wanted && all.every((r) => r.healthy);
  }, 20);
}

/** How many times `command` ran on the server since the last CONFIG RESETSTAT. */
async function calls(redis: Redis, command: string): Promise<number> {
  const match = new RegExp(`^cmdstat_${command}:calls=(\\d+)`, 'm').exec(await redis.info('commandstats'));
  return match ? Number(match[1]) : 0;
}

async function resetStats(...redis: Redis[]): Promise<void> {
  await Promise.all(redis.map((r) => r.config('RESETSTAT')));
}

/** Writes `value` at a fresh key through `c` and waits until every replica has it. */
async function written(c: ShardedRedis, value: string, replicas: number): Promise<string> {
  const k = key();
  await c.set(k, value);
  const acked = Number(await c.group(1).call('WAIT', String(replicas), '5000'));
  assert.equal(acked, replicas, `${replicas} replicas have the write`);
  return k;
}

describe('readFrom with a Sentinel-named group', { timeout: 180_000 }, () => {
  test("'replica': reads reach the replicas the sentinels report (round robin), never the master", { timeout: 60_000 }, async () => {
    const c = client({ readFrom: 'replica' });
    await within(20_000, 'connect', c.connect());
    const replicas = await currentReplicas();
    await healthyReplicas(c, replicas.map((r) => r.address));
    const master = to(serverAt(await set.masterAddress('g1')));
    const [r0, r1] = replicas.map(to);
    const k = await written(c, 'v', 2);
    await resetStats(master, r0!, r1!);
    for (let i = 0; i < 6; i++) assert.equal(await c.get(k), 'v');
    assert.deepEqual(await c.mget(k, k), ['v', 'v']);
    assert.equal(await calls(r0!, 'get'), 3);
    assert.equal(await calls(r1!, 'get'), 3);
    assert.equal((await calls(r0!, 'mget')) + (await calls(r1!, 'mget')), 1);
    assert.equal((await calls(master, 'get')) + (await calls(master, 'mget')), 0, 'the master read nothing');
    // Writes still go to the master.
    await c.set(k, 'w');
    assert.equal(await calls(master, 'set'), 1);
    // The replica connections are shardis's own, named like the master's.
    assert.match((await r0!.client('LIST')) as string, new RegExp(`name=shardis:${c.clientId}\\b`));
    await close(c);
  });

  test('a readFrom function gets the discovered addresses like listed ones; the master is a valid answer; a dead sentinel is passed over', { timeout: 60_000 }, async () => {
    const dead = `127.0.0.1:${await findFreePort()}`;
    const seen: { group: ReadFromGroup; healthy: readonly string[] }[] = [];
    let pick: (group: ReadFromGroup, healthy: readonly string[]) => string = (_group, healthy) => healthy[1]!;
    const c = client({
      sentinels: [dead, ...set.addresses],
      readFrom: (group, healthy) => {
        seen.push({ group, healthy });
        return pick(group, healthy);
      },
    });
    await within(20_000, 'connect', c.connect());
    const replicas = await currentReplicas();
    const addresses = replicas.map((r) => r.address);
    await healthyReplicas(c, addresses);
    const masterAddress = await set.masterAddress('g1');
    const master = to(serverAt(masterAddress));
    const [r0, r1] = replicas.map(to);
    const k = await written(c, 'f', 2);
    await resetStats(master, r0!, r1!);
    assert.equal(await c.get(k), 'f');
    const last = seen[seen.length - 1]!;
    assert.equal(last.group.id, 1);
    assert.equal(last.group.master, masterAddress);
    assert.deepEqual(last.group.replicas, addresses);
    assert.deepEqual(last.healthy, addresses);
    assert.equal(await calls(r1!, 'get'), 1, 'the replica the function chose');
    assert.equal((await calls(r0!, 'get')) + (await calls(master, 'get')), 0);
    pick = (group) => group.master;
    assert.equal(await c.get(k), 'f');
    assert.equal(await calls(master, 'get'), 1);
    await close(c);
  });

  test('replicas killed during reads: every read answers (from the master); dropped once the sentinels see them down, found again once back', { timeout: 90_000 }, async (t) => {
    const c = client({ readFrom: 'replica' });
    await within(20_000, 'connect', c.connect());
    const replicas = await currentReplicas();
    await healthyReplicas(c, replicas.map((r) => r.address));
    const master = to(serverAt(await set.masterAddress('g1')));
    const k = await written(c, 'v', 2);
    await resetStats(master);
    const reads: Promise<string | null>[] = [];
    for (let round = 0; round < 60; round++) {
      for (let i = 0; i < 20; i++) reads.push(c.get(k));
      if (round === 10) void replicas[0]!.kill();
      if (round === 30) void replicas[1]!.kill();
      await sleep(5);
    }
    const answers = await Promise.allSettled(reads);
    assert.deepEqual(answers.filter((a) => a.status === 'rejected'), [], 'no read fails');
    assert.ok(answers.every((a) => a.status === 'fulfilled' && a.value === 'v'));
    assert.ok((await calls(master, 'get')) > 0, 'the master served reads');
    assert.ok(c.replicas().every((r) => !r.healthy), 'both replicas skipped');
    await resetStats(master);
    assert.equal(await c.get(k), 'v');
    assert.equal(await calls(master, 'get'), 1, 'with no healthy replica, reads go to the master');

    // Once the sentinels flag them down, their connections are closed (no reconnecting to them forever).
    const downAt = performance.now();
    await until(20_000, 'the dead replicas dropped', () => c.replicas().length === 0, 50);
    t.diagnostic(`dead replicas dropped ${Math.round(performance.now() - downAt)} ms after the reads`);

    await Promise.all(replicas.map((r) => r.restart()));
    const backAt = performance.now();
    await healthyReplicas(c, replicas.map((r) => r.address), 30_000);
    t.diagnostic(`restarted replicas found and healthy after ${Math.round(performance.now() - backAt)} ms`);
    const [r0, r1] = replicas.map(to);
    await resetStats(master, r0!, r1!);
    assert.equal(await c.get(k), 'v');
    assert.equal(await c.get(k), 'v');
    assert.equal((await calls(r0!, 'get')) + (await calls(r1!, 'get')), 2);
    assert.equal(await calls(master, 'get'), 0);
    await close(c);
  });

  test('SIGKILL of the master: reads keep answering; the promoted replica is the master, never a replica; the old master serves reads once it is a replica', { timeout: 120_000 }, async (t) => {
    const c = client({ readFrom: 'replica' });
    // Readers, one read at a time each, all along the failover; stopped however the test ends.
    let running = true;
    let watch: NodeJS.Timeout | undefined;
    let loops: Promise<void>[] = [];
    try {
      await within(20_000, 'connect', c.connect());
      await healthyReplicas(c, (await currentReplicas()).map((r) => r.address));
      const k = await written(c, 'before', 2);
      const oldAddress = await set.masterAddress('g1');
      const old = serverAt(oldAddress);

      const outcomes: { at: number; ok: boolean; error?: string }[] = [];
      loops = Array.from({ length: 4 }, async () => {
        while (running) {
          try {
            const value = await c.get(k);
            outcomes.push({ at: performance.now(), ok: value === 'before', ...(value === 'before' ? {} : { error: `read ${value}` }) });
          } catch (error) {
            outcomes.push({ at: performance.now(), ok: false, error: (error as Error).message });
            await sleep(20);
          }
          await sleep(2);
        }
      });
      // What the client reports as its replicas, all along.
      const snapshots: { at: number; replicas: { address: string; healthy: boolean }[] }[] = [];
      watch = setInterval(() => snapshots.push({ at: performance.now(), replicas: c.replicas() }), 20);
      await sleep(300);
      const killedAt = performance.now();
      await old.kill();
      const promoted = await set.waitForFailover('g1', oldAddress, 60_000);
      const failedOverAt = performance.now();
      await old.restart();
      const restartedAt = performance.now();
      const oldRedis = to(old);
      await until(60_000, 'the old master is a replica with its link up', async () => /master_link_status:up/.test(await oldRedis.info('replication')), 50);
      const rejoinedAt = performance.now();
      // The old master comes back, Sentinel makes it a replica of the promoted one, and
      // shardis finds it. On a loaded machine the sentinels may fail over once more:
      // the replicas to find are those of whichever master they name now.
      let seen = '';
      await until(60_000, "the client's replicas are those of the current master, all healthy", async () => {
        const wanted = (await currentReplicas()).map((r) => r.address).join(',');
        const all = c.replicas();
        seen = `want ${wanted}, have ${JSON.stringify(all)}`;
        return all.map((r) => r.address).sort().join(',') === wanted && all.every((r) => r.healthy);
      }, 20).catch((error: Error) => {
        throw new Error(`${error.message} (${seen})`);
      });
      const settledAt = performance.now();
      const final = await set.waitForFailover('g1', '', 10_000);
      running = false;
      clearInterval(watch);
      await Promise.all(loops);

      const failed = outcomes.filter((o) => !o.ok);
      const sincePromotion = snapshots.filter((s) => s.at >= failedOverAt);
      const promotedListed = sincePromotion.filter((s) => s.replicas.some((r) => r.address === promoted));
      const droppedAt = promotedListed.length === 0 ? failedOverAt : promotedListed[promotedListed.length - 1]!.at;
      const after = outcomes.filter((o) => o.at > settledAt - 1000);
      t.diagnostic(
        `failover to ${promoted} ${Math.round(failedOverAt - killedAt)} ms after the kill` + (final === promoted ? '' : `, later to ${final}`) +
          `; old master restarted, made a replica by Sentinel ${Math.round(rejoinedAt - restartedAt)} ms later, read from ${Math.round(settledAt - rejoinedAt)} ms after that; ` +
          `the promoted replica dropped from the replicas ${Math.round(droppedAt - failedOverAt)} ms after the failover; ${outcomes.length} reads, ${failed.length} failed` +
          (failed.length > 0 ? ` (first: ${failed[0]!.error} at +${Math.round(failed[0]!.at - killedAt)} ms)` : ''),
      );
      assert.ok(outcomes.some((o) => o.ok && o.at > failedOverAt), 'reads answer after the failover');
      assert.deepEqual(failed, [], 'no read failed or read a wrong value');
      assert.ok(after.length > 0);
      assert.ok(!c.replicas().some((r) => r.address === final), 'the master is not among the replicas');
      if (final === promoted) {
        // (After a second failover the first promoted server is rightly a replica again.)
        assert.deepEqual(sincePromotion.filter((s) => s.replicas.some((r) => r.address === promoted && r.healthy)), [], 'the promoted replica is never a healthy replica once promoted');
        assert.ok(droppedAt - failedOverAt < 10_000, 'the sentinels are asked again soon after the failover');
      }

      const newMaster = to(serverAt(final));
      const readers = servers.filter((s) => s.address !== final).map(to);
      await resetStats(newMaster, ...readers);
      for (let i = 0; i < 6; i++) assert.equal(await c.get(k), 'before');
      const replicaGets = await Promise.all(readers.map((r) => calls(r, 'get')));
      assert.deepEqual(replicaGets, [3, 3], 'round robin over the two replicas');
      assert.equal(await calls(newMaster, 'get'), 0, 'the new master read nothing');
      // Writes go to the new master.
      await c.set(k, 'after');
      assert.equal(await calls(newMaster, 'set'), 1);
    } finally {
      running = false;
      if (watch) clearInterval(watch);
      await Promise.all(loops);
      await close(c);
    }
  });
});
