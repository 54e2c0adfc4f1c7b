// Specification of a ShardedRedis's life, on real redis-server processes:
// connecting (at once, or lazily), quit() and disconnect(), connections named
// after the client, wrapped clients that stay the caller's, debug logs, and a
// process that can exit once its clients are closed (DESIGN §7).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { ShardedRedis, GroupUnavailableError, PartialFailureError, type GroupSpec, type StaticTableOptions } from '../../src/index.js';
import { RedisServer, keygen, startRedisServers, stopAllRedisServers } from '../../src/testing/index.js';
import {
  childEnv,
  clientList,
  connectionsNamed,
  direct,
  groupsOf,
  keyIn,
  rejection,
  runTsChild,
  sleep,
  until,
  within,
} from '../fixtures/integration-kit.js';

const fixture = join(__dirname, '..', 'fixtures', 'lifecycle-child.ts');
const key = keygen('lifecycle');

let servers: RedisServer[] = [];
let groups: GroupSpec[] = [];
/** Direct connections to each server, to look at what the server sees. */
let observers: Redis[] = [];
/** Every client a test made, closed at the end even when the test failed. */
const made: ShardedRedis[] = [];
const wrappedMade: Redis[] = [];

function client(options: Partial<StaticTableOptions> = {}): ShardedRedis {
  const sharded = new ShardedRedis({ groups, ...options });
  made.push(sharded);
  return sharded;
}

/** Plain ioredis clients to the three servers, ready (as an application's own clients would be). */
async function wrappedClients(): Promise<Redis[]> {
  const redises = servers.map((server) => direct(server));
  wrappedMade.push(...redises);
  await within(
    5000,
    'the ioredis clients to be ready',
    Promise.all(redises.map((redis) => (redis.status === 'ready' ? undefined : once(redis, 'ready')))),
  );
  return redises;
}

/** The group addresses, as the child fixture reads them from SHARDIS_TEST_GROUPS. */
function addresses(): string {
  return groups.map((g) => g.master).join(',');
}

let ids = 0;
function uniqueClientId(what: string): string {
  return `${what}-${process.pid}-${++ids}`;
}

before(async () => {
  servers = await startRedisServers(3);
  groups = groupsOf(servers);
  observers = servers.map((server) => direct(server));
});

after(async () => {
  for (const sharded of made) sharded.disconnect();
  for (const redis of [...wrappedMade, ...observers]) redis.disconnect();
  await stopAllRedisServers();
});

