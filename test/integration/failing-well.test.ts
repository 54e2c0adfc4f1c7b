// Specification of failing well (issue 5, point 3), on real redis-server
// processes: a group that stops answering (SIGSTOP: its connections stay open,
// nothing answers) fails only the commands of its slots, by commandTimeout,
// with a CommandTimeoutError naming it, while the other groups keep serving;
// it recovers on SIGCONT. Split commands and pipelines say which part timed
// out. Commands waiting for a group that is down are bounded
// (maxQueuedCommands, GroupQueueFullError), and those that already failed are
// never sent late. A command held by the lease gate fails by its
// commandTimeout. Every wait here has a deadline.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Redis, RedisOptions } from 'ioredis';
import {
  CommandTimeoutError,
  GroupQueueFullError,
  PartialFailureError,
  ShardedRedis,
  ShardisError,
  StaleTopologyError,
  type ShardedRedisOptions,
} from '../../src/index.js';
import { keygen, startRedisServers, stopAllRedisServers, type RedisServer } from '../../src/testing/index.js';
import { direct, eventually, groupsOf, keyIn, rejection, sleep, until, within } from '../fixtures/integration-kit.js';
import { uniqueCluster, writeTable } from '../fixtures/coordinator-kit.js';

const key = keygen('failing-well');
const made: ShardedRedis[] = [];
const raws: Redis[] = [];
/** Servers paused by a test: resumed at the end whatever happens (a paused server ignores SIGTERM). */
const paused = new Set<RedisServer>();

function pause(server: RedisServer): void {
  process.kill(server.pid!, 'SIGSTOP');
  paused.add(server);
}

function resume(server: RedisServer): void {
  if (!paused.delete(server)) return;
  if (server.pid !== undefined) process.kill(server.pid, 'SIGCONT');
}

after(async () => {
  for (const server of [...paused]) resume(server);
  for (const client of made) client.disconnect();
  for (const redis of raws) redis.disconnect();
  await stopAllRedisServers();
});

function track(options: ShardedRedisOptions): ShardedRedis {
  const client = new ShardedRedis(options);
  client.on('error', () => {}); // reconnect noise; tests look at command outcomes
  made.push(client);
  return client;
}

/** Three groups and a connected client; keys[i] lands in group i + 1. */
async function threeGroups(redisOptions: RedisOptions, extra: Partial<ShardedRedisOptions> = {}) {
  const servers = await startRedisServers(3);
  const client = track({ groups: groupsOf(servers), redisOptions, ...extra } as ShardedRedisOptions);
  await within(5000, 'connect()', client.connect());
  const keys = [keyIn(client, 1, key), keyIn(client, 2, key), keyIn(client, 3, key)] as const;
  return { servers, client, keys };
}

function assertTimeout(error: Error, group: number, server: RedisServer, command: string): asserts error is CommandTimeoutError {
  assert.ok(error instanceof CommandTimeoutError, `expected a CommandTimeoutError, got ${error.name}: ${error.message}`);
  assert.ok(error instanceof ShardisError);
  assert.equal(error.code, 'ERR_COMMAND_TIMEOUT');
  assert.equal(error.group, group);
  assert.equal(error.address, server.address);
  assert.equal(error.command, command);
  assert.ok(error.message.includes(`group ${group} (${server.address})`), error.message);
}

