// The pure parts of reads from replicas: the readFrom options, which commands
// a replica may serve (from @ioredis/commands flags), parsing INFO
// replication, and how a replica's lag is judged from its master's offsets.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ArgumentError } from '../../src/errors.js';
import {
  OffsetHistory,
  isReplicaReadable,
  judgeReplica,
  parseReplicationInfo,
  replicaReadSettings,
  DEFAULT_MAX_REPLICA_LAG_MS,
  DEFAULT_REPLICA_CHECK_MS,
} from '../../src/client/read-from.js';

const MASTER_INFO = [
  '# Replication',
  'role:master',
  'connected_slaves:1',
  'slave0:ip=127.0.0.1,port=6380,state=online,offset=1000,lag=0',
  'master_failover_state:no-failover',
  'master_replid:aaaa',
  'master_replid2:0000000000000000000000000000000000000000',
  'master_repl_offset:1200',
  '',
].join('\r\n');

function replicaInfo(fields: Record<string, string | number> = {}): string {
  const base: Record<string, string | number> = {
    role: 'slave',
    master_host: '127.0.0.1',
    master_port: 6379,
    master_link_status: 'up',
    master_last_io_seconds_ago: 1,
    slave_repl_offset: 1000,
    master_replid: 'aaaa',
    master_repl_offset: 1000,
    ...fields,
  };
  return ['# Replication', ...Object.entries(base).map(([k, v]) => `${k}:${v}`), ''].join('\r\n');
}

describe('readFrom options', () => {
  test("'master' (and no readFrom) means no replica reads at all", () => {
    assert.equal(replicaReadSettings({}), null);
    assert.equal(replicaReadSettings({ readFrom: 'master' }), null);
  });

  test('replica, replicaPreferred and functions are kept, with defaults for lag and check interval', () => {
    assert.deepEqual(replicaReadSettings({ readFrom: 'replica' }), {
      readFrom: 'replica',
      maxLagMs: DEFAULT_MAX_REPLICA_LAG_MS,
      checkMs: DEFAULT_REPLICA_CHECK_MS,
    });
    assert.equal(replicaReadSettings({ readFrom: 'replicaPreferred', maxReplicaLagMs: 200, replicaCheckMs: 50 })?.maxLagMs, 200);
    const pick = () => '127.0.0.1:6379';
    assert.equal(replicaReadSettings({ readFrom: pick })?.readFrom, pick);
  });

  test('anything else is an ArgumentError, even with readFrom master', () => {
    for (const options of [
      { readFrom: 'slave' },
      { readFrom: 'REPLICA' },
      { readFrom: 1 },
      { readFrom: 'replica', maxReplicaLagMs: 0 },
      { readFrom: 'replica', maxReplicaLagMs: -5 },
      { readFrom: 'replica', replicaCheckMs: 0.5 },
      { readFrom: 'replica', replicaCheckMs: '100' },
      { maxReplicaLagMs: Infinity },
    ]) {
      assert.throws(() => replicaReadSettings(options), ArgumentError, JSON.stringify(options));
    }
  });
});

describe('which commands a replica may serve', () => {
  test('read-only commands by their @ioredis/commands flags', () => {
    for (const name of ['get', 'GET', 'mget', 'exists', 'hgetall', 'zrange', 'strlen', 'eval_ro', 'evalsha_ro', 'fcall_ro', 'sort_ro', 'pfcount']) {
      assert.equal(isReplicaReadable(name, undefined), true, name);
    }
  });

  test('writes, scripts that may write, and blocking reads may not', () => {
    for (const name of ['set', 'del', 'incr', 'eval', 'evalsha', 'fcall', 'sort', 'xread', 'xreadgroup', 'blpop', 'multi', 'exec']) {
      assert.equal(isReplicaReadable(name, undefined), false, name);
    }
  });

  test('container commands are judged by their subcommand', () => {
    assert.equal(isReplicaReadable('object', 'encoding'), true);
    assert.equal(isReplicaReadable('object', Buffer.from('FREQ')), true);
    assert.equal(isReplicaReadable('object', 'nope'), false);
    assert.equal(isReplicaReadable('object', undefined), false);
    assert.equal(isReplicaReadable('xinfo', 'stream'), true);
    assert.equal(isReplicaReadable('config', 'set'), false);
  });

  test('unknown commands may not', () => {
    assert.equal(isReplicaReadable('no-such-command', undefined), false);
    assert.equal(isReplicaReadable('__proto__', undefined), false);
  });
});

