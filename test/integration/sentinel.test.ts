// High availability with Redis Sentinel (DESIGN §6), on real processes: 3
// sentinels (quorum 2) watch a coordinator and two groups, each a master with
// one replica. Groups are given by their Sentinel master name, so a failover
// needs no table change; the coordinator is given to ioredis as Sentinel
// options. Masters are SIGKILLed under write load.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import IORedis, { type Redis } from 'ioredis';
import { ShardedRedis, TopologyError, slotOf, type GroupSpec } from '../../src/index.js';
import { ShardisAdmin } from '../../src/admin/index.js';
import { askSentinels, connectedPeer, masterResolver } from '../../src/topology/master-address.js';
import { RedisServer, startSentinels, stopAllRedisServers, type SentinelSet } from '../../src/testing/index.js';
import { respCommand } from '../../src/testing/resp.js';
import { sleep, until, within } from '../fixtures/integration-kit.js';
import { uniqueCluster } from '../fixtures/coordinator-kit.js';

let set: SentinelSet;
const closers: (() => Promise<unknown>)[] = [];

const GROUPS: GroupSpec[] = [
  { id: 1, sentinel: { name: 'g1' } },
  { id: 2, sentinel: { name: 'g2' } },
];

before(async () => {
  set = await startSentinels({ masters: ['coord', 'g1', 'g2'], replicas: 1, sentinels: 3, quorum: 2, downAfterMs: 1000, failoverTimeoutMs: 5000 });
});

after(async () => {
  for (const close of closers.splice(0).reverse()) await close().catch(() => {});
  await stopAllRedisServers();
});

function sentinelOptions(): { sentinels: { host: string; port: number }[] } {
  return { sentinels: set.sentinels.map((s) => ({ host: s.host, port: s.port })) };
}

function staticClient(): ShardedRedis {
  const client = new ShardedRedis({ groups: GROUPS, sentinels: [...set.addresses], redisOptions: { commandTimeout: 2000 } });
  client.on('error', () => {});
  closers.push(() => client.quit());
  return client;
}