describe('a paused group (SIGSTOP) fails only its own slots, by commandTimeout, and recovers on SIGCONT', () => {
  const TIMEOUT = 300;

  test('single commands: a CommandTimeoutError naming the group; the other groups answer meanwhile', async () => {
    const { servers, client, keys } = await threeGroups({ commandTimeout: TIMEOUT });
    const [k1, k2, k3] = keys;
    try {
      await Promise.all(keys.map((k) => client.set(k, 'before')));
      pause(servers[1]!);
      for (let round = 0; round < 2; round++) {
        const started = Date.now();
        const stuck = rejection(client.get(k2));
        // While group 2's command waits, groups 1 and 3 answer at once.
        for (let i = 0; i < 5; i++) {
          const t0 = Date.now();
          assert.equal(await within(1000, 'GET on group 1', client.get(k1)), 'before');
          assert.equal(await within(1000, 'SET on group 3', client.set(k3, `during-${round}-${i}`)), 'OK');
          assert.ok(Date.now() - t0 < TIMEOUT / 2, `groups 1 and 3 answered in ${Date.now() - t0} ms`);
        }
        const { error } = await within(3000, 'GET on the paused group to fail', stuck);
        const ms = Date.now() - started;
        assertTimeout(error, 2, servers[1]!, 'get');
        assert.match(error.message, /may or may not have been applied/);
        assert.equal(error.timeoutMs, TIMEOUT);
        assert.ok(ms >= TIMEOUT - 20 && ms < TIMEOUT + 500, `round ${round}: failed after ${ms} ms`);
      }
      assert.equal(client.status, 'ready', 'the connection stays open: nothing was closed');
      resume(servers[1]!);
      await eventually(5000, 'group 2 to answer again', () => client.set(k2, 'after'));
      assert.equal(await client.get(k2), 'after');
      assert.deepEqual(await client.mget(k1, k2, k3), ['before', 'after', 'during-1-4']);
    } finally {
      resume(servers[1]!);
      await Promise.all(servers.map((s) => s.stop()));
    }
  });

  test('split MGET and DEL fail by commandTimeout with a PartialFailureError: the paused part timed out, the others succeeded', async () => {
    const { servers, client, keys } = await threeGroups({ commandTimeout: TIMEOUT });
    const [k1, k2, k3] = keys;
    try {
      await Promise.all(keys.map((k) => client.set(k, 'v')));
      pause(servers[1]!);
      const started = Date.now();
      const { error } = await rejection(within(3000, 'MGET with group 2 paused', client.mget(k1, k2, k3)));
      const ms = Date.now() - started;
      assert.ok(error instanceof PartialFailureError, `got ${error.name}: ${error.message}`);
      assert.ok(ms >= TIMEOUT - 20 && ms < TIMEOUT + 500, `failed after ${ms} ms`);
      assert.deepEqual(error.failed.map((o) => o.group), [2]);
      assertTimeout(error.failed[0]!.error!, 2, servers[1]!, 'mget');
      assert.deepEqual(error.succeeded.map((o) => o.group).sort(), [1, 3]);
      assert.match(error.message, /group 2: group 2 \(.*\) did not answer MGET within 300 ms/);

      const { error: delError } = await rejection(within(3000, 'DEL with group 2 paused', client.del(k1, k2, k3)));
      assert.ok(delError instanceof PartialFailureError, `got ${delError.name}: ${delError.message}`);
      assert.ok(delError.failed[0]!.error instanceof CommandTimeoutError);
      assert.deepEqual([await client.exists(k1), await client.exists(k3)], [0, 0], 'the parts on groups 1 and 3 were applied');
    } finally {
      resume(servers[1]!);
      await Promise.all(servers.map((s) => s.stop()));
    }
  });

  test('pipelines: the paused group\'s entries are CommandTimeoutErrors, the others answer, exec() ends by commandTimeout', async () => {
    const { servers, client, keys } = await threeGroups({ commandTimeout: TIMEOUT });
    const [k1, k2, k3] = keys;
    try {
      pause(servers[1]!);
      const started = Date.now();
      const results = await within(3000, 'a pipeline with group 2 paused', client.pipeline().set(k1, 'a').get(k2).set(k3, 'c').mget(k1, k2).exec());
      const ms = Date.now() - started;
      assert.ok(ms < TIMEOUT + 500, `exec() took ${ms} ms`);
      assert.deepEqual(results![0], [null, 'OK']);
      assert.deepEqual(results![2], [null, 'OK']);
      assertTimeout(results![1]![0]!, 2, servers[1]!, 'get');
      const mgetError = results![3]![0]!;
      assert.ok(mgetError instanceof PartialFailureError, String(mgetError));
      assert.ok(mgetError.failed[0]!.error instanceof CommandTimeoutError);
      // A pipeline whose commands all go to the paused group: every entry times out, none hangs.
      const alone = await within(3000, 'a pipeline only to group 2', client.pipeline().get(k2).incr(`{${k2}}:n`).exec());
      for (const [error] of alone!) assert.ok(error instanceof CommandTimeoutError && error.group === 2, String(error));
    } finally {
      resume(servers[1]!);
      await Promise.all(servers.map((s) => s.stop()));
    }
  });
});

