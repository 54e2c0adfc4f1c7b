// Specification of how a ShardedRedis fails, on real redis-server processes:
// bad configuration is refused up front with a TopologyError that says what to
// fix; a group that is down fails only the commands of its own slots, fast and
// with a GroupUnavailableError naming it, and the client recovers when it is
// back; authentication problems are named as such; wrong arguments get the
// errors ioredis users know (DESIGN §2, §3, §7).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import IORedis, { ReplyError, type Redis, type RedisOptions } from 'ioredis';
import {
  ArgumentError,
  GroupUnavailableError,
  PartialFailureError,
  ShardedRedis,
  ShardisError,
  TopologyError,
  slotOf,
  type GroupSpec,
  type ShardedRedisOptions,
} from '../../src/index.js';
import { keygen, startRedisServers, stopAllRedisServers, type RedisServer } from '../../src/testing/index.js';
import { clientList, direct, eventually, groupsOf, keyIn, rejection, until, within } from '../fixtures/integration-kit.js';

const key = keygen('failures');

/** Every client and connection a test made, closed at the end even when the test failed. */
const made: ShardedRedis[] = [];
const raws: Redis[] = [];

function track(client: ShardedRedis): ShardedRedis {
  made.push(client);
  return client;
}

/** An ioredis client that never connects (for tests that only look at options). */
function idle(options: RedisOptions = {}): Redis {
  const redis = new IORedis({ lazyConnect: true, ...options });
  raws.push(redis);
  return redis;
}

after(async () => {
  for (const client of made) client.disconnect();
  for (const redis of raws) redis.disconnect();
  await stopAllRedisServers();
});

/** Asserts `fn` throws a TopologyError whose message matches every pattern. */
function assertTopologyError(fn: () => unknown, ...patterns: RegExp[]): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof TopologyError, `expected a TopologyError, got ${String(error)}`);
    assert.ok(error instanceof ShardisError);
    assert.equal(error.code, 'ERR_TOPOLOGY');
    for (const pattern of patterns) assert.match(error.message, pattern);
    return true;
  });
}

