// Specification of the pure parts of shardis/admin: preparing a table for the
// coordinator (src/admin/table-write.ts) and reading the client registry
// (src/admin/registry.ts). No socket is opened here.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { TopologyError } from '../../src/errors.js';
import { checkDistinctAddresses, prepareTable, storedVersion } from '../../src/admin/table-write.js';
import { CLIENT_EXPIRY_GRACE_MS, clientStatuses } from '../../src/admin/registry.js';
import { parseTableJson } from '../../src/topology/format.js';

const groups = [
  { id: 1, master: '10.0.0.1:6379' },
  { id: 2, master: '10.0.0.2:6379', replicas: ['10.0.0.3:6379'] },
];

describe('prepareTable', () => {
  test('stores slots as merged ranges, ascending, whatever pieces they were given in', () => {
    const { table, json } = prepareTable(
      {
        groups,
        slots: [
          { from: 512, to: 1023, group: 2 },
          { from: 0, to: 99, group: 1 },
          { from: 100, to: 511, group: 1 },
        ],
      },
      3,
      'prod',
    );
    assert.deepEqual(JSON.parse(json).slots, [
      { from: 0, to: 511, group: 1 },
      { from: 512, to: 1023, group: 2 },
    ]);
    assert.equal(table.version, 3);
    assert.equal(table.cluster, 'prod');
    assert.deepEqual(parseTableJson(json, 'prod').owner, table.owner, 'what is stored reads back as the same table');
  });

  test('the whole table is validated: an unowned slot is refused', () => {
    assert.throws(() => prepareTable({ groups, slots: [{ from: 0, to: 1000, group: 1 }] }, 2, 'prod'), TopologyError);
  });

  test('migrations are kept', () => {
    const migrations = [{ slots: [[0, 9]] as [number, number][], from: 1, to: 2, state: 'pending' as const }];
    const { table } = prepareTable({ groups, slots: [{ from: 0, to: 1023, group: 1 }], migrations }, 2, 'prod');
    assert.deepEqual(table.migrations.map((m) => ({ ...m, slots: m.slots.map((r) => [...r]) })), migrations);
  });
});

describe('checkDistinctAddresses', () => {
  test('a server in two groups (master or replica, host case aside) is refused, naming both groups', () => {
    assert.throws(() => checkDistinctAddresses([...groups, { id: 3, master: '10.0.0.1:6379' }]), /10\.0\.0\.1:6379 is used by group 1 and by group 3/);
    assert.throws(() => checkDistinctAddresses([...groups, { id: 3, master: '10.0.0.3:6379' }]), /used by group 2 and by group 3/);
    assert.throws(() => checkDistinctAddresses([{ id: 1, master: 'Redis-A:1' }, { id: 2, master: 'redis-a:1' }]), TopologyError);
  });

  test('a group listing one address twice is refused; distinct addresses pass', () => {
    assert.throws(() => checkDistinctAddresses([{ id: 1, master: 'a:1', replicas: ['a:1'] }]), /group 1 lists a:1 twice/);
    checkDistinctAddresses([...groups, { id: 3, master: '10.0.0.1:6380' }]);
  });
});

describe('storedVersion (what the write script compares)', () => {
  test('no table is 0; the first "version" field is the version', () => {
    assert.equal(storedVersion(null), 0);
    assert.equal(storedVersion('{"format":1,"cluster":"c","version":17,"slotCount":1024}'), 17);
    assert.equal(storedVersion('{ "version" :\n 4 }'), 4);
  });

  test('no version, or one below 1, is -1 (unreadable)', () => {
    assert.equal(storedVersion('{ not json'), -1);
    assert.equal(storedVersion('{"version":0}'), -1);
    assert.equal(storedVersion('{"version":"3"}'), -1);
  });
});

describe('clientStatuses', () => {
  const entry = (at: number, leaseMs = 10_000): string => JSON.stringify({ version: 3, at, host: 'h', pid: 7, name: 'shardis:x', leaseMs });

  test('ages on the coordinator clock; expired only past lease + grace; sorted by id', () => {
    const now = 1_000_000;
    const limit = now - 10_000 - CLIENT_EXPIRY_GRACE_MS;
    const { clients, expired } = clientStatuses({ now, entries: { b: entry(now - 500), a: entry(limit), c: entry(limit - 1) } });
    assert.deepEqual(clients.map((c) => [c.id, c.ageMs, c.expired, c.removed]), [
      ['a', now - limit, false, false],
      ['b', 500, false, false],
      ['c', now - limit + 1, true, false],
    ]);
    assert.deepEqual(expired, [['c', entry(limit - 1)]]);
  });

  test('entries that are not registry entries are neither listed nor offered for removal', () => {
    const { clients, expired } = clientStatuses({ now: 10, entries: { junk: 'nope', half: '{"version":1}' } });
    assert.deepEqual(clients, []);
    assert.deepEqual(expired, []);
  });

  test('an entry stamped after the clock was read has age 0, not a negative age', () => {
    assert.equal(clientStatuses({ now: 100, entries: { a: entry(150) } }).clients[0]!.ageMs, 0);
  });
});
