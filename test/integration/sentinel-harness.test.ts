// Specification of shardis/testing's Sentinel support: masters with replicas
// watched by real redis-sentinel processes, stopped like servers.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import {
  RedisSentinel,
  RedisSentinelNotFoundError,
  startSentinels,
  stopAllRedisServers,
} from '../../src/testing/index.js';
import { respCommand } from '../../src/testing/resp.js';

after(stopAllRedisServers);

test('startSentinels: 2 masters, 1 replica each, 3 sentinels that know it all', { timeout: 60_000 }, async () => {
  const set = await startSentinels({ masters: ['g1', 'g2'], replicas: 1, sentinels: 3, quorum: 2 });
  try {
    assert.equal(set.sentinels.length, 3);
    assert.equal(set.addresses.length, 3);
    assert.deepEqual(set.groups.map((g) => g.name), ['g1', 'g2']);
    for (const group of set.groups) {
      assert.equal(await set.masterAddress(group.name), group.master.address);
      assert.equal(group.replicas.length, 1);
      const role = await respCommand(group.replicas[0]!.port, ['ROLE']);
      assert.ok(Array.isArray(role) && role[0] === 'slave' && role[2] === group.master.port, `replica of ${group.master.address}: ${JSON.stringify(role)}`);
      for (const sentinel of set.sentinels) {
        assert.equal(await sentinel.masterAddress(group.name), group.master.address);
        assert.match(String(await sentinel.command('SENTINEL', 'CKQUORUM', group.name)), /^OK 3 usable Sentinels/);
      }
    }
    await assert.rejects(set.masterAddress('nope'), /no master named "nope"/);
  } finally {
    const dirs = [...set.sentinels.map((s) => s.dataDir), ...set.groups.flatMap((g) => [g.master.dataDir, ...g.replicas.map((r) => r.dataDir)])];
    await set.stop();
    for (const s of set.sentinels) assert.equal(s.running, false);
    for (const dir of dirs) assert.equal(existsSync(dir!), false, `${dir} removed`);
  }
});

test('a killed master is replaced by its replica: waitForFailover says where', { timeout: 90_000 }, async () => {
  const set = await startSentinels({ masters: ['solo'], replicas: 1, sentinels: 3, quorum: 2, downAfterMs: 1000 });
  try {
    const { master, replicas } = set.group('solo');
    await master.kill();
    const promoted = await set.waitForFailover('solo', master.address, 60_000);
    assert.equal(promoted, replicas[0]!.address);
    assert.equal(await set.masterAddress('solo'), promoted);
  } finally {
    await set.stop();
  }
});

test('stopAllRedisServers also stops sentinels', { timeout: 60_000 }, async () => {
  const set = await startSentinels({ masters: ['x'], replicas: 0, sentinels: 1, quorum: 1 });
  const pids = set.sentinels.map((s) => s.pid!);
  await stopAllRedisServers();
  for (const pid of pids) assert.throws(() => process.kill(pid, 0), 'sentinel process is gone');
  await set.stop();
});

test('a missing redis-sentinel throws RedisSentinelNotFoundError with install instructions', async () => {
  await assert.rejects(
    RedisSentinel.start({ masters: [{ name: 'm', port: 1, quorum: 1 }], redisSentinelPath: '/nonexistent/redis-sentinel' }),
    (err: unknown) => {
      assert.ok(err instanceof RedisSentinelNotFoundError);
      assert.equal(err.code, 'ERR_REDIS_SENTINEL_NOT_FOUND');
      assert.match(err.message, /redis-sentinel was not found on PATH/);
      assert.match(err.message, /apt-get install -y redis-sentinel/);
      assert.match(err.message, /SHARDIS_REDIS_SENTINEL/);
      assert.match(err.message, /\/nonexistent\/redis-sentinel/);
      return true;
    },
  );
});

test('bad layouts are refused before anything starts', async () => {
  await assert.rejects(startSentinels({ masters: [] }), RangeError);
  await assert.rejects(startSentinels({ masters: ['a', 'a'] }), RangeError);
  await assert.rejects(startSentinels({ sentinels: 3, quorum: 4 }), RangeError);
  await assert.rejects(startSentinels({ masters: ['bad name'] }), RangeError);
});
