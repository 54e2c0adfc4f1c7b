// Specification of shardis/admin on real redis-server processes: a coordinator
// holding the slot table (DESIGN §2) and group masters. Every change is a
// whole validated table written with a compare-and-set on its version and
// announced on the events channel; changes refuse, naming why, rather than
// guess. Each test uses its own cluster name, and deletes the keys it writes.
import { test, describe, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import IORedis, { type Redis } from 'ioredis';
import {
  ArgumentError,
  ClusterExistsError,
  GroupUnavailableError,
  ShardisAdmin,
  SlotsNotEmptyError,
  TopologyError,
  VersionConflictError,
  evenSlotRanges,
  parseTableJson,
  tableToJson,
  validateTable,
  type Migration,
  type ClusterTable,
  type MasterGroupSpec,
  type ShardisAdminOptions,
} from '../../src/admin/index.js';
import { coordinatorKeys } from '../../src/coordinator/keys.js';
import { removeUnchanged } from '../../src/admin/registry.js';
import { slotOf } from '../../src/slot.js';
import { keygen, startRedisServers, stopAllRedisServers, RedisServer } from '../../src/testing/index.js';
import { groupsOf, within } from '../fixtures/integration-kit.js';

const key = keygen('admin');
let clusters = 0;
/** A cluster name no other test (or test process) uses. */
const clusterName = (): string => `admin-${process.pid}-${++clusters}-${Date.now().toString(36)}`;

let coordinator: RedisServer;
let masters: RedisServer[];
/** Groups 1..3 on the three masters. */
let groups: MasterGroupSpec[];

const admins: ShardisAdmin[] = [];
const raws: Redis[] = [];

before(async () => {
  [coordinator, ...masters] = await startRedisServers(4);
  groups = groupsOf(masters);
});

afterEach(async () => {
  await Promise.all(admins.splice(0).map((a) => a.close()));
  for (const redis of raws.splice(0)) redis.disconnect();
});

after(stopAllRedisServers);

function admin(cluster: string, options: Partial<ShardisAdminOptions> = {}): ShardisAdmin {
  const made = new ShardisAdmin({ coordinator: `redis://${coordinator.address}`, cluster, ...options });
  admins.push(made);
  return made;
}

/** A plain ioredis connection to `server`, closed after the test. */
function raw(server: RedisServer, options: { password?: string } = {}): Redis {
  const redis = new IORedis({ host: server.host, port: server.port, ...options });
  redis.on('error', () => {});
  raws.push(redis);
  return redis;
}

/** The next pub/sub message `subscriber` receives, or a timeout. */
async function nextMessage(subscriber: Redis, what: string): Promise<string> {
  const [, message] = (await within(3000, `a message on ${what}`, once(subscriber, 'message'))) as [string, string];
  return message;
}

/** Coordinator time in ms. */
async function coordinatorNow(): Promise<number> {
  const [seconds, micros] = await raw(coordinator).time();
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}

/** A fresh key whose slot is owned by `group` in `table`. */
function keyOwnedBy(table: ClusterTable, group: number): { key: string; slot: number } {
  for (let i = 0; i < 10_000; i++) {
    const name = key('k');
    const slot = slotOf(name);
    if (table.owner[slot] === group) return { key: name, slot };
  }
  throw new Error(`no key for group ${group}`);
}

async function rejectsWith<E extends Error>(promise: Promise<unknown>, errorClass: new (...args: never[]) => E): Promise<E> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof errorClass, `expected ${errorClass.name}, got ${String(error)}`);
    return error;
  }
  assert.fail(`expected ${errorClass.name}, but it resolved`);
}

/** Stores version 4 of `cluster`'s table by hand: group 1 owns every slot, and slots 0..9 move to group 3 in `state`. */
async function storeMigratingTable(cluster: string, state: Migration['state']): Promise<void> {
  const migrating = validateTable({
    groups,
    slots: [{ from: 0, to: 1023, group: 1 }],
    migrations: [{ slots: [[0, 9]], from: 1, to: 3, state }],
    version: 4,
  });
  await raw(coordinator).set(coordinatorKeys(cluster).table, tableToJson(migrating, cluster));
}