describe('connecting', () => {
  test('new ShardedRedis connects every group right away: status "connecting", then "ready" and one "ready" event once all groups are', async () => {
    const sharded = client();
    assert.equal(sharded.status, 'connecting');
    let readyEvents = 0;
    const ready = new Promise<void>((resolve) =>
      sharded.on('ready', () => {
        readyEvents++;
        resolve();
      }),
    );
    await within(5000, 'the "ready" event', ready);
    assert.equal(sharded.status, 'ready');
    assert.deepEqual(
      sharded.groups().map((g) => g.redis.status),
      ['ready', 'ready', 'ready'],
      '"ready" means every group is ready',
    );
    assert.equal(await sharded.ping(), 'PONG'); // one more round trip on every group
    assert.equal(readyEvents, 1);
    await sharded.quit();
  });

  test('with lazyConnect, status is "wait" and no connection is made until the first command', async () => {
    const clientId = uniqueClientId('lazy');
    const sharded = client({ clientId, redisOptions: { lazyConnect: true } });
    assert.equal(sharded.status, 'wait');
    await sleep(150); // time enough to connect, were it going to
    assert.equal(sharded.status, 'wait');
    for (const observer of observers) assert.deepEqual(await connectionsNamed(observer, `shardis:${clientId}`), []);

    const k = keyIn(sharded, 2, key);
    assert.equal(await within(5000, 'the first command', sharded.set(k, 'v')), 'OK');
    assert.equal(await sharded.get(k), 'v');
    assert.equal(sharded.groups()[1]!.redis.status, 'ready', 'the first command connected its group');
    assert.equal((await connectionsNamed(observers[1]!, `shardis:${clientId}`)).length, 1);
    await sharded.quit();
  });

  test('with lazyConnect, connect() connects every group and resolves once all are ready', async () => {
    const clientId = uniqueClientId('lazy-connect');
    const sharded = client({ clientId, redisOptions: { lazyConnect: true } });
    let readyEvents = 0;
    sharded.on('ready', () => readyEvents++);
    assert.equal(await within(5000, 'connect()', sharded.connect()), undefined);
    assert.equal(sharded.status, 'ready');
    assert.deepEqual(
      sharded.groups().map((g) => g.redis.status),
      ['ready', 'ready', 'ready'],
    );
    for (const observer of observers) assert.equal((await connectionsNamed(observer, `shardis:${clientId}`)).length, 1);
    await until(1000, 'the "ready" event', () => readyEvents === 1);
    await sharded.quit();
  });

  test('connect() on a client that is already connecting waits for "ready" instead of failing', async () => {
    const sharded = client();
    await within(5000, 'connect() while connecting', sharded.connect());
    assert.equal(sharded.status, 'ready');
    await within(5000, 'connect() when ready', sharded.connect());
    await sharded.quit();
  });

  test('connect() rejects with a GroupUnavailableError naming the group whose server is down; the other groups connect', async () => {
    const gone = await RedisServer.start();
    await gone.stop(); // nothing listens on its port now
    const sharded = client({
      groups: [groups[0]!, { id: 2, master: gone.address }, groups[2]!],
      redisOptions: { lazyConnect: true, retryStrategy: () => null },
    });
    const events: Error[] = [];
    sharded.on('error', (error) => events.push(error));

    const { error } = await rejection(within(5000, 'connect() to fail', sharded.connect()));
    assert.ok(error instanceof GroupUnavailableError, `got ${error.name}: ${error.message}`);
    assert.equal(error.code, 'ERR_GROUP_UNAVAILABLE');
    assert.equal(error.group, 2);
    assert.equal(error.address, gone.address);
    assert.match(error.message, new RegExp(`group 2 \\(${gone.address.replace(/\./g, '\\.')}\\)`));

    assert.ok(events.length > 0, 'an "error" event was emitted');
    for (const event of events) {
      assert.ok(event instanceof GroupUnavailableError, `event ${event.name}: ${event.message}`);
      assert.equal(event.group, 2);
      assert.match(event.message, /ECONNREFUSED/);
    }
    // The groups that are up are connected and serve their slots.
    assert.equal(sharded.groups()[0]!.redis.status, 'ready');
    assert.equal(sharded.groups()[2]!.redis.status, 'ready');
    const k1 = keyIn(sharded, 1, key);
    assert.equal(await sharded.set(k1, 'v'), 'OK');
    assert.equal(await sharded.get(k1), 'v');
    await sharded.quit();
  });
});

