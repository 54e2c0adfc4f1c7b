// Specification of src/errors.ts: every error shardis raises is a ShardisError
// with a stable `code`; callers match on the class or the code, never on the
// message. Messages still say what went wrong and what to do.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as errors from '../../src/errors.js';
import {
  AckTimeoutError,
  ArgumentError,
  CommandTimeoutError,
  GroupQueueFullError,
  ClusterExistsError,
  CommandNotAllowedError,
  CoordinatorUnavailableError,
  CrossSlotError,
  GroupUnavailableError,
  MigrationInProgressError,
  MigrationLockedError,
  MigrationStateError,
  MigrationStoppedError,
  PartialFailureError,
  ShardisError,
  SlotsNotEmptyError,
  StaleTopologyError,
  TargetNotEmptyError,
  VersionConflictError,
  TopologyError,
  UnknownCommandError,
} from '../../src/errors.js';

/** One instance of every error class, with the code it must carry. */
const samples: Array<[string, ShardisError, string]> = [
  ['TopologyError', new TopologyError('slot 5 is owned twice'), 'ERR_TOPOLOGY'],
  ['CrossSlotError', new CrossSlotError('rename', ['a', 'b'], [1, 2]), 'ERR_CROSS_SLOT'],
  ['GroupUnavailableError', new GroupUnavailableError(3, '10.0.0.3:6379', 'connection closed'), 'ERR_GROUP_UNAVAILABLE'],
  ['PartialFailureError', new PartialFailureError('mset', [{ group: 1, result: 'OK' }, { group: 2, error: new Error('boom') }]), 'ERR_PARTIAL_FAILURE'],
  ['CommandNotAllowedError', new CommandNotAllowedError('select', 'one database'), 'ERR_COMMAND_NOT_ALLOWED'],
  ['UnknownCommandError', new UnknownCommandError('nosuch'), 'ERR_UNKNOWN_COMMAND'],
  ['ArgumentError', new ArgumentError('bad cursor'), 'ERR_ARGUMENT'],
  ['StaleTopologyError', new StaleTopologyError('lease ran out', 4), 'ERR_STALE_TOPOLOGY'],
  ['VersionConflictError', new VersionConflictError(4, 5), 'ERR_VERSION_CONFLICT'],
  ['CoordinatorUnavailableError', new CoordinatorUnavailableError('no answer'), 'ERR_COORDINATOR_UNAVAILABLE'],
  ['ClusterExistsError', new ClusterExistsError('prod', 3), 'ERR_CLUSTER_EXISTS'],
  ['SlotsNotEmptyError', new SlotsNotEmptyError(2, [{ key: 'user:1', slot: 5, group: 1 }]), 'ERR_SLOTS_NOT_EMPTY'],
  ['MigrationLockedError', new MigrationLockedError('prod', { host: 'h1', pid: 42, since: 0 }, 5000), 'ERR_MIGRATION_LOCKED'],
  ['MigrationInProgressError', new MigrationInProgressError('prod', 'a job moves slots 0..9'), 'ERR_MIGRATION_IN_PROGRESS'],
  ['TargetNotEmptyError', new TargetNotEmptyError(2, [{ key: 'stray', slot: 9, group: 2 }]), 'ERR_TARGET_NOT_EMPTY'],
  ['AckTimeoutError', new AckTimeoutError(7, ['c1', 'c2'], 60000, 'preparing'), 'ERR_ACK_TIMEOUT'],
  ['MigrationStoppedError', new MigrationStoppedError('migrating'), 'ERR_MIGRATION_STOPPED'],
  ['MigrationStateError', new MigrationStateError('no job to resume'), 'ERR_MIGRATION_STATE'],
  ['CommandTimeoutError', new CommandTimeoutError(2, '10.0.0.2:6379', 'get', 500), 'ERR_COMMAND_TIMEOUT'],
  ['GroupQueueFullError', new GroupQueueFullError(2, '10.0.0.2:6379', 10000), 'ERR_GROUP_QUEUE_FULL'],
];