describe('the queue of commands waiting for a group that is down is bounded (maxQueuedCommands)', () => {
  // Commands wait for the group as long as it takes (no retry limit, no timeout): only the bound stops them.
  const waitForever: RedisOptions = { maxRetriesPerRequest: null, retryStrategy: () => 50 };

  test('past the limit, commands for that group fail at once with GroupQueueFullError; the queue does not grow; the others serve; the waiting ones run once it is back', async () => {
    const LIMIT = 100;
    const { servers, client, keys } = await threeGroups(waitForever, { maxQueuedCommands: LIMIT });
    const [k1, k2] = keys;
    try {
      await servers[1]!.kill();
      await until(3000, 'group 2 to be seen down', () => client.group(2).status !== 'ready');
      const waiting = Array.from({ length: LIMIT }, (_, i) => client.set(`${k2}`, String(i)));
      for (const w of waiting) w.catch(() => {});
      const started = Date.now();
      const refused = await Promise.allSettled(Array.from({ length: 1000 }, () => client.get(k2)));
      const refusedMs = Date.now() - started;
      assert.ok(refusedMs < 200, `1000 refusals took ${refusedMs} ms`);
      for (const outcome of refused) {
        assert.equal(outcome.status, 'rejected');
        const error = (outcome as PromiseRejectedResult).reason as Error;
        assert.ok(error instanceof GroupQueueFullError, `got ${error.name}: ${error.message}`);
        assert.equal(error.code, 'ERR_GROUP_QUEUE_FULL');
        assert.equal(error.group, 2);
        assert.equal(error.address, servers[1]!.address);
        assert.equal(error.limit, LIMIT);
      }
      // What ioredis holds for the group stays at the limit.
      assert.equal(offlineQueueLength(client.group(2)), LIMIT);
      // A pipeline to it is refused the same way; its other entries run.
      const results = await within(2000, 'a pipeline with group 2 full', client.pipeline().get(k2).set(k1, 'one').exec());
      assert.ok(results![0]![0] instanceof GroupQueueFullError, String(results![0]![0]));
      assert.deepEqual(results![1], [null, 'OK']);
      assert.equal(offlineQueueLength(client.group(2)), LIMIT);
      // The other groups serve all along.
      assert.equal(await within(1000, 'GET on group 1', client.get(k1)), 'one');

      await servers[1]!.restart();
      const done = await within(5000, 'the waiting commands to run once group 2 is back', Promise.all(waiting));
      assert.deepEqual(new Set(done), new Set(['OK']));
      assert.equal(await client.get(k2), String(LIMIT - 1), 'they ran in order');
      assert.equal(await client.set(k2, 'back'), 'OK');
    } finally {
      await Promise.all(servers.map((s) => s.stop()));
    }
  });

  test('commands that timed out while waiting free their place, are dropped from the queue, and are never sent after the reconnect', async () => {
    const LIMIT = 50;
    const TIMEOUT = 100;
    const { servers, client, keys } = await threeGroups({ ...waitForever, commandTimeout: TIMEOUT }, { maxQueuedCommands: LIMIT });
    const k2 = keys[1];
    try {
      await servers[1]!.kill();
      await until(3000, 'group 2 to be seen down', () => client.group(2).status !== 'ready');
      let maxLength = 0;
      for (let round = 0; round < 30; round++) {
        const outcomes = await within(2000, `round ${round}`, Promise.allSettled(Array.from({ length: LIMIT }, (_, i) => client.set(`{${k2}}:${round}:${i}`, 'late'))));
        for (const outcome of outcomes) {
          const error = (outcome as PromiseRejectedResult).reason as Error;
          assert.ok(error instanceof CommandTimeoutError, `round ${round}: got ${String(error)}`);
          assert.equal(error.group, 2);
          assert.match(error.message, /not connected/);
        }
        maxLength = Math.max(maxLength, offlineQueueLength(client.group(2)));
      }
      // 1,500 commands timed out; ioredis alone would keep every one of them queued.
      assert.ok(maxLength <= 1024 + LIMIT, `the offline queue reached ${maxLength} entries`);

      await servers[1]!.restart();
      await eventually(5000, 'group 2 to serve again', () => client.set(`{${k2}}:fresh`, 'x'));
      const observer = direct(servers[1]!);
      raws.push(observer);
      const leaked = (await observer.keys(`{${k2}}:*`)).filter((k) => !k.endsWith(':fresh'));
      assert.deepEqual(leaked, [], 'no command that had failed was sent after the reconnect');
    } finally {
      await Promise.all(servers.map((s) => s.stop()));
    }
  });

  test('maxQueuedCommands must be a positive integer or Infinity', () => {
    for (const bad of [0, -1, 1.5, '10', Number.NaN]) {
      assert.throws(
        () => track({ groups: [{ id: 1, master: '127.0.0.1:6390' }], maxQueuedCommands: bad as number, redisOptions: { lazyConnect: true } }),
        /maxQueuedCommands must be a positive integer or Infinity/,
      );
    }
    track({ groups: [{ id: 1, master: '127.0.0.1:6390' }], maxQueuedCommands: Infinity, redisOptions: { lazyConnect: true } });
  });
});