describe('initCluster and readTable', () => {
  test('a cluster without a table reads as null', async () => {
    assert.equal(await admin(clusterName()).readTable(), null);
  });

  test('init writes version 1 with the slots split evenly over the groups; readTable reads the same table back', async () => {
    const cluster = clusterName();
    const a = admin(cluster);
    const written = await a.initCluster({ groups });
    assert.equal(written.version, 1);
    assert.equal(written.cluster, cluster);
    assert.deepEqual(written.slots.map((r) => ({ ...r })), evenSlotRanges([1, 2, 3]));
    const read = await a.readTable();
    assert.ok(read !== null);
    assert.equal(read.version, 1);
    assert.deepEqual(read.groups, written.groups);
    assert.deepEqual(read.slots, written.slots);
    assert.deepEqual(read.owner, written.owner);
    assert.deepEqual(read.migrations, []);
  });

  test('the stored JSON is format 1, parses with parseTableJson, and keeps slots as merged ranges', async () => {
    const cluster = clusterName();
    // Given in pieces, in any order: stored merged.
    await admin(cluster).initCluster({
      groups: groups.slice(0, 2),
      slots: [
        { from: 600, to: 1023, group: 2 },
        { from: 0, to: 99, group: 1 },
        { from: 100, to: 599, group: 1 },
      ],
    });
    const text = await raw(coordinator).get(coordinatorKeys(cluster).table);
    assert.ok(text !== null);
    const json = JSON.parse(text) as Record<string, unknown>;
    assert.equal(json.format, 1);
    assert.equal(json.cluster, cluster);
    assert.equal(json.slotCount, 1024);
    assert.deepEqual(json.slots, [
      { from: 0, to: 599, group: 1 },
      { from: 600, to: 1023, group: 2 },
    ]);
    assert.equal(parseTableJson(text, cluster).version, 1);
  });

  test('every write publishes the new version and table on the events channel', async () => {
    const cluster = clusterName();
    const subscriber = raw(coordinator);
    await subscriber.subscribe(coordinatorKeys(cluster).events);
    const a = admin(cluster);
    // "<version> <table JSON>": subscribers can apply the table without reading it back.
    const versionOf = (message: string) => [message.slice(0, message.indexOf(' ')), (JSON.parse(message.slice(message.indexOf(' ') + 1)) as { version: number }).version];
    const first = nextMessage(subscriber, 'events');
    await a.initCluster({ groups: groups.slice(0, 2) });
    assert.deepEqual(versionOf(await first), ['1', 1]);
    const second = nextMessage(subscriber, 'events');
    await a.addGroup(groups[2]!);
    assert.deepEqual(versionOf(await second), ['2', 2]);
  });

  test('init refuses a cluster that already has a table (ClusterExistsError), and changes nothing', async () => {
    const cluster = clusterName();
    await admin(cluster).initCluster({ groups });
    const error = await rejectsWith(admin(cluster).initCluster({ groups: groups.slice(0, 1) }), ClusterExistsError);
    assert.equal(error.cluster, cluster);
    assert.equal(error.version, 1);
    assert.match(error.message, /already has a slot table \(version 1\).*force/);
    const table = await admin(cluster).readTable();
    assert.equal(table?.version, 1);
    assert.equal(table?.groups.length, 3);
  });

  test('init with force replaces a readable table with version old + 1', async () => {
    const cluster = clusterName();
    const a = admin(cluster);
    await a.initCluster({ groups });
    await a.addGroup({ id: 9, master: '127.0.0.1:1' });
    const replaced = await a.initCluster({ groups: groups.slice(0, 1), force: true });
    assert.equal(replaced.version, 3);
    assert.deepEqual(replaced.slots.map((r) => ({ ...r })), [{ from: 0, to: 1023, group: 1 }]);
  });

  test('init with force replaces an unreadable table, above every version a registered client reported', async () => {
    const cluster = clusterName();
    const keys = coordinatorKeys(cluster);
    await raw(coordinator).set(keys.table, '{ not json');
    await raw(coordinator).hset(keys.clients, 'c1', JSON.stringify({ version: 7, at: await coordinatorNow(), host: 'h', pid: 1, name: 'shardis:c1', leaseMs: 10_000 }));
    const a = admin(cluster);
    const refused = await rejectsWith(a.initCluster({ groups }), ClusterExistsError);
    assert.equal(refused.version, -1);
    assert.match(refused.message, /unreadable/);
    const table = await a.initCluster({ groups, force: true });
    assert.equal(table.version, 8);
    assert.equal((await a.readTable())?.version, 8);
  });

  test('readTable refuses an invalid stored table with a TopologyError (bad JSON, another cluster\'s table)', async () => {
    const cluster = clusterName();
    const keys = coordinatorKeys(cluster);
    await raw(coordinator).set(keys.table, '{ not json');
    assert.match((await rejectsWith(admin(cluster).readTable(), TopologyError)).message, /not valid JSON/);
    const other = validateTable({ groups, slots: evenSlotRanges([1, 2, 3]), version: 4 });
    await raw(coordinator).set(keys.table, tableToJson(other, 'someone-else'));
    assert.match((await rejectsWith(admin(cluster).readTable(), TopologyError)).message, /written for another cluster/);
  });

  test('a table that does not validate is refused before anything is written', async () => {
    const cluster = clusterName();
    const a = admin(cluster);
    await rejectsWith(a.initCluster({ groups, slots: [{ from: 0, to: 1000, group: 1 }] }), TopologyError);
    await rejectsWith(a.initCluster({ groups: [groups[0]!, { id: 2, master: groups[0]!.master }] }), TopologyError);
    assert.equal(await a.readTable(), null);
  });
});