describe('every error class', () => {
  for (const [className, err, code] of samples) {
    test(`${className}: code ${code}, name "${className}", instanceof ShardisError and Error`, () => {
      assert.equal(err.code, code);
      assert.equal(err.name, className);
      assert.ok(err instanceof ShardisError);
      assert.ok(err instanceof Error);
      assert.equal(err.constructor.name, className);
      assert.ok(typeof err.stack === 'string' && err.stack.includes(className), 'the stack starts with the class name');
      assert.ok(err.message.length > 0);
    });
  }

  test('the code does not change with the message', () => {
    assert.equal(new TopologyError('a').code, new TopologyError('b').code);
    assert.equal(new ArgumentError('a').code, new ArgumentError('b').code);
  });

  test('codes are distinct between classes', () => {
    const codes = samples.map(([, , code]) => code);
    assert.equal(new Set(codes).size, codes.length);
  });

  test('every exported error class is covered above', () => {
    const exported = Object.entries(errors)
      .filter(([, value]) => typeof value === 'function' && value.prototype instanceof ShardisError)
      .map(([name]) => name)
      .sort();
    assert.deepEqual(exported, samples.map(([name]) => name).sort());
  });

  test('ShardisError itself carries the code it is given, and its name', () => {
    const err = new ShardisError('ERR_X', 'message');
    assert.equal(err.code, 'ERR_X');
    assert.equal(err.name, 'ShardisError');
    assert.equal(err.message, 'message');
  });

  test('a subclass defined by a user gets its own name', () => {
    class MyError extends ShardisError {}
    assert.equal(new MyError('ERR_MINE', 'm').name, 'MyError');
  });

  test('a cause can be attached', () => {
    const cause = new Error('socket closed');
    assert.equal(new TopologyError('bad', { cause }).cause, cause);
    assert.equal(new GroupUnavailableError(1, 'h:1', 'down', { cause }).cause, cause);
  });

  test('errors are told apart by class', () => {
    assert.ok(!(new TopologyError('x') instanceof CrossSlotError));
    assert.ok(!(new ArgumentError('x') instanceof TopologyError));
  });
});

describe('CrossSlotError', () => {
  test('lists every key with its slot, names the command, and says nothing was sent', () => {
    const err = new CrossSlotError('rename', ['user:1', 'user:2'], [101, 202]);
    assert.equal(err.command, 'rename');
    assert.deepEqual(err.keys, ['user:1', 'user:2']);
    assert.deepEqual(err.slots, [101, 202]);
    assert.match(err.message, /^RENAME\b/);
    assert.match(err.message, /user:1 \(slot 101\)/);
    assert.match(err.message, /user:2 \(slot 202\)/);
    assert.match(err.message, /Nothing was sent/);
  });

  test('suggests a hash tag as the remedy', () => {
    assert.match(new CrossSlotError('eval', ['a', 'b'], [1, 2]).message, /hash tag/);
  });

  test('shows at most 8 keys in the message, then "...", but keeps all of them in .keys', () => {
    const keys = Array.from({ length: 12 }, (_, i) => `k${i}`);
    const slots = keys.map((_, i) => i);
    const err = new CrossSlotError('msetnx', keys, slots);
    assert.match(err.message, /k7 \(slot 7\)/);
    assert.doesNotMatch(err.message, /k8 \(slot 8\)/);
    assert.match(err.message, /\.\.\./);
    assert.equal(err.keys.length, 12);
  });

  test('Buffer keys are shown as text', () => {
    const err = new CrossSlotError('rename', [Buffer.from('bufkey'), 'b'], [3, 4]);
    assert.match(err.message, /bufkey \(slot 3\)/);
  });
});

