// Specification of src/cli/args.ts and src/cli/format.ts: what the CLI
// accepts on its command line, and how it prints sizes, durations and slots.
// A bad argument is a commander InvalidArgumentError (a usage error, exit 2)
// whose message says what was expected.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError } from 'commander';
import {
  addGroupSpec,
  collect,
  collectAll,
  missingSentinels,
  parseClusterName,
  parseCoordinatorUrl,
  parseGroupId,
  parseGroupSpec,
  parseHostPortList,
  parseInteger,
  parseMs,
  parseSentinelName,
  parseSlotList,
  parseWeight,
} from '../../src/cli/args.js';
import { bytes, columns, duration, sentinelLines, slotsOf, tableLines } from '../../src/cli/format.js';
import { validateTable } from '../../src/topology/table.js';

function refuses(parse: () => unknown, pattern: RegExp): void {
  assert.throws(parse, (error: unknown) => error instanceof InvalidArgumentError && pattern.test(error.message));
}

describe('parseGroupSpec', () => {
  test('id=master', () => {
    assert.deepEqual(parseGroupSpec('1=10.0.0.1:6379'), { id: 1, master: '10.0.0.1:6379' });
  });
  test('id=master,replica,replica (IPv6 in brackets)', () => {
    assert.deepEqual(parseGroupSpec('12=10.0.0.1:6379,[::1]:6380,host-b:6381'), {
      id: 12,
      master: '10.0.0.1:6379',
      replicas: ['[::1]:6380', 'host-b:6381'],
    });
  });
  test('refuses a missing id, a bad id, a bad address', () => {
    refuses(() => parseGroupSpec('10.0.0.1:6379'), /<id>=<host:port>/);
    refuses(() => parseGroupSpec('0=10.0.0.1:6379'), /positive integer/);
    refuses(() => parseGroupSpec('x=10.0.0.1:6379'), /positive integer/);
    refuses(() => parseGroupSpec('1=10.0.0.1'), /host:port/);
    refuses(() => parseGroupSpec('1=10.0.0.1:6379,'), /host:port/);
    refuses(() => parseGroupSpec('1=10.0.0.1:70000'), /host:port/);
  });
});