describe('addGroup and removeGroup', () => {
  test('a new group owns no slot; the version grows by one', async () => {
    const cluster = clusterName();
    const a = admin(cluster);
    await a.initCluster({ groups: groups.slice(0, 2) });
    const table = await a.addGroup({ ...groups[2]!, replicas: ['127.0.0.1:2'] });
    assert.equal(table.version, 2);
    assert.deepEqual(table.groups.map((g) => g.id), [1, 2, 3]);
    assert.deepEqual([...table.groups[2]!.replicas!], ['127.0.0.1:2']);
    assert.ok(!table.owner.includes(3));
  });

  test('a duplicate id, or an address another group uses (as master or replica), is refused', async () => {
    const cluster = clusterName();
    const a = admin(cluster);
    await a.initCluster({ groups: [groups[0]!, { ...groups[1]!, replicas: ['127.0.0.1:3'] }] });
    assert.match((await rejectsWith(a.addGroup({ id: 1, master: '127.0.0.1:4' }), TopologyError)).message, /group 1 is already in cluster/);
    assert.match(
      (await rejectsWith(a.addGroup({ id: 3, master: groups[0]!.master }), TopologyError)).message,
      new RegExp(`${groups[0]!.master} is used by group 1 and by group 3`),
    );
    await rejectsWith(a.addGroup({ id: 3, master: '127.0.0.1:3' }), TopologyError);
    assert.equal((await a.readTable())?.version, 1);
  });

  test('changes need an initialized cluster', async () => {
    const error = await rejectsWith(admin(clusterName()).addGroup(groups[0]!), TopologyError);
    assert.match(error.message, /has no slot table yet; initialize it first/);
  });

  test('a group that owns no slot can be removed', async () => {
    const cluster = clusterName();
    const a = admin(cluster);
    await a.initCluster({ groups: groups.slice(0, 2) });
    await a.addGroup(groups[2]!);
    const table = await a.removeGroup(3);
    assert.equal(table.version, 3);
    assert.deepEqual(table.groups.map((g) => g.id), [1, 2]);
  });

  test('a group that owns slots is not removed; the error names its slots and says to rebalance first', async () => {
    const cluster = clusterName();
    const a = admin(cluster);
    await a.initCluster({ groups });
    const error = await rejectsWith(a.removeGroup(2), TopologyError);
    assert.match(error.message, /group 2 still owns 341 slots \(342\.\.682\)/);
    assert.match(error.message, /rebalance with weight 0 for group 2/);
    assert.equal((await a.readTable())?.version, 1);
  });

  test('a group receiving slots in a migration is not removed; an unknown group is an ArgumentError', async () => {
    const cluster = clusterName();
    await storeMigratingTable(cluster, 'pending');
    const a = admin(cluster);
    assert.match((await rejectsWith(a.removeGroup(3), TopologyError)).message, /receiving slots from group 1 \(pending\)/);
    assert.match((await rejectsWith(a.removeGroup(8), ArgumentError)).message, /group 8 is not in cluster/);
  });
});