function directTo(address: string): Redis {
  const port = Number(address.slice(address.lastIndexOf(':') + 1));
  const redis = new IORedis({ host: '127.0.0.1', port, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
  redis.on('error', () => {});
  closers.push(() => redis.quit());
  return redis;
}

/** A hash tag whose slot `group` owns in `client`'s table. */
function tagOf(client: ShardedRedis, group: number, salt: string): string {
  for (let n = 0; ; n++) {
    const tag = `${salt}${n}`;
    if (client.slotTable.owner[slotOf(`{${tag}}`)] === group) return tag;
  }
}

interface WriterStats {
  acked: string[];
  errors: number;
  /** Longest time between two acknowledged writes (ms), from the start. */
  maxGapMs: number;
  firstAckAfter: (t: number) => number | null;
  ackTimes: number[];
}

/**
 * `writers` loops SETting unique keys under `tag` until `stop()`; a write
 * counts as acknowledged when SET answered OK (and, with `waitReplicas`,
 * WAIT on the same connection said a replica has it).
 */
function writeLoad(client: ShardedRedis, group: number, tag: string, writers: number, waitReplicas: boolean): { stats: WriterStats; stop: () => Promise<WriterStats> } {
  let running = true;
  const stats: WriterStats = { acked: [], errors: 0, maxGapMs: 0, ackTimes: [], firstAckAfter: (t) => stats.ackTimes.find((x) => x > t) ?? null };
  let last = performance.now();
  const loops = Array.from({ length: writers }, async (_, w) => {
    for (let seq = 0; running; seq++) {
      const key = `{${tag}}:w${w}:${seq}`;
      try {
        await client.set(key, '1');
        if (waitReplicas) {
          const replicas = Number(await client.group(group).call('WAIT', '1', '1000'));
          if (replicas < 1) throw new Error('WAIT: no replica acknowledged');
        }
        const now = performance.now();
        stats.maxGapMs = Math.max(stats.maxGapMs, now - last);
        last = now;
        stats.ackTimes.push(now);
        stats.acked.push(key);
      } catch {
        stats.errors++;
        await sleep(20);
      }
    }
  });
  return {
    stats,
    async stop() {
      running = false;
      await Promise.all(loops);
      stats.maxGapMs = Math.max(stats.maxGapMs, performance.now() - last);
      return stats;
    },
  };
}

/** The acknowledged keys that `address` (the group's master now) does not have. */
async function lostKeys(address: string, keys: readonly string[]): Promise<string[]> {
  const redis = directTo(address);
  await redis.connect();
  const lost: string[] = [];
  for (let i = 0; i < keys.length; i += 500) {
    const chunk = keys.slice(i, i + 500);
    const pipeline = redis.pipeline();
    for (const key of chunk) pipeline.exists(key);
    const replies = (await pipeline.exec()) ?? [];
    chunk.forEach((key, j) => {
      if (Number(replies[j]?.[1]) !== 1) lost.push(key);
    });
  }
  return lost;
}

/** SIGKILLs `name`'s master under load on it and on `otherGroup`; reports what happened. */
async function killUnderLoad(name: string, group: number, otherGroup: number, waitReplicas: boolean, diagnostic: (m: string) => void): Promise<void> {
  const client = staticClient();
  await within(20_000, 'the client connects through the sentinels', client.connect());
  const victim = set.group(name);
  const oldAddress = await set.masterAddress(name);
  const master = [victim.master, ...victim.replicas].find((s) => s.address === oldAddress)!;
  const hit = writeLoad(client, group, tagOf(client, group, `${name}k`), 4, waitReplicas);
  const other = writeLoad(client, otherGroup, tagOf(client, otherGroup, `${name}o`), 4, waitReplicas);
  // Stopped however the test ends (a failed assertion must not leave them looping).
  closers.push(() => hit.stop(), () => other.stop());
  await sleep(1000);
  const killedAt = performance.now();
  await master.kill();
  const promoted = await set.waitForFailover(name, oldAddress, 60_000);
  const failedOverMs = performance.now() - killedAt;
  // The killed master comes back, and Sentinel makes it a replica of the new one:
  // until then the group has no replica, and WAIT 1 cannot succeed.
  await master.restart();
  // Writes to the group resume on the promoted replica, without any table change.
  // (No write can be acknowledged between the kill and down-after-milliseconds.)
  await until(30_000, `writes to ${name} resume after the failover`, () => hit.stats.firstAckAfter(killedAt + 500) !== null);
  await sleep(1000);
  const hitStats = await hit.stop();
  const otherStats = await other.stop();
  // The master now, as every sentinel names it. Usually the promoted replica;
  // on a loaded machine the sentinels may fail over once more (to the old
  // master, by then its replica): acknowledged writes must be on whichever
  // server is the master now, and the client must be connected to it.
  const final = await set.waitForFailover(name, '', 60_000);
  const lost = await lostKeys(final, hitStats.acked);
  const resumedMs = (hitStats.firstAckAfter(killedAt + 500) ?? NaN) - killedAt;
  diagnostic(
    `${name}${waitReplicas ? ' (WAIT 1 after each write)' : ''}: failover from ${oldAddress} to ${promoted} in ${Math.round(failedOverMs)} ms` +
      `${final === promoted ? '' : `, then to ${final}`}; ` +
      `writes resumed ${Math.round(resumedMs)} ms after the kill; ${hitStats.acked.length} acknowledged writes, ` +
      `${lost.length} of them lost; ${hitStats.errors} failed attempts; other group: ${otherStats.acked.length} writes, ` +
      `${otherStats.errors} errors, longest gap ${Math.round(otherStats.maxGapMs)} ms`,
  );
  await until(10_000, `the group connection follows the master (${final})`, () => connectedPeer(client.group(group))?.port === Number(final.split(':')[1]));
  assert.ok(hitStats.acked.length > 0);
  assert.equal(otherStats.errors, 0, 'writes to the other group never failed');
  assert.ok(otherStats.maxGapMs < 3000, `writes to the other group never stopped (longest gap ${Math.round(otherStats.maxGapMs)} ms)`);
  if (waitReplicas) assert.deepEqual(lost, [], 'no write acknowledged by WAIT 1 is lost');
  const replica = final === oldAddress ? promoted : oldAddress;
  await until(30_000, `${replica} rejoins ${name} as a replica`, async () => {
    const role = await respCommand(Number(replica.split(':')[1]), ['ROLE']).catch(() => null);
    return Array.isArray(role) && role[0] === 'slave' && role[3] === 'connected';
  });
}

describe('Sentinel-named groups', { timeout: 300_000 }, () => {
  test('a static table of Sentinel-named groups routes to each group\'s current master', async () => {
    const client = staticClient();
    await within(20_000, 'connect', client.connect());
    for (const { id, name } of [{ id: 1, name: 'g1' }, { id: 2, name: 'g2' }]) {
      const key = `{${tagOf(client, id, 's')}}:static`;
      await client.set(key, name);
      const master = await set.masterAddress(name);
      const raw = directTo(master);
      await raw.connect();
      assert.equal(await raw.get(key), name, `${key} is on ${name}'s master ${master}`);
      assert.equal(`127.0.0.1:${connectedPeer(client.group(id))?.port}`, master);
      const resolved = await masterResolver(GROUPS[id - 1]!, set.addresses, () => client.group(id))();
      assert.equal(`${resolved.host}:${resolved.port}`, master);
      const asked = await askSentinels(set.sentinels.map((s) => ({ host: s.host, port: s.port })), name);
      assert.equal(`${asked.host}:${asked.port}`, master);
    }
    assert.throws(() => new ShardedRedis({ groups: GROUPS }), (e: unknown) => e instanceof TopologyError && /needs sentinels/.test(e.message));
  });

  test('admin and clients with the coordinator given as Sentinel options; a live migration into a Sentinel-named group', async () => {
    const cluster = uniqueCluster('sent');
    const coordinator = { ...sentinelOptions(), name: 'coord' };
    const admin = new ShardisAdmin({ coordinator, cluster });
    closers.push(() => admin.close());
    await admin.initCluster({ groups: GROUPS, sentinels: [...set.addresses] });
    const status = await admin.status();
    assert.deepEqual(status.groups.map((g) => [g.master, g.sentinel, g.keys === null ? 'down' : 'up']), [['sentinel g1', 'g1', 'up'], ['sentinel g2', 'g2', 'up']]);

    const client = new ShardedRedis({ coordinator, cluster, refreshMs: 200, leaseMs: 5000 });
    client.on('error', () => {});
    closers.push(() => client.quit());
    await within(20_000, 'the client follows the coordinator', client.connect());
    const keys = Array.from({ length: 200 }, (_, i) => `mig:${i}`).filter((k) => slotOf(k) <= 99);
    for (const key of keys) await client.set(key, key);
    const report = await within(60_000, 'migrating slots 0..99 to group 2', admin.migrate({ slots: [{ from: 0, to: 99 }], to: 2 }));
    assert.ok(report.moved >= keys.length, `moved ${report.moved}`);
    await until(10_000, 'the client applies the new owner', () => client.slotTable.owner[0] === 2);
    const g2 = directTo(await set.masterAddress('g2'));
    await g2.connect();
    for (const key of keys) assert.equal(await g2.get(key), key, `${key} is on g2's master`);
    assert.deepEqual(await client.mget(...keys), keys);
  });

  test('a Sentinel-named group is refused without sentinels; addGroup can add them', async () => {
    const cluster = uniqueCluster('sent');
    const plain = await RedisServer.start();
    const admin = new ShardisAdmin({ coordinator: { ...sentinelOptions(), name: 'coord' }, cluster });
    closers.push(() => admin.close());
    await admin.initCluster({ groups: [{ id: 1, master: plain.address }] });
    await assert.rejects(admin.addGroup({ id: 2, sentinel: { name: 'g2' } }), /needs sentinels/);
    const table = await admin.addGroup({ id: 2, sentinel: { name: 'g2' } }, { sentinels: [...set.addresses] });
    assert.deepEqual(table.groups[1], { id: 2, sentinel: { name: 'g2' } });
    assert.deepEqual([...table.sentinels!], [...set.addresses]);
    assert.equal(table.owner.indexOf(2), -1);
    await plain.stop();
  });

  test('SIGKILL of a group master under write load: that group resumes after the failover, the other never stops', async (t) => {
    await killUnderLoad('g1', 1, 2, false, (m) => t.diagnostic(m));
  });

  test('with WAIT 1 after each write, no acknowledged write is lost when the master is SIGKILLed', async (t) => {
    await killUnderLoad('g2', 2, 1, true, (m) => t.diagnostic(m));
  });

  test('the coordinator master killed: clients keep serving within the lease and follow the new coordinator master', async (t) => {
    const cluster = uniqueCluster('sent');
    const coordinator = { ...sentinelOptions(), name: 'coord' };
    const spare = await RedisServer.start();
    const admin = new ShardisAdmin({ coordinator, cluster });
    closers.push(() => admin.close());
    await admin.initCluster({
      groups: [...GROUPS, { id: 3, master: spare.address }],
      sentinels: [...set.addresses],
      slots: [{ from: 0, to: 511, group: 1 }, { from: 512, to: 1023, group: 2 }],
    });
    const client = new ShardedRedis({ coordinator, cluster, refreshMs: 200, leaseMs: 15_000 });
    const stale: unknown[] = [];
    client.on('stale', (...args: unknown[]) => void stale.push(args));
    client.on('error', () => {});
    closers.push(() => client.quit());
    await within(20_000, 'connect', client.connect());
    const load = writeLoad(client, 1, tagOf(client, 1, 'ck'), 4, false);
    const oldAddress = await set.masterAddress('coord');
    const old = [set.group('coord').master, ...set.group('coord').replicas].find((s) => s.address === oldAddress)!;
    const killedAt = performance.now();
    await old.kill();
    const promoted = await set.waitForFailover('coord', oldAddress, 60_000);
    const failedOverMs = performance.now() - killedAt;
    await sleep(500);
    const stats = await load.stop();
    assert.equal(stats.errors, 0, 'no command failed while the coordinator failed over');
    assert.ok(stats.maxGapMs < 3000, `commands kept being served (longest gap ${Math.round(stats.maxGapMs)} ms)`);
    assert.deepEqual(stale, [], 'the lease never ran out');
    // A change written to the new coordinator master reaches the client.
    const before = client.slotTable.version;
    const table = await within(30_000, 'the admin writes to the new coordinator master', admin.removeGroup(3));
    await until(20_000, 'the client follows the new coordinator master', () => client.slotTable.version === table.version);
    assert.ok(table.version > before);
    assert.deepEqual(client.groups().map((g) => g.id), [1, 2]);
    t.diagnostic(`coordinator failover to ${promoted} in ${Math.round(failedOverMs)} ms; ${stats.acked.length} writes meanwhile, longest gap ${Math.round(stats.maxGapMs)} ms`);
    await old.restart();
    await spare.stop();
  });
});