describe('Sentinel-named groups', () => {
  test('id=sentinel:name (names may hold ".", "_", "-" and ":")', () => {
    assert.deepEqual(parseGroupSpec('2=sentinel:mymaster'), { id: 2, sentinel: { name: 'mymaster' } });
    assert.deepEqual(parseGroupSpec('3=sentinel:eu-1.g_3:a'), { id: 3, sentinel: { name: 'eu-1.g_3:a' } });
    // A number is a name here, not a port: "sentinel:" always means Sentinel.
    assert.deepEqual(parseGroupSpec('4=sentinel:6379'), { id: 4, sentinel: { name: '6379' } });
  });
  test('refuses an empty or bad name, and replicas after a name', () => {
    refuses(() => parseGroupSpec('2=sentinel:'), /Sentinel master name/);
    refuses(() => parseGroupSpec('2=sentinel:my master'), /Sentinel master name/);
    refuses(() => parseGroupSpec('2=sentinel:g2,10.0.0.2:6379'), /lists no replicas/);
    refuses(() => parseGroupSpec('x=sentinel:g2'), /positive integer/);
    refuses(() => parseGroupSpec('sentinel:g2'), /<id>=sentinel:<name>/);
    assert.equal(parseSentinelName('g1'), 'g1');
    refuses(() => parseSentinelName('a'.repeat(129)), /1-128/);
  });
  test('--sentinels: a comma list, repeatable', () => {
    assert.deepEqual(parseHostPortList('10.0.0.9:26379, [::1]:26380'), ['10.0.0.9:26379', '[::1]:26380']);
    refuses(() => parseHostPortList('10.0.0.9:26379,'), /host:port/);
    refuses(() => parseHostPortList('10.0.0.9'), /host:port/);
    const add = collectAll(parseHostPortList);
    assert.deepEqual(add('c:3', add('a:1,b:2', undefined)), ['a:1', 'b:2', 'c:3']);
  });
  test('missingSentinels: a Sentinel-named group needs --sentinels', () => {
    const groups = [parseGroupSpec('1=10.0.0.1:6379'), parseGroupSpec('2=sentinel:g2'), parseGroupSpec('3=sentinel:g3')];
    assert.equal(missingSentinels(groups, ['s:26379']), null);
    assert.equal(missingSentinels(groups.slice(0, 1), []), null);
    assert.match(missingSentinels(groups.slice(0, 2), [])!, /^group 2 \(sentinel:g2\) is named by Sentinel: add --sentinels <host:port,...>/);
    assert.match(missingSentinels(groups, [])!, /^group 2 \(sentinel:g2\), 3 \(sentinel:g3\) are named by Sentinel: add --sentinels/);
  });
  test('group add: exactly one of <host:port> and --sentinel', () => {
    assert.deepEqual(addGroupSpec({ id: 3, master: 'h:1' }), { id: 3, master: 'h:1' });
    assert.deepEqual(addGroupSpec({ id: 3, master: 'h:1', replicas: ['h:2'] }), { id: 3, master: 'h:1', replicas: ['h:2'] });
    assert.deepEqual(addGroupSpec({ id: 3, master: 'h:1', replicas: [] }), { id: 3, master: 'h:1' });
    assert.deepEqual(addGroupSpec({ id: 3, sentinel: 'g3' }), { id: 3, sentinel: { name: 'g3' } });
    refuses(() => addGroupSpec({ id: 3 }), /missing group 3's master: give its <host:port>, or --sentinel <name>/);
    refuses(() => addGroupSpec({ id: 3, master: 'h:1', sentinel: 'g3' }), /either its master <host:port> or --sentinel <name>, not both/);
    refuses(() => addGroupSpec({ id: 3, sentinel: 'g3', replicas: ['h:2'] }), /--replica does not go with --sentinel/);
  });
  test('tables print a Sentinel-named group as "sentinel <name>", and their sentinels', () => {
    const table = validateTable({
      groups: [{ id: 1, master: 'h:1', replicas: ['h:2'] }, { id: 2, sentinel: { name: 'g2' } }],
      slots: [{ from: 0, to: 511, group: 1 }, { from: 512, to: 1023, group: 2 }],
      sentinels: ['s:1', 's:2'],
    });
    assert.deepEqual(tableLines(table), [
      '  group  master       replicas  slots  ranges',
      '  1      h:1          h:2       512    0..511',
      '  2      sentinel g2  -         512    512..1023',
    ]);
    assert.deepEqual(sentinelLines(table), ['sentinels: s:1, s:2']);
    assert.deepEqual(sentinelLines(validateTable({ groups: [{ id: 1, master: 'h:1' }], slots: [{ from: 0, to: 1023, group: 1 }] })), []);
  });
});

describe('parseSlotList', () => {
  test('slots and ranges, with - or ..', () => {
    assert.deepEqual(parseSlotList('0-99,512,600..700'), [
      { from: 0, to: 99 },
      { from: 512, to: 512 },
      { from: 600, to: 700 },
    ]);
    assert.deepEqual(parseSlotList('1023'), [{ from: 1023, to: 1023 }]);
  });
  test('refuses slots out of range, backwards ranges and junk', () => {
    refuses(() => parseSlotList('1024'), /0\.\.1023/);
    refuses(() => parseSlotList('0-1024'), /out of range/);
    refuses(() => parseSlotList('10-5'), /backwards/);
    refuses(() => parseSlotList('a-b'), /like 0-99/);
    refuses(() => parseSlotList(''), /like 0-99/);
    refuses(() => parseSlotList('1,,2'), /like 0-99/);
    refuses(() => parseSlotList('-5'), /like 0-99/);
  });
});

describe('other arguments', () => {
  test('weights: id=w, w >= 0', () => {
    assert.deepEqual(parseWeight('2=3'), [2, 3]);
    assert.deepEqual(parseWeight('1=0.5'), [1, 0.5]);
    assert.deepEqual(parseWeight('4=0'), [4, 0]);
    refuses(() => parseWeight('2'), /<group id>=<weight>/);
    refuses(() => parseWeight('2=-1'), /number >= 0/);
    refuses(() => parseWeight('2=x'), /number >= 0/);
  });
  test('group ids, integers, coordinator URLs, cluster names', () => {
    assert.equal(parseGroupId('7'), 7);
    refuses(() => parseGroupId('-1'), /positive integer/);
    assert.equal(parseInteger('--groups', '16', 1, 16), 16);
    assert.equal(parseMs('--batch-ms', '0.5', 0, 60_000, true), 0.5);
    assert.equal(parseMs('--pause-ms', '0', 0, 60_000), 0);
    refuses(() => parseMs('--batch-ms', '0', 0, 60_000, true), /--batch-ms must be a number of ms above 0 and at most 60000, got "0"/);
    refuses(() => parseMs('--pause-ms', '-1', 0, 60_000), /--pause-ms must be a number of ms from 0 to 60000, got "-1"/);
    refuses(() => parseMs('--pause-ms', '1e3', 0, 60_000), /--pause-ms must be a number of ms/);
    refuses(() => parseInteger('--groups', '17', 1, 16), /--groups must be an integer from 1 to 16, got "17"/);
    assert.equal(parseCoordinatorUrl('rediss://user:pw@host:6380/2'), 'rediss://user:pw@host:6380/2');
    refuses(() => parseCoordinatorUrl('127.0.0.1:6379'), /redis:\/\//);
    assert.equal(parseClusterName('prod-eu.1'), 'prod-eu.1');
    refuses(() => parseClusterName('a b'), /cluster must be a name/);
    refuses(() => parseClusterName('{x}'), /cluster must be a name/);
  });
  test('collect keeps every value of a repeated option, in order', () => {
    const add = collect(parseGroupId);
    assert.deepEqual(add('3', add('1', undefined)), [1, 3]);
  });
});

describe('format', () => {
  test('bytes and durations', () => {
    assert.equal(bytes(null), '?');
    assert.equal(bytes(512), '512 B');
    assert.equal(bytes(1536), '1.5 KB');
    assert.equal(bytes(3 * 1024 * 1024), '3.0 MB');
    assert.equal(duration(250), '250ms');
    assert.equal(duration(1500), '1.5s');
    assert.equal(duration(90_000), '1m30s');
    assert.equal(duration(2 * 3600_000 + 60_000), '2h1m');
  });
  test('columns pad every column but the last', () => {
    assert.deepEqual(columns([['a', 'bb', 'c'], ['ddd', 'e', 'f']]), ['  a    bb  c', '  ddd  e   f']);
  });
  test('slotsOf names the ranges and counts the slots of a group', () => {
    const table = validateTable({
      groups: [{ id: 1, master: 'h:1' }, { id: 2, master: 'h:2' }, { id: 3, master: 'h:3' }],
      slots: [{ from: 0, to: 9, group: 1 }, { from: 10, to: 10, group: 2 }, { from: 11, to: 1022, group: 1 }, { from: 1023, to: 1023, group: 2 }],
    });
    assert.deepEqual(slotsOf(table, 1), { ranges: '0..9, 11..1022', count: 1022 });
    assert.deepEqual(slotsOf(table, 2), { ranges: '10, 1023', count: 2 });
    assert.deepEqual(slotsOf(table, 3), { ranges: '-', count: 0 });
  });
});
