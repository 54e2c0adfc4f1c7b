// status()'s replication part without servers: INFO replication parsing and
// one replica's link and lag from its and its master's answers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseReplicationInfo, replicaStatus } from '../../src/admin/status.js';

const MASTER = [
  '# Replication',
  'role:master',
  'connected_slaves:2',
  'slave0:ip=127.0.0.1,port=7001,state=online,offset=900,lag=0',
  'slave1:ip=::1,port=7002,state=wait_bgsave,offset=0,lag=3',
  'master_repl_offset:1000',
  '',
].join('\r\n');

const REPLICA = (link: string, io: number, offset: number) =>
  ['# Replication', 'role:slave', 'master_host:127.0.0.1', 'master_port:7000', `master_link_status:${link}`, `master_last_io_seconds_ago:${io}`, `slave_repl_offset:${offset}`, 'master_repl_offset:900', ''].join('\r\n');

test('parseReplicationInfo reads a master and a replica', () => {
  const master = parseReplicationInfo(MASTER);
  assert.equal(master.role, 'master');
  assert.equal(master.masterReplOffset, 1000);
  assert.deepEqual(master.replicas, [
    { address: '127.0.0.1:7001', state: 'online', offset: 900 },
    { address: '[::1]:7002', state: 'wait_bgsave', offset: 0 },
  ]);
  const replica = parseReplicationInfo(REPLICA('up', 1, 900));
  assert.deepEqual([replica.role, replica.masterLinkStatus, replica.masterLastIoSecondsAgo, replica.replicaOffset], ['slave', 'up', 1, 900]);
});

test('replicaStatus: lag in bytes and seconds, links down, replicas that do not answer', () => {
  const master = parseReplicationInfo(MASTER);
  assert.deepEqual(replicaStatus('127.0.0.1:7001', parseReplicationInfo(REPLICA('up', 2, 900)), master), {
    address: '127.0.0.1:7001', link: 'up', lagBytes: 100, lastIoSeconds: 2,
  });
  // Read after the master: never a negative lag.
  assert.equal(replicaStatus('127.0.0.1:7001', parseReplicationInfo(REPLICA('up', 0, 1200)), master).lagBytes, 0);
  assert.deepEqual(replicaStatus('127.0.0.1:7001', parseReplicationInfo(REPLICA('down', -1, 900)), null), {
    address: '127.0.0.1:7001', link: 'down', lagBytes: null, lastIoSeconds: null,
  });
  assert.deepEqual(replicaStatus('127.0.0.1:7001', { error: 'connect ECONNREFUSED' }, master), {
    address: '127.0.0.1:7001', link: 'unknown', lagBytes: 100, lastIoSeconds: null, error: 'connect ECONNREFUSED',
  });
  assert.equal(replicaStatus('127.0.0.1:7009', { error: 'timeout' }, master).link, 'down');
  assert.equal(replicaStatus('127.0.0.1:7009', { error: 'timeout' }, null).link, 'unknown');
  const promoted = replicaStatus('127.0.0.1:7001', parseReplicationInfo(MASTER), master);
  assert.equal(promoted.link, 'down');
  assert.match(promoted.error ?? '', /role master/);
});