describe('closing', () => {
  test('quit() resolves "OK" once every connection is closed: status "end", one "end" event, and the servers see them go', async () => {
    const clientId = uniqueClientId('quit');
    const sharded = client({ clientId });
    await sharded.connect();
    let endEvents = 0;
    sharded.on('end', () => endEvents++);

    assert.equal(await within(5000, 'quit()', sharded.quit()), 'OK');
    assert.equal(sharded.status, 'end');
    assert.deepEqual(
      sharded.groups().map((g) => g.redis.status),
      ['end', 'end', 'end'],
    );
    await until(1000, 'the "end" event', () => endEvents === 1);
    for (const observer of observers) {
      await until(2000, 'the server to drop the connection', async () => (await connectionsNamed(observer, `shardis:${clientId}`)).length === 0);
    }
    await sleep(50);
    assert.equal(endEvents, 1, '"end" is emitted once');
  });

  test('after quit(), commands reject with GroupUnavailableError naming the group (split ones per group, pipelines per entry)', async () => {
    const sharded = client();
    await sharded.connect();
    const k1 = keyIn(sharded, 1, key);
    const k2 = keyIn(sharded, 2, key);
    const k3 = keyIn(sharded, 3, key);
    await sharded.quit();

    for (const [k, group] of [[k1, 1], [k2, 2], [k3, 3]] as const) {
      const { error } = await rejection(within(2000, `GET after quit (group ${group})`, sharded.get(k)));
      assert.ok(error instanceof GroupUnavailableError, `got ${error.name}: ${error.message}`);
      assert.equal(error.group, group);
      assert.match(error.message, /closed/);
    }
    const { error: setError } = await rejection(sharded.set(k2, 'v'));
    assert.ok(setError instanceof GroupUnavailableError);

    // MGET is split over the groups: each part fails on its own group, none succeeded.
    const { error: mgetError } = await rejection(within(2000, 'MGET after quit', sharded.mget(k1, k2, k3)));
    assert.ok(mgetError instanceof PartialFailureError, `got ${mgetError.name}: ${mgetError.message}`);
    assert.deepEqual(mgetError.succeeded, []);
    assert.deepEqual(mgetError.failed.map((o) => o.group).sort(), [1, 2, 3]);
    for (const outcome of mgetError.failed) assert.ok(outcome.error instanceof GroupUnavailableError);

    const results = await within(2000, 'a pipeline after quit', sharded.pipeline().get(k1).set(k2, 'v').exec());
    assert.equal(results?.length, 2);
    for (const [error] of results!) assert.ok(error instanceof GroupUnavailableError, `got ${String(error)}`);
  });

  test('quit() on a lazy client that never connected resolves "OK" and ends it', async () => {
    const sharded = client({ redisOptions: { lazyConnect: true } });
    let endEvents = 0;
    sharded.on('end', () => endEvents++);
    assert.equal(await within(5000, 'quit()', sharded.quit()), 'OK');
    assert.equal(sharded.status, 'end');
    await until(1000, 'the "end" event', () => endEvents === 1);
    const { error } = await rejection(sharded.get(key()));
    assert.ok(error instanceof GroupUnavailableError);
  });

  /** A client over three fresh servers, the second killed: its connection is retrying. */
  async function clientWithGroupDown(): Promise<{ sharded: ShardedRedis; own: RedisServer[]; k2: string }> {
    const own = await startRedisServers(3);
    const sharded = new ShardedRedis({ groups: groupsOf(own), redisOptions: { retryStrategy: () => 50 } });
    made.push(sharded);
    sharded.on('error', () => {}); // ECONNREFUSED on every retry
    await sharded.connect();
    await own[1]!.kill();
    await until(3000, 'group 2 to be reconnecting', () => sharded.groups()[1]!.redis.status === 'reconnecting');
    return { sharded, own, k2: keyIn(sharded, 2, key) };
  }

  test('quit() while a group\'s server is down still resolves "OK" and ends the client', async () => {
    const { sharded, own, k2 } = await clientWithGroupDown();
    try {
      let endEvents = 0;
      sharded.on('end', () => endEvents++);
      assert.equal(await within(3000, 'quit() with group 2 down', sharded.quit()), 'OK');
      assert.equal(sharded.status, 'end');
      await until(1000, 'the "end" event', () => endEvents === 1);
      const { error } = await rejection(within(2000, 'GET on the down group after quit', sharded.get(k2)));
      assert.ok(error instanceof GroupUnavailableError, `got ${error.name}: ${error.message}`);
      assert.equal(error.group, 2);
    } finally {
      sharded.disconnect();
      await Promise.all(own.map((server) => server.stop()));
    }
  });

  test('disconnect() while a group\'s server is down ends the client', async () => {
    const { sharded, own, k2 } = await clientWithGroupDown();
    try {
      let endEvents = 0;
      sharded.on('end', () => endEvents++);
      sharded.disconnect();
      await until(2000, 'status "end" and the "end" event', () => sharded.status === 'end' && endEvents === 1);
      const { error } = await rejection(within(2000, 'GET on the down group after disconnect', sharded.get(k2)));
      assert.ok(error instanceof GroupUnavailableError, `got ${error.name}: ${error.message}`);
    } finally {
      await Promise.all(own.map((server) => server.stop()));
    }
  });

  test('disconnect() closes at once: a command in flight rejects with GroupUnavailableError, status "end", one "end" event', async () => {
    const clientId = uniqueClientId('disconnect');
    const sharded = client({ clientId });
    await sharded.connect();
    const k2 = keyIn(sharded, 2, key);
    const blocked = sharded.blpop(k2, 10);
    blocked.catch(() => {}); // awaited below
    await until(3000, 'BLPOP to be blocked on the server', async () =>
      (await clientList(observers[1]!)).some((line) => line.includes(`name=shardis:${clientId}`) && line.includes('cmd=blpop')),
    );
    let endEvents = 0;
    sharded.on('end', () => endEvents++);

    sharded.disconnect();
    const { error, ms } = await rejection(within(3000, 'the BLPOP in flight to fail', blocked));
    assert.ok(error instanceof GroupUnavailableError, `got ${error.name}: ${error.message}`);
    assert.equal(error.group, 2);
    assert.ok(ms < 1000, `failed after ${ms} ms`);
    await until(1000, 'status "end" and the "end" event', () => sharded.status === 'end' && endEvents === 1);
    const { error: after } = await rejection(sharded.get(k2));
    assert.ok(after instanceof GroupUnavailableError);
    for (const observer of observers) {
      await until(2000, 'the server to drop the connection', async () => (await connectionsNamed(observer, `shardis:${clientId}`)).length === 0);
    }
  });
});