describe('INFO replication', () => {
  test('a master: role, offset, replication id', () => {
    assert.deepEqual(parseReplicationInfo(MASTER_INFO), { role: 'master', linkUp: false, offset: 1200, replid: 'aaaa' });
  });

  test("a replica: link status and its own offset (slave_repl_offset)", () => {
    assert.deepEqual(parseReplicationInfo(replicaInfo({ slave_repl_offset: 990 })), { role: 'slave', linkUp: true, offset: 990, replid: 'aaaa' });
    assert.equal(parseReplicationInfo(replicaInfo({ master_link_status: 'down' })).linkUp, false);
  });

  test('garbage gives no offset and an unknown role', () => {
    assert.deepEqual(parseReplicationInfo('nothing here'), { role: 'unknown', linkUp: false, offset: null, replid: null });
    assert.equal(parseReplicationInfo(replicaInfo({ slave_repl_offset: '-1' })).offset, null);
  });
});

describe('lag from the master offset history', () => {
  const master = (offset: number, replid = 'aaaa') => ({ role: 'master', linkUp: false, offset, replid });

  test('the age of the oldest sample the replica has not reached', () => {
    const history = new OffsetHistory(10_000);
    history.record(0, master(100));
    history.record(1000, master(200));
    history.record(2000, master(300));
    assert.deepEqual(history.lagOf(300, 2500), { lagMs: 0, behindAll: false }, 'caught up');
    assert.deepEqual(history.lagOf(250, 2500), { lagMs: 500, behindAll: false });
    assert.deepEqual(history.lagOf(150, 2500), { lagMs: 1500, behindAll: false });
    assert.deepEqual(history.lagOf(50, 2500), { lagMs: 2500, behindAll: true });
    assert.equal(new OffsetHistory(1000).lagOf(0, 0), null, 'no sample yet');
  });

  test('old samples are dropped (the newest is kept), and a new replication id starts over', () => {
    const history = new OffsetHistory(1000);
    for (let t = 0; t <= 5000; t += 500) history.record(t, master(t));
    assert.equal(history.size, 3); // 4000, 4500, 5000
    history.record(6000, master(10, 'bbbb'));
    assert.equal(history.size, 1);
    assert.equal(history.replicationId, 'bbbb');
    history.record(7000, master(5, 'bbbb'));
    assert.equal(history.size, 1, 'an offset going backwards starts over');
  });

  test('judging a replica', () => {
    const history = new OffsetHistory(10_000);
    history.record(0, master(1000));
    history.record(1000, master(2000));
    const judge = (fields: Record<string, string | number>, now = 1100, maxLag = 500) =>
      judgeReplica(parseReplicationInfo(replicaInfo(fields)), history, now, maxLag);
    assert.deepEqual(judge({ slave_repl_offset: 2000 }), { healthy: true, lagMs: 0, reason: null });
    assert.deepEqual(judge({ slave_repl_offset: 1500 }), { healthy: true, lagMs: 100, reason: null });
    assert.equal(judge({ slave_repl_offset: 1500 }, 1700).healthy, false);
    assert.match(judge({ slave_repl_offset: 1500 }, 1700).reason!, /lags 700 ms.*maxReplicaLagMs is 500/);
    assert.match(judge({ slave_repl_offset: 500 }).reason!, /behind every master offset/);
    assert.match(judge({ master_link_status: 'down' }).reason!, /link .* down/);
    assert.match(judge({ role: 'master' }).reason!, /not a replica/);
    assert.match(judge({ master_replid: 'cccc' }).reason!, /another history/);
    assert.match(judgeReplica(parseReplicationInfo(replicaInfo()), new OffsetHistory(1000), 0, 500).reason!, /unknown/);
  });
});