describe('assignSlots', () => {
  test('refused when the current owner holds keys in those slots: names keys and slots, says it is a live migration', async () => {
    const cluster = clusterName();
    const a = admin(cluster);
    const table = await a.initCluster({ groups });
    const { key: name, slot } = keyOwnedBy(table, 1);
    const owner = raw(masters[0]!);
    await owner.set(name, 'v');
    try {
      const error = await rejectsWith(a.assignSlots([{ from: slot, to: slot }], 2), SlotsNotEmptyError);
      assert.deepEqual(error.keys, [{ key: name, slot, group: 1 }]);
      assert.deepEqual(error.slots, [slot]);
      assert.equal(error.to, 2);
      assert.match(error.message, new RegExp(`${name} \\(slot ${slot}, group 1\\)`));
      assert.match(error.message, /live migration/);
      assert.equal((await a.readTable())?.version, 1, 'nothing was written');
    } finally {
      await owner.del(name);
    }
  });

  test('allowed when the slots are empty: the slots change owner, the version grows, ranges stay merged', async () => {
    const cluster = clusterName();
    const a = admin(cluster);
    await a.initCluster({ groups });
    const table = await a.assignSlots([{ from: 0, to: 9 }, { from: 1000, to: 1023 }], 2);
    assert.equal(table.version, 2);
    for (const s of [0, 9, 1000, 1023]) assert.equal(table.owner[s], 2);
    assert.equal(table.owner[10], 1);
    assert.deepEqual(table.slots.map((r) => ({ ...r })), [
      { from: 0, to: 9, group: 2 },
      { from: 10, to: 341, group: 1 },
      { from: 342, to: 682, group: 2 },
      { from: 683, to: 999, group: 3 },
      { from: 1000, to: 1023, group: 2 },
    ]);
    assert.deepEqual((await a.readTable())?.owner, table.owner);
  });

  test('keys in other slots of the owner do not stand in the way', async () => {
    const cluster = clusterName();
    const a = admin(cluster);
    const table = await a.initCluster({ groups });
    const { key: name, slot } = keyOwnedBy(table, 1);
    const other = slot === 0 ? 1 : 0;
    const owner = raw(masters[0]!);
    await owner.set(name, 'v');
    try {
      assert.equal((await a.assignSlots([{ from: other, to: other }], 3)).owner[other], 3);
    } finally {
      await owner.del(name);
    }
  });

  test('refused when the receiving group holds stray keys in those slots', async () => {
    const cluster = clusterName();
    const a = admin(cluster);
    const table = await a.initCluster({ groups });
    const { key: name, slot } = keyOwnedBy(table, 1);
    const receiver = raw(masters[2]!);
    await receiver.set(name, 'stray');
    try {
      const error = await rejectsWith(a.assignSlots([{ from: slot, to: slot }], 3), SlotsNotEmptyError);
      assert.deepEqual(error.keys, [{ key: name, slot, group: 3 }]);
      assert.match(error.message, /Group 3 holds keys in slots it does not own/);
    } finally {
      await receiver.del(name);
    }
  });

  test('skipKeyCheck assigns without looking', async () => {
    const cluster = clusterName();
    const a = admin(cluster);
    const table = await a.initCluster({ groups });
    const { key: name, slot } = keyOwnedBy(table, 1);
    const owner = raw(masters[0]!);
    await owner.set(name, 'v');
    try {
      assert.equal((await a.assignSlots([{ from: slot, to: slot }], 2, { skipKeyCheck: true })).owner[slot], 2);
    } finally {
      await owner.del(name);
    }
  });

  test('slots the group already owns are left as they are: nothing is written', async () => {
    const cluster = clusterName();
    const a = admin(cluster);
    await a.initCluster({ groups });
    assert.equal((await a.assignSlots([{ from: 0, to: 341 }], 1)).version, 1);
    assert.equal((await a.readTable())?.version, 1);
  });

  test('slots in a migration, bad ranges and unknown groups are refused', async () => {
    const cluster = clusterName();
    await storeMigratingTable(cluster, 'migrating');
    const a = admin(cluster);
    assert.match((await rejectsWith(a.assignSlots([{ from: 5, to: 20 }], 2), TopologyError)).message, /slots 5\.\.9 are in a migration/);
    await rejectsWith(a.assignSlots([], 2), ArgumentError);
    await rejectsWith(a.assignSlots([{ from: 5, to: 1024 }], 2), ArgumentError);
    await rejectsWith(a.assignSlots([{ from: 9, to: 5 }], 2), ArgumentError);
    await rejectsWith(a.assignSlots([{ from: 20, to: 30 }], 7), ArgumentError);
    assert.equal((await a.readTable())?.version, 4);
  });
});