describe('commandTimeout holds for commands held by the lease gate', () => {
  async function following(redisOptions: RedisOptions, extra: Partial<ShardedRedisOptions> = {}) {
    const [coordinatorServer, ...servers] = await startRedisServers(3);
    const cluster = uniqueCluster('fw');
    const admin = direct(coordinatorServer!);
    raws.push(admin);
    const groups = groupsOf(servers);
    await writeTable(admin, cluster, 1, { groups });
    const client = track({
      coordinator: `redis://${coordinatorServer!.address}`,
      cluster,
      refreshMs: 100,
      leaseMs: 600,
      redisOptions,
      ...extra,
    } as ShardedRedisOptions);
    await within(5000, 'connect()', client.connect());
    const stale = new Promise<void>((resolve) => client.once('stale', resolve));
    return { coordinatorServer: coordinatorServer!, servers, client, stale, keys: [keyIn(client, 1, key), keyIn(client, 2, key)] as const };
  }

  test('coordinator paused, lease run out: a command fails by commandTimeout (not the longer staleWaitMs) with StaleTopologyError; it recovers on SIGCONT', async () => {
    const TIMEOUT = 300;
    const { coordinatorServer, servers, client, stale, keys } = await following({ commandTimeout: TIMEOUT }, { staleWaitMs: 5000 });
    try {
      pause(coordinatorServer);
      await within(3000, 'the lease to run out', stale);
      const started = Date.now();
      const { error } = await rejection(within(3000, 'a held GET', client.get(keys[0])));
      const ms = Date.now() - started;
      assert.ok(error instanceof StaleTopologyError, `got ${error.name}: ${error.message}`);
      assert.ok(ms >= TIMEOUT - 20 && ms < TIMEOUT + 400, `failed after ${ms} ms (commandTimeout ${TIMEOUT}, staleWaitMs 5000)`);
      // A pipeline held the same way ends by then too.
      const pipeStarted = Date.now();
      await rejection(within(3000, 'a held pipeline', client.pipeline().get(keys[0]).get(keys[1]).exec()));
      assert.ok(Date.now() - pipeStarted < TIMEOUT + 400, `pipeline failed after ${Date.now() - pipeStarted} ms`);
      resume(coordinatorServer);
      await eventually(5000, 'commands to be served again', () => client.set(keys[0], 'fresh'));
    } finally {
      resume(coordinatorServer);
      await Promise.all([coordinatorServer, ...servers].map((s) => s.stop()));
    }
  });

  test('a command released by the gate keeps the time it had left: sent to a paused group, it fails by its commandTimeout from the call, naming the group', async () => {
    const TIMEOUT = 600;
    const { coordinatorServer, servers, client, stale, keys } = await following({ commandTimeout: TIMEOUT });
    try {
      pause(coordinatorServer);
      await within(3000, 'the lease to run out', stale);
      pause(servers[1]!);
      const started = Date.now();
      const held = rejection(client.get(keys[1]));
      await sleep(250);
      resume(coordinatorServer); // the lease is renewed: the GET goes to group 2, which does not answer
      const { error } = await within(3000, 'the released GET to fail', held);
      const ms = Date.now() - started;
      assertTimeout(error, 2, servers[1]!, 'get');
      assert.ok(ms >= TIMEOUT - 20 && ms < TIMEOUT + 250, `failed after ${ms} ms: commandTimeout counts from the call, not from the release`);
      assert.equal(await within(1000, 'GET on group 1', client.get(keys[0])), null);
    } finally {
      resume(servers[1]!);
      resume(coordinatorServer);
      await Promise.all([coordinatorServer, ...servers].map((s) => s.stop()));
    }
  });
});

/** How many commands ioredis holds in the offline queue of a connection (internal, for counting only). */
function offlineQueueLength(redis: Redis): number {
  return (redis as unknown as { offlineQueue: { length: number } }).offlineQueue.length;
}