describe('PartialFailureError', () => {
  const boom1 = new Error('READONLY You can\'t write against a read only replica');
  const boom3 = new Error('connection closed');
  const err = new PartialFailureError('mset', [
    { group: 1, error: boom1 },
    { group: 2, result: 'OK' },
    { group: 3, error: boom3 },
    { group: 4, result: 'OK' },
  ]);

  test('exposes which groups failed and which succeeded (MSET and DEL are not atomic across groups)', () => {
    assert.equal(err.command, 'mset');
    assert.deepEqual(err.failed.map((o) => o.group), [1, 3]);
    assert.deepEqual(err.succeeded.map((o) => o.group), [2, 4]);
    assert.equal(err.failed[0]!.error, boom1);
    assert.equal(err.succeeded[0]!.result, 'OK');
  });

  test('the message names the command, the failed groups with their errors, and the groups that succeeded', () => {
    assert.match(err.message, /^MSET failed on 2 of 4 groups/);
    assert.match(err.message, /group 1: READONLY/);
    assert.match(err.message, /group 3: connection closed/);
    assert.match(err.message, /succeeded on groups 2, 4/);
  });

  test('cause is the first failure', () => {
    assert.equal(err.cause, boom1);
  });

  test('when every group failed, the message says it succeeded on none', () => {
    const all = new PartialFailureError('del', [{ group: 1, error: boom1 }, { group: 2, error: boom3 }]);
    assert.match(all.message, /failed on 2 of 2 groups/);
    assert.match(all.message, /succeeded on none/);
    assert.deepEqual(all.succeeded, []);
  });

  test('a group whose reply was undefined still counts as succeeded (only `error` marks a failure)', () => {
    const e = new PartialFailureError('ping', [{ group: 1 }, { group: 2, error: boom3 }]);
    assert.deepEqual(e.succeeded.map((o) => o.group), [1]);
  });
});

describe('GroupUnavailableError', () => {
  test('carries the group id and address and names both in the message', () => {
    const err = new GroupUnavailableError(3, '10.0.0.3:6379', 'connection closed');
    assert.equal(err.group, 3);
    assert.equal(err.address, '10.0.0.3:6379');
    assert.match(err.message, /group 3\b/);
    assert.match(err.message, /10\.0\.0\.3:6379/);
    assert.match(err.message, /connection closed/);
  });
});

describe('CommandTimeoutError and GroupQueueFullError', () => {
  test('CommandTimeoutError names the group, its address, the command and the timeout, and says it may have been applied', () => {
    const cause = new Error('Command timed out');
    const err = new CommandTimeoutError(2, '10.0.0.2:6379', 'get', 500, 'it is not connected (reconnecting)', { cause });
    assert.equal(err.group, 2);
    assert.equal(err.address, '10.0.0.2:6379');
    assert.equal(err.command, 'get');
    assert.equal(err.timeoutMs, 500);
    assert.equal(err.cause, cause);
    assert.match(err.message, /^group 2 \(10\.0\.0\.2:6379\) did not answer GET within 500 ms \(commandTimeout\); it is not connected/);
    assert.match(err.message, /may or may not have been applied/);
    assert.match(new CommandTimeoutError(1, 'h:1', '', 10).message, /did not answer the command within 10 ms/);
  });

  test('GroupQueueFullError names the group, its address and the limit, and says what to do', () => {
    const err = new GroupQueueFullError(3, '10.0.0.3:6379', 10000);
    assert.equal(err.group, 3);
    assert.equal(err.address, '10.0.0.3:6379');
    assert.equal(err.limit, 10000);
    assert.match(err.message, /group 3 \(10\.0\.0\.3:6379\) is not connected and already has 10000 commands waiting/);
    assert.match(err.message, /maxQueuedCommands/);
    assert.match(err.message, /not sent/);
    assert.match(err.message, /commandTimeout/);
  });
});

describe('CommandNotAllowedError and UnknownCommandError', () => {
  test('CommandNotAllowedError names the command and gives the reason', () => {
    const err = new CommandNotAllowedError('select', 'a sharded client has one logical database');
    assert.equal(err.command, 'select');
    assert.match(err.message, /^SELECT is not allowed/);
    assert.match(err.message, /one logical database/);
  });

  test('UnknownCommandError names the command and points to client.group(id)', () => {
    const err = new UnknownCommandError('frobnicate');
    assert.equal(err.command, 'frobnicate');
    assert.match(err.message, /'frobnicate'/);
    assert.match(err.message, /group\(id\)/);
  });
});

describe('ClusterExistsError', () => {
  test('names the cluster and the version found, says nothing was written and how to overwrite on purpose', () => {
    const err = new ClusterExistsError('prod', 7);
    assert.equal(err.cluster, 'prod');
    assert.equal(err.version, 7);
    assert.match(err.message, /cluster "prod" already has a slot table \(version 7\)/);
    assert.match(err.message, /nothing was written/);
    assert.match(err.message, /force/);
  });

  test('an unreadable table (version -1) is called unreadable', () => {
    assert.match(new ClusterExistsError('prod', -1).message, /an unreadable slot table/);
  });
});