describe('concurrent writers', () => {
  test('two admins that read the same version and both write: exactly one VersionConflictError, the other wins', async () => {
    const cluster = clusterName();
    // One shared coordinator connection orders their commands: both GETs
    // (version 1) are answered before either compare-and-set runs.
    const shared = raw(coordinator);
    const a = admin(cluster, { coordinator: shared });
    const b = admin(cluster, { coordinator: shared });
    await a.initCluster({ groups: groups.slice(0, 2) });
    const results = await Promise.allSettled([a.addGroup({ id: 5, master: '127.0.0.1:5' }), b.addGroup({ id: 6, master: '127.0.0.1:6' })]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    assert.equal(won.length, 1);
    assert.equal(lost.length, 1);
    const conflict = lost[0]!.reason as unknown;
    assert.ok(conflict instanceof VersionConflictError, `got ${String(conflict)}`);
    assert.equal(conflict.expected, 1);
    assert.equal(conflict.actual, 2);
    const table = await a.readTable();
    assert.equal(table?.version, 2);
    assert.equal(table?.groups.length, 3, 'only the winner\'s group was added');
    // close() leaves a connection it was given open.
    await a.close();
    assert.equal(await shared.ping(), 'PONG');
  });
});

describe('planRebalance', () => {
  test('reads the table and plans: a 4th group gets 256 slots', async () => {
    const cluster = clusterName();
    const a = admin(cluster);
    await a.initCluster({ groups: groups.slice(0, 3) });
    await a.addGroup({ id: 4, master: '127.0.0.1:7' });
    const plan = await a.planRebalance();
    assert.equal(plan.version, 2);
    assert.equal(plan.moved, 256);
    assert.ok(plan.moves.every((m) => m.to === 4));
  });
});

describe('status', () => {
  test('shows the table, each group\'s slots, keys and memory, and the clients with their age on the coordinator\'s clock', async () => {
    const cluster = clusterName();
    const a = admin(cluster);
    const table = await a.initCluster({ groups });
    const names = [key('s1'), key('s2')];
    const g1 = raw(masters[0]!);
    await g1.mset(names[0]!, 'a', names[1]!, 'b');
    const keys = coordinatorKeys(cluster);
    const now = await coordinatorNow();
    const entry = (at: number): string => JSON.stringify({ version: 1, at, host: 'web-1', pid: 42, name: 'shardis:x', leaseMs: 10_000 });
    await raw(coordinator).hset(keys.clients, 'fresh', entry(now - 1000), 'expired', entry(now - 60_000), 'junk', 'not an entry');
    try {
      const status = await a.status();
      assert.equal(status.cluster, cluster);
      assert.equal(status.table?.version, 1);
      assert.deepEqual(status.migrations, []);
      assert.deepEqual(
        status.groups.map((g) => [g.id, g.master, g.slots, g.ranges]),
        [
          [1, masters[0]!.address, 342, '0..341'],
          [2, masters[1]!.address, 341, '342..682'],
          [3, masters[2]!.address, 341, '683..1023'],
        ],
      );
      const group1 = status.groups[0]!;
      assert.equal(group1.error, undefined);
      assert.ok(group1.keys !== null && group1.keys >= 2, `group 1 has at least the 2 keys written, got ${group1.keys}`);
      assert.ok(group1.usedMemory !== null && group1.usedMemory > 0);
      assert.deepEqual(status.clients.map((c) => [c.id, c.expired, c.removed]), [
        ['expired', true, true],
        ['fresh', false, false],
      ]);
      const fresh = status.clients[1]!;
      assert.ok(fresh.ageMs >= 1000 && fresh.ageMs < 10_000, `age ${fresh.ageMs}`);
      assert.deepEqual([fresh.version, fresh.leaseMs, fresh.host, fresh.pid, fresh.name], [1, 10_000, 'web-1', 42, 'shardis:x']);
      // The expired entry is gone; the fresh one and the one that is not an entry are left alone.
      assert.deepEqual(Object.keys(await raw(coordinator).hgetall(keys.clients)).sort(), ['fresh', 'junk']);
      assert.equal(table.version, 1);
    } finally {
      await g1.del(...names);
    }
  });

  test('an expired entry is removed only if it is still the one read (a client that re-confirmed stays)', async () => {
    const keys = coordinatorKeys(clusterName());
    const redis = raw(coordinator);
    const old = JSON.stringify({ version: 1, at: 1, host: 'h', pid: 1, name: 'shardis:c', leaseMs: 1000 });
    const renewed = JSON.stringify({ version: 1, at: await coordinatorNow(), host: 'h', pid: 1, name: 'shardis:c', leaseMs: 1000 });
    await redis.hset(keys.clients, 'c', renewed, 'd', old);
    const acks = raw(coordinator);
    await acks.subscribe(keys.acks);
    const gone = nextMessage(acks, 'acks');
    assert.deepEqual(await removeUnchanged(redis, keys, [['c', old], ['d', old]]), ['d']);
    assert.equal(await gone, 'd gone', 'the removal is announced on the acks channel, as a deregistration is');
    assert.deepEqual(Object.keys(await redis.hgetall(keys.clients)), ['c']);
  });

  test('a cluster without a table: table null, no groups', async () => {
    const status = await admin(clusterName()).status();
    assert.equal(status.table, null);
    assert.deepEqual(status.groups, []);
    assert.deepEqual(status.clients, []);
  });

  test('a group that is down is reported with an error, not thrown; assignSlots from it is a GroupUnavailableError', async () => {
    const [down] = await startRedisServers(1);
    try {
      const cluster = clusterName();
      const a = admin(cluster, { groupTimeoutMs: 500 });
      await a.initCluster({ groups: [groups[0]!, { id: 2, master: down!.address }] });
      await down!.kill();
      const status = await a.status();
      const [up, gone] = status.groups;
      assert.equal(up!.error, undefined);
      assert.ok(up!.keys !== null);
      assert.equal(gone!.id, 2);
      assert.equal(gone!.keys, null);
      assert.equal(gone!.usedMemory, null);
      assert.match(gone!.error ?? '', /ECONNREFUSED/);
      const error = await rejectsWith(a.assignSlots([{ from: 1000, to: 1000 }], 1), GroupUnavailableError);
      assert.equal(error.group, 2);
      assert.match(error.message, /could not be checked, so nothing was changed/);
      assert.equal((await a.readTable())?.version, 1);
    } finally {
      await down!.stop();
    }
  });

  test('redisOptions carry the group masters\' credentials', async () => {
    const [locked] = await startRedisServers(1, { password: 'sesame' });
    try {
      const cluster = clusterName();
      await admin(cluster).initCluster({ groups: [{ id: 1, master: locked!.address }] });
      const without = await admin(cluster).status();
      assert.match(without.groups[0]!.error ?? '', /NOAUTH|Authentication/i);
      const withPassword = await admin(cluster, { redisOptions: { password: 'sesame' } }).status();
      assert.equal(withPassword.groups[0]!.error, undefined);
      assert.equal(withPassword.groups[0]!.keys, 0);
    } finally {
      await locked!.stop();
    }
  });
});

describe('the admin entry point', () => {
  test('refuses a bad cluster name and a bad coordinator up front', () => {
    assert.throws(() => new ShardisAdmin({ coordinator: `redis://${coordinator.address}`, cluster: 'no spaces' }), ArgumentError);
    assert.throws(() => new ShardisAdmin({ coordinator: 'localhost:6379', cluster: 'x' }), ArgumentError);
  });
});