describe('naming connections', () => {
  test('clientId names every group connection "shardis:<clientId>" (CLIENT LIST on each server)', async () => {
    const clientId = uniqueClientId('named');
    const sharded = client({ clientId });
    await sharded.connect();
    assert.equal(sharded.clientId, clientId);
    for (const observer of observers) assert.equal((await connectionsNamed(observer, `shardis:${clientId}`)).length, 1);
    await sharded.quit();
  });

  test('without clientId, each client draws its own id and names its connections with it', async () => {
    const a = client();
    const b = client();
    await Promise.all([a.connect(), b.connect()]);
    assert.match(a.clientId, /^\S+$/);
    assert.notEqual(a.clientId, b.clientId);
    for (const observer of observers) {
      assert.equal((await connectionsNamed(observer, `shardis:${a.clientId}`)).length, 1);
      assert.equal((await connectionsNamed(observer, `shardis:${b.clientId}`)).length, 1);
    }
    await Promise.all([a.quit(), b.quit()]);
  });
});

describe('fromGroups: wrapped clients belong to the caller', () => {
  test('quit() leaves the wrapped ioredis clients open: they still answer PING', async () => {
    const [r1, r2, r3] = await wrappedClients();
    const sharded = ShardedRedis.fromGroups({ 1: r1!, 2: r2!, 3: r3! });
    made.push(sharded);
    const k = key();
    assert.equal(await sharded.set(k, 'v'), 'OK');
    assert.equal(await within(5000, 'quit()', sharded.quit()), 'OK');
    for (const redis of [r1!, r2!, r3!]) {
      assert.equal(redis.status, 'ready');
      assert.equal(await within(2000, 'PING on a wrapped client', redis.ping()), 'PONG');
    }
  });

  test('after quit(), the sharded client is closed even though the wrapped clients stay open', async () => {
    const [r1, r2, r3] = await wrappedClients();
    const sharded = ShardedRedis.fromGroups({ 1: r1!, 2: r2!, 3: r3! });
    made.push(sharded);
    let endEvents = 0;
    sharded.on('end', () => endEvents++);
    await sharded.quit();
    await until(1000, 'the "end" event', () => endEvents === 1);
    assert.equal(sharded.status, 'end');
    const { error } = await rejection(within(2000, 'GET after quit', sharded.get(key())));
    assert.ok(error instanceof GroupUnavailableError, `got ${error.name}: ${error.message}`);
  });

  test('with closeWrappedClients: true, quit() closes the wrapped clients too', async () => {
    const [r1, r2, r3] = await wrappedClients();
    const sharded = ShardedRedis.fromGroups({ 1: r1!, 2: r2!, 3: r3! }, { closeWrappedClients: true });
    made.push(sharded);
    assert.equal(await sharded.set(key(), 'v'), 'OK');
    assert.equal(await within(5000, 'quit()', sharded.quit()), 'OK');
    assert.equal(sharded.status, 'end');
    for (const redis of [r1!, r2!, r3!]) {
      assert.equal(redis.status, 'end');
      await assert.rejects(redis.ping(), /Connection is closed/);
    }
  });
});