describe('bad configuration is refused with a TopologyError that says what to fix', () => {
  const groups: GroupSpec[] = [
    { id: 1, master: '127.0.0.1:6390' },
    { id: 2, master: '127.0.0.1:6391' },
  ];
  const build = (options: unknown) => () => track(new ShardedRedis(options as ShardedRedisOptions));

  test('no groups', () => {
    assertTopologyError(build({ groups: [] }), /at least one group/);
  });

  test('groups that are not an array (or missing)', () => {
    assertTopologyError(build({ groups: 'redis://127.0.0.1:6379' }), /groups must be a non-empty array of \{ id, master/);
    assertTopologyError(build({ groups: { id: 1, master: '127.0.0.1:6379' } }), /groups must be a non-empty array/);
    assertTopologyError(build({}), /groups must be a non-empty array/);
  });

  test('options that are not an object', () => {
    assert.throws(build(undefined), (error: unknown) => error instanceof ShardisError && /options/.test(error.message));
  });

  test('a master that is not "host:port"', () => {
    for (const master of ['localhost', '127.0.0.1', '127.0.0.1:0', '127.0.0.1:70000', 'redis://127.0.0.1:6379', '', ':6379']) {
      assertTopologyError(build({ groups: [{ id: 1, master }] }), /group 1: master must be "host:port"/, new RegExp(JSON.stringify(master).replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')));
    }
    assertTopologyError(build({ groups: [{ id: 1, master: 6379 }] }), /group 1: master must be a "host:port" string, got 6379/);
  });

  test('group ids that are not positive integers, or listed twice', () => {
    assertTopologyError(build({ groups: [{ id: 0, master: '127.0.0.1:6379' }] }), /groups\[0\]\.id must be a positive integer, got 0/);
    assertTopologyError(build({ groups: [{ id: '1', master: '127.0.0.1:6379' }] }), /positive integer, got "1"/);
    assertTopologyError(build({ groups: [groups[0], { id: 1, master: '127.0.0.1:6391' }] }), /group 1 is listed twice/);
  });

  test('slots owned twice', () => {
    assertTopologyError(
      build({ groups, slots: [{ from: 0, to: 600, group: 1 }, { from: 500, to: 1023, group: 2 }] }),
      /slot 500 is owned twice: by group 1 and by group 2/,
    );
  });

  test('slots owned by nobody', () => {
    assertTopologyError(
      build({ groups, slots: [{ from: 0, to: 499, group: 1 }, { from: 520, to: 999, group: 2 }] }),
      /every slot 0\.\.1023 must be owned by a group; not owned: 500\.\.519, 1000\.\.1023/,
    );
  });

  test('slots owned by a group that is not listed', () => {
    assertTopologyError(
      build({ groups, slots: [{ from: 0, to: 511, group: 1 }, { from: 512, to: 1023, group: 9 }] }),
      /slots\[1\] \(512\.\.1023\) names unknown group 9; known groups: 1, 2/,
    );
  });

  test('slot ranges out of bounds or reversed', () => {
    assertTopologyError(build({ groups, slots: [{ from: 0, to: 1024, group: 1 }] }), /slots\[0\]\.to must be an integer slot in 0\.\.1023, got 1024/);
    assertTopologyError(build({ groups, slots: [{ from: 9, to: 3, group: 1 }] }), /slots\[0\]: from \(9\) is after to \(3\)/);
  });

  test('a "__proto__" key (as JSON.parse makes it) is refused, and Object.prototype stays clean', () => {
    const inGroup = JSON.parse('{"groups":[{"id":1,"master":"127.0.0.1:6390","__proto__":{"polluted":"yes"}}]}') as unknown;
    assertTopologyError(build(inGroup), /groups\[0\] has a forbidden key "__proto__"/);
    const inSlots = JSON.parse(
      '{"groups":[{"id":1,"master":"127.0.0.1:6390"}],"slots":[{"from":0,"to":1023,"group":1,"__proto__":{"polluted":"yes"}}]}',
    ) as unknown;
    assertTopologyError(build(inSlots), /slots\[0\] has a forbidden key "__proto__"/);
    assertTopologyError(
      build(JSON.parse('{"groups":[{"id":1,"master":"127.0.0.1:6390","constructor":{"prototype":{"polluted":"yes"}}}]}')),
      /forbidden key "constructor"/,
    );
    assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
    assert.equal(Object.prototype.hasOwnProperty.call(Object.prototype, 'polluted'), false);
  });

  test('a refused configuration opens no connection', async () => {
    const [server] = await startRedisServers(1);
    const observer = direct(server!);
    raws.push(observer);
    const clientId = `refused-${process.pid}`;
    assertTopologyError(
      build({ clientId, groups: [{ id: 1, master: server!.address }], slots: [{ from: 0, to: 10, group: 1 }] }),
      /not owned: 11\.\.1023/,
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal((await clientList(observer)).filter((line) => line.includes(`name=shardis:${clientId}`)).length, 0);
    observer.disconnect();
    await server!.stop();
  });
});

describe('fromGroups refuses what it cannot wrap', () => {
  test('no clients', () => {
    assertTopologyError(() => ShardedRedis.fromGroups({}), /fromGroups needs at least one ioredis client/);
    assertTopologyError(() => ShardedRedis.fromGroups(new Map()), /at least one ioredis client/);
  });

  test('group ids that are not positive integers', () => {
    const redis = idle();
    assertTopologyError(() => ShardedRedis.fromGroups({ x: redis } as unknown as Record<number, Redis>), /group ids must be positive integers, got "x"/);
    assertTopologyError(() => ShardedRedis.fromGroups({ 0: redis }), /positive integers, got "0"/);
    assertTopologyError(() => ShardedRedis.fromGroups({ 1.5: redis }), /positive integers, got "1.5"/);
  });

  test('something that is not an ioredis client', () => {
    assertTopologyError(() => ShardedRedis.fromGroups({ 1: {} as unknown as Redis }), /group 1 must be an ioredis client/);
    assertTopologyError(() => ShardedRedis.fromGroups({ 1: idle(), 2: null as unknown as Redis }), /group 2 must be an ioredis client/);
  });

  test('wrapped clients with different keyPrefix options', () => {
    assertTopologyError(
      () => ShardedRedis.fromGroups({ 1: idle({ keyPrefix: 'a:' }), 2: idle({ keyPrefix: 'b:' }) }),
      /different keyPrefix/,
      /"a:"/,
      /"b:"/,
      /give one keyPrefix in the options/,
    );
    assertTopologyError(() => ShardedRedis.fromGroups({ 1: idle({ keyPrefix: 'a:' }), 2: idle() }), /different keyPrefix/);
  });

  test('the keyPrefix the wrapped clients share is adopted: keys are stored with it, once, and routed by the prefixed key', async () => {
    const servers = await startRedisServers(2);
    const observers = servers.map((server) => direct(server));
    raws.push(...observers);
    const wrapped = servers.map((server) => direct(server, { keyPrefix: 'p:' }));
    raws.push(...wrapped);
    const client = track(ShardedRedis.fromGroups({ 1: wrapped[0]!, 2: wrapped[1]! }));
    try {
      const keys = [keyIn(client, 1, key, 'a', 'p:'), keyIn(client, 2, key, 'b', 'p:')];
      assert.equal(await client.set(keys[0]!, 'one'), 'OK');
      assert.equal(await client.set(keys[1]!, 'two'), 'OK');
      const results = await client.pipeline().set(`${keys[0]}:piped`, 'x').get(keys[1]!).exec();
      assert.deepEqual(results, [[null, 'OK'], [null, 'two']]);
      assert.deepEqual(await client.mget(...keys), ['one', 'two']);

      // On the servers: under "p:" exactly once, in the group that owns the prefixed key.
      assert.equal(await observers[0]!.get(`p:${keys[0]}`), 'one');
      assert.equal(await observers[1]!.get(`p:${keys[1]}`), 'two');
      for (const observer of observers) {
        assert.equal(await observer.exists(keys[0]!, keys[1]!, `p:p:${keys[0]}`, `p:p:${keys[1]}`), 0);
      }
      const piped = `p:${keys[0]}:piped`;
      assert.equal(await observers[client.slotTable.owner[slotOf(piped)]! - 1]!.get(piped), 'x');
    } finally {
      await client.quit();
      await Promise.all(servers.map((server) => server.stop()));
    }
  });
});

describe('a group that is down fails only its own slots, fast, and recovers', () => {
  // Fail a command after one reconnect attempt, and retry often (so the tests stay short).
  const redisOptions: RedisOptions = { maxRetriesPerRequest: 1, retryStrategy: (times) => Math.min(times * 20, 100) };

  async function threeGroups(): Promise<{ servers: RedisServer[]; client: ShardedRedis; events: Error[]; keys: [string, string, string] }> {
    const servers = await startRedisServers(3);
    const client = track(new ShardedRedis({ groups: groupsOf(servers), redisOptions, clientId: `down-${process.pid}-${made.length}` }));
    const events: Error[] = [];
    client.on('error', (error) => events.push(error));
    await within(5000, 'connect()', client.connect());
    const keys: [string, string, string] = [keyIn(client, 1, key), keyIn(client, 2, key), keyIn(client, 3, key)];
    return { servers, client, events, keys };
  }

  test('commands for its slots reject within a bounded time with a GroupUnavailableError naming it and its address; the other groups keep working', async () => {
    const { servers, client, events, keys } = await threeGroups();
    const [k1, k2, k3] = keys;
    try {
      await Promise.all(keys.map((k) => client.set(k, 'before')));
      await servers[1]!.kill();

      let v1 = 'before';
      for (let round = 0; round < 3; round++) {
        const { error, ms } = await rejection(within(5000, `SET on group 2 (round ${round})`, client.set(k2, 'during')));
        assert.ok(error instanceof GroupUnavailableError, `got ${error.name}: ${error.message}`);
        assert.equal(error.code, 'ERR_GROUP_UNAVAILABLE');
        assert.equal(error.group, 2);
        assert.equal(error.address, servers[1]!.address);
        assert.ok(error.message.includes(`group 2 (${servers[1]!.address})`), error.message);
        assert.ok(ms < 2000, `round ${round}: failed after ${ms} ms`);
        // Groups 1 and 3 answer as if nothing happened.
        assert.equal(await within(1000, 'GET on group 1', client.get(k1)), v1);
        assert.equal(await within(1000, 'GET on group 3', client.get(k3)), 'before');
        v1 = `during-${round}`;
        assert.equal(await within(1000, 'SET on group 1', client.set(k1, v1)), 'OK');
      }
      assert.ok(events.length > 0, 'an "error" event reports the lost group');
      for (const event of events) {
        assert.ok(event instanceof GroupUnavailableError, `event ${event.name}: ${event.message}`);
        assert.equal(event.group, 2);
        assert.ok(event.message.includes(servers[1]!.address), event.message);
      }
    } finally {
      await Promise.all(servers.map((server) => server.stop()));
    }
  });

  test('split commands and pipelines say which groups failed and which parts were applied', async () => {
    const { servers, client, keys } = await threeGroups();
    const [k1, k2, k3] = keys;
    try {
      await Promise.all(keys.map((k) => client.set(k, 'v')));
      await servers[1]!.kill();

      const { error: mgetError } = await rejection(within(5000, 'MGET with group 2 down', client.mget(k1, k2, k3)));
      assert.ok(mgetError instanceof PartialFailureError, `got ${mgetError.name}: ${mgetError.message}`);
      assert.deepEqual(mgetError.failed.map((o) => o.group), [2]);
      assert.ok(mgetError.failed[0]!.error instanceof GroupUnavailableError);
      assert.deepEqual(mgetError.succeeded.map((o) => o.group).sort(), [1, 3]);

      const { error: delError } = await rejection(within(5000, 'DEL with group 2 down', client.del(k1, k2, k3)));
      assert.ok(delError instanceof PartialFailureError, `got ${delError.name}: ${delError.message}`);
      assert.deepEqual(delError.succeeded.map((o) => o.group).sort(), [1, 3]);
      assert.deepEqual([await client.exists(k1), await client.exists(k3)], [0, 0], 'the parts on groups 1 and 3 were applied');

      const results = await within(5000, 'a pipeline with group 2 down', client.pipeline().set(k1, 'a').get(k2).set(k3, 'c').exec());
      assert.equal(results?.length, 3);
      assert.deepEqual(results![0], [null, 'OK']);
      assert.deepEqual(results![2], [null, 'OK']);
      const [pipelineError] = results![1]!;
      assert.ok(pipelineError instanceof GroupUnavailableError, `got ${String(pipelineError)}`);
      assert.equal(pipelineError.group, 2);
    } finally {
      await Promise.all(servers.map((server) => server.stop()));
    }
  });

  test('a command in flight when the server dies rejects with GroupUnavailableError instead of hanging', async () => {
    const { servers, client, keys } = await threeGroups();
    const observer = direct(servers[1]!);
    raws.push(observer);
    try {
      const blocked = client.blpop(keys[1], 5);
      blocked.catch(() => {}); // awaited below
      await until(3000, 'BLPOP to be blocked on group 2', async () =>
        (await clientList(observer)).some((line) => line.includes(`name=${'shardis:' + client.clientId}`) && line.includes('cmd=blpop')),
      );
      observer.disconnect();
      await servers[1]!.kill();
      const { error, ms } = await rejection(within(4000, 'the BLPOP in flight to fail', blocked));
      assert.ok(error instanceof GroupUnavailableError, `got ${error.name}: ${error.message}`);
      assert.equal(error.group, 2);
      assert.ok(ms < 1000, `failed after ${ms} ms, long before BLPOP's own 5 s timeout`);
    } finally {
      await Promise.all(servers.map((server) => server.stop()));
    }
  });

  test('once the server is back (same port), the same client serves the group again', async () => {
    const { servers, client, keys } = await threeGroups();
    const [k1, k2] = keys;
    try {
      await servers[1]!.kill();
      await rejection(within(5000, 'SET on group 2 while down', client.set(k2, 'down')));
      await servers[1]!.restart();
      await eventually(5000, 'group 2 to serve again', () => client.set(k2, 'back'));
      assert.equal(await client.get(k2), 'back');
      assert.deepEqual(await client.mget(k1, k2), [null, 'back']);
      await until(2000, 'status "ready"', () => client.status === 'ready');
    } finally {
      await Promise.all(servers.map((server) => server.stop()));
    }
  });
});

describe('authentication', () => {
  let servers: RedisServer[] = [];
  let groups: GroupSpec[] = [];
  before(async () => {
    servers = await startRedisServers(2, { password: 'secret' });
    groups = groupsOf(servers);
  });
  after(async () => {
    await Promise.all(servers.map((server) => server.stop()));
  });

  /** A client with `password`, its "error" events, and a key in each group. */
  function clientWith(password: string | undefined, extra: RedisOptions = {}): { client: ShardedRedis; events: Error[]; keys: string[] } {
    const client = track(new ShardedRedis({ groups, redisOptions: { password, maxRetriesPerRequest: 1, ...extra } }));
    const events: Error[] = [];
    client.on('error', (error) => events.push(error));
    return { client, events, keys: [keyIn(client, 1, key), keyIn(client, 2, key)] };
  }

  test('with the right password everything works', async () => {
    const { client, events, keys } = clientWith('secret');
    await within(5000, 'connect()', client.connect());
    assert.equal(await client.set(keys[0]!, 'a'), 'OK');
    assert.equal(await client.set(keys[1]!, 'b'), 'OK');
    assert.deepEqual(await client.mget(...keys), ['a', 'b']);
    assert.deepEqual(await client.pipeline().get(keys[0]!).get(keys[1]!).exec(), [[null, 'a'], [null, 'b']]);
    assert.deepEqual(events, []);
    await client.quit();
  });

  test('a wrong password: an "error" event and every command fail with a GroupUnavailableError that says authentication failed', async () => {
    const { client, events, keys } = clientWith('wrong');
    for (const [i, k] of keys.entries()) {
      const { error, ms } = await rejection(within(5000, `GET on group ${i + 1}`, client.get(k)));
      assert.ok(error instanceof GroupUnavailableError, `got ${error.name}: ${error.message}`);
      assert.equal(error.group, i + 1);
      assert.match(error.message, /authentication failed/);
      assert.match(error.message, /WRONGPASS/);
      assert.ok(ms < 2000, `failed after ${ms} ms`);
    }
    await until(2000, 'an "error" event', () => events.length > 0);
    for (const event of events) {
      assert.ok(event instanceof GroupUnavailableError, `event ${event.name}: ${event.message}`);
      assert.match(event.message, /authentication failed/);
      assert.match(event.message, /password/);
    }
    client.disconnect();
  });

  test('a wrong password: commands sent while the connection keeps retrying also say authentication failed', async () => {
    const { client, events, keys } = clientWith('wrong');
    // Commands arriving at any point of the retry cycle, as in a busy application:
    // one sent from every "error" event, and one every few milliseconds.
    const sent: Promise<unknown>[] = [];
    const send = (k: string) => {
      const reply = client.get(k);
      reply.catch(() => {}); // collected below
      sent.push(reply);
    };
    client.on('error', () => {
      if (sent.length < 200) send(keys[0]!);
    });
    const deadline = Date.now() + 600;
    while (Date.now() < deadline) {
      send(keys[sent.length % 2]!);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const outcomes = await within(5000, 'every command to fail', Promise.allSettled(sent));
    assert.ok(events.length >= 2, `the connection kept retrying (${events.length} "error" events)`);
    const reasons = new Map<string, number>();
    for (const outcome of outcomes) {
      assert.equal(outcome.status, 'rejected');
      const error = (outcome as PromiseRejectedResult).reason as Error;
      const reason = error instanceof GroupUnavailableError ? error.message.replace(/group \d \([^)]*\)/, 'group N') : `${error.name}: ${error.message}`;
      reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
    }
    for (const [reason, count] of reasons) {
      assert.match(reason, /^group N is unavailable: .*authentication failed/, `${count} of ${outcomes.length} commands failed with: ${reason}`);
    }
    client.disconnect();
  });

  test('a wrong password: connect() rejects with a GroupUnavailableError that says authentication failed', async () => {
    const { client } = clientWith('wrong', { lazyConnect: true });
    const { error } = await rejection(within(5000, 'connect()', client.connect()));
    assert.ok(error instanceof GroupUnavailableError, `got ${error.name}: ${error.message}`);
    assert.match(error.message, /authentication failed|WRONGPASS/);
    client.disconnect();
  });

  test('no password at all: NOAUTH is reported as an authentication failure, on the event and on commands', async () => {
    const { client, events, keys } = clientWith(undefined);
    const { error } = await rejection(within(5000, 'GET without a password', client.get(keys[0]!)));
    assert.ok(error instanceof GroupUnavailableError, `got ${error.name}: ${error.message}`);
    assert.match(error.message, /authentication failed/);
    assert.match(error.message, /NOAUTH/);
    await until(2000, 'an "error" event', () => events.length > 0);
    for (const event of events) {
      assert.ok(event instanceof GroupUnavailableError, `event ${event.name}: ${event.message}`);
      assert.match(event.message, /NOAUTH/);
    }
    client.disconnect();
  });
});

describe('wrong arguments get the errors ioredis users know', () => {
  let servers: RedisServer[] = [];
  let client: ShardedRedis;
  let plain: Redis;
  before(async () => {
    servers = await startRedisServers(3);
    client = track(new ShardedRedis({ groups: groupsOf(servers) }));
    plain = direct(servers[0]!);
    raws.push(plain);
    await client.connect();
  });

  test('GET without a key: the same ReplyError Redis gives a plain ioredis client (arity)', async () => {
    const noKey = (redis: { get: unknown }) => (redis.get as () => Promise<unknown>).call(redis);
    const { error: ours } = await rejection(noKey(client));
    const { error: theirs } = await rejection(noKey(plain));
    assert.ok(ours instanceof ReplyError, `got ${ours.name}: ${ours.message}`);
    assert.equal(ours.constructor, theirs.constructor);
    assert.equal(ours.message, theirs.message);
    assert.match(ours.message, /wrong number of arguments for 'get' command/);
  });

  test('slotOf of something that is not a string or Buffer: TypeError', () => {
    assert.throws(() => slotOf(42 as unknown as string), { name: 'TypeError', message: /string or Buffer key, got number/ });
    assert.throws(() => slotOf(null as unknown as string), TypeError);
  });

  test('group(id) of an unknown group: TopologyError listing the known ones', () => {
    assertTopologyError(() => client.group(99), /unknown group 99; known groups: 1, 2, 3/);
  });

  test('SCAN with a cursor that is not one: ArgumentError saying how to start', async () => {
    const { error } = await rejection(client.scan('abc'));
    assert.ok(error instanceof ArgumentError, `got ${error.name}: ${error.message}`);
    assert.equal(error.code, 'ERR_ARGUMENT');
    assert.match(error.message, /invalid SCAN cursor "abc"/);
    assert.match(error.message, /pass "0" to start/);
  });

  test('pipeline() with a command name that does not exist: ArgumentError naming it', () => {
    assert.throws(
      () => client.pipeline([['nosuchmethod']]),
      (error: unknown) => error instanceof ArgumentError && /unknown command in batch: "nosuchmethod"/.test(error.message),
    );
  });
});