describe('SlotsNotEmptyError', () => {
  const keys = [
    { key: 'user:1', slot: 700, group: 1 },
    { key: 'user:2', slot: 5, group: 3 },
    { key: 'user:3', slot: 700, group: 1 },
  ];

  test('carries the receiving group, the keys with slot and group, and their distinct slots ascending', () => {
    const err = new SlotsNotEmptyError(2, keys);
    assert.equal(err.to, 2);
    assert.deepEqual(err.keys, keys);
    assert.deepEqual(err.slots, [5, 700]);
  });

  test('names every key with its slot and group, and says that moving slots with keys is a live migration', () => {
    const err = new SlotsNotEmptyError(2, keys);
    assert.match(err.message, /user:1 \(slot 700, group 1\)/);
    assert.match(err.message, /user:2 \(slot 5, group 3\)/);
    assert.match(err.message, /live migration/);
    assert.match(err.message, /shardis migrate/);
    assert.match(err.message, /Nothing was changed/);
  });

  test('keys on the receiving group itself are called leftovers to delete, not a migration', () => {
    const err = new SlotsNotEmptyError(2, [{ key: 'stray', slot: 9, group: 2 }]);
    assert.match(err.message, /Group 2 holds keys in slots it does not own/);
    assert.doesNotMatch(err.message, /live migration/);
  });
});

describe('migration errors', () => {
  test('MigrationLockedError names the holder, how long the lock lasts, and what to do', () => {
    const err = new MigrationLockedError('prod', { host: 'box1', pid: 4242, since: Date.UTC(2024, 0, 2) }, 1234);
    assert.equal(err.cluster, 'prod');
    assert.deepEqual(err.holder, { host: 'box1', pid: 4242, since: Date.UTC(2024, 0, 2) });
    assert.equal(err.ttlMs, 1234);
    assert.equal(err.lost, false);
    assert.match(err.message, /held by a migrator on box1 \(pid 4242, since 2024-01-02T00:00:00.000Z\)/);
    assert.match(err.message, /expire \(in 1234 ms\)/);
    assert.match(err.message, /Nothing was changed/);
  });

  test('MigrationLockedError for a lost lock says the job is kept for resume', () => {
    const err = new MigrationLockedError('prod', null, -1, true);
    assert.equal(err.lost, true);
    assert.match(err.message, /lost the migration lock/);
    assert.match(err.message, /resumeMigration/);
  });

  test('TargetNotEmptyError names the keys and the way out (clearTarget)', () => {
    const err = new TargetNotEmptyError(3, [{ key: 'a', slot: 1, group: 3 }, { key: 'b', slot: 2, group: 3 }]);
    assert.equal(err.group, 3);
    assert.equal(err.keys.length, 2);
    assert.match(err.message, /group 3 already holds keys/);
    assert.match(err.message, /a \(slot 1\), b \(slot 2\)/);
    assert.match(err.message, /clearTarget/);
  });

  test('AckTimeoutError names the clients (at most 10) and says the job is kept', () => {
    const clients = Array.from({ length: 12 }, (_, i) => `client${i}`);
    const err = new AckTimeoutError(9, clients, 1000, 'pending');
    assert.equal(err.version, 9);
    assert.deepEqual(err.clients, clients);
    assert.match(err.message, /12 client\(s\) did not acknowledge table version 9/);
    assert.match(err.message, /client9, \.\.\. \(12 in all\)/);
    assert.doesNotMatch(err.message, /client10/);
    assert.match(err.message, /resumeMigration/);
    assert.match(err.message, /abortMigration/);
  });

  test('MigrationStoppedError: abort is offered only before keys move; before a job, nothing changed', () => {
    assert.match(new MigrationStoppedError('preparing').message, /abortMigration/);
    assert.doesNotMatch(new MigrationStoppedError('migrating').message, /abortMigration/);
    assert.match(new MigrationStoppedError('migrating').message, /resumeMigration/);
    assert.equal(new MigrationStoppedError(null).phase, null);
    assert.match(new MigrationStoppedError(null).message, /nothing was changed/);
  });
});