describe('no handle outlives the client: a process exits by itself once its clients are closed', () => {
  const DEADLINE_MS = 5000;

  async function expectExitsByItself(mode: string, env: Record<string, string>): Promise<void> {
    const outcome = await runTsChild(fixture, [mode], childEnv(env), DEADLINE_MS);
    const explain = `\nstdout: ${outcome.stdout}\nstderr: ${outcome.stderr}`;
    assert.equal(outcome.killedAtDeadline, false, `the child (${mode}) was still running after ${DEADLINE_MS} ms${explain}`);
    assert.deepEqual([outcome.code, outcome.signal], [0, null], `the child (${mode}) failed${explain}`);
    assert.equal(outcome.stdout, 'closed\n', explain);
  }

  test('after quit() (plain, auto-pipelined and never-connected lazy clients; commands, pipeline, MGET, MULTI)', async () => {
    await expectExitsByItself('quit', { SHARDIS_TEST_GROUPS: addresses() });
  });

  test('after disconnect()', async () => {
    await expectExitsByItself('disconnect', { SHARDIS_TEST_GROUPS: addresses() });
  });

  test('after quit() while a group is down and its connection is retrying', async () => {
    const gone = await RedisServer.start();
    await gone.stop();
    const withDown = [groups[0]!.master, gone.address, groups[2]!.master].join(',');
    await expectExitsByItself('down', { SHARDIS_TEST_GROUPS: withDown, SHARDIS_TEST_DOWN: '2' });
  });

  test('after quit() of a fromGroups client with closeWrappedClients: true (and enableAutoPipelining)', async () => {
    await expectExitsByItself('wrapped', { SHARDIS_TEST_GROUPS: addresses() });
  });
});

describe('debug logs', () => {
  test('with DEBUG=shardis:*, shardis logs to stderr, each line starting with its "shardis:" namespace', async () => {
    const outcome = await runTsChild(
      fixture,
      ['quit'],
      // DEBUG_HIDE_DATE: with stderr not a TTY, debug would otherwise start each line with a timestamp.
      childEnv({ SHARDIS_TEST_GROUPS: addresses(), DEBUG: 'shardis:*', DEBUG_HIDE_DATE: 'true', DEBUG_COLORS: 'false' }),
      10_000,
    );
    assert.deepEqual([outcome.code, outcome.signal], [0, null], outcome.stderr);
    const lines = outcome.stderr.split('\n').filter((line) => line !== '');
    assert.ok(lines.length > 0, 'something was logged');
    for (const line of lines) assert.match(line, /^shardis:[\w:-]+ /);
    const namespaces = new Set(lines.map((line) => line.split(' ')[0]));
    assert.ok(namespaces.has('shardis:client'), [...namespaces].join(', '));
    assert.ok(namespaces.has('shardis:pool'), [...namespaces].join(', '));
  });

  test('without DEBUG, shardis writes nothing to stderr', async () => {
    const outcome = await runTsChild(fixture, ['quit'], childEnv({ SHARDIS_TEST_GROUPS: addresses() }), 10_000);
    assert.deepEqual([outcome.code, outcome.signal], [0, null], outcome.stderr);
    assert.equal(outcome.stderr, '');
  });
});
