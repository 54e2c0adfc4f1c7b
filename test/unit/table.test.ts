// Specification of src/topology/table.ts: the slot table a client routes by
// (DESIGN §2). A table that fails validation is rejected with a TopologyError
// that says what is wrong, so an operator can fix it from the message alone.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { SLOT_COUNT } from '../../src/slot.js';
import { parseTableJson, tableToJson } from '../../src/topology/format.js';
import { ShardisError, TopologyError } from '../../src/errors.js';
import {
  evenSlotRanges,
  formatRanges,
  groupLabel,
  parseAddress,
  validateTable,
  type GroupSpec,
  type SlotRange,
  type SlotTable,
} from '../../src/topology/table.js';

/** Three groups, slots split 0..340 / 341..681 / 682..1023. */
function threeGroups(): { version: number; groups: Array<{ id: number; master: string; replicas?: string[] }>; slots: SlotRange[] } {
  return {
    version: 17,
    groups: [
      { id: 1, master: '10.0.0.1:6379', replicas: ['10.0.0.2:6379'] },
      { id: 2, master: '10.0.0.3:6380' },
      { id: 7, master: '[::1]:6381', replicas: [] },
    ],
    slots: [
      { from: 0, to: 340, group: 1 },
      { from: 341, to: 681, group: 2 },
      { from: 682, to: 1023, group: 7 },
    ],
  };
}

/** A table input with `patch` applied on top of threeGroups(). */
function withPatch(patch: Record<string, unknown>): Record<string, unknown> {
  return { ...threeGroups(), ...patch };
}

/** Asserts that validateTable rejects `input` with a TopologyError whose message matches every pattern. */
function rejects(input: unknown, ...patterns: RegExp[]): TopologyError {
  let caught: unknown;
  try {
    validateTable(input);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof TopologyError, `expected a TopologyError, got ${String(caught)}`);
  assert.equal(caught.code, 'ERR_TOPOLOGY');
  for (const pattern of patterns) assert.match(caught.message, pattern);
  return caught;
}

/** True when Object.prototype has been given a property named `name` (prototype pollution). */
function polluted(name: string): boolean {
  return Object.prototype.hasOwnProperty.call(Object.prototype, name) || name in ({} as Record<string, unknown>);
}

describe('validateTable: a valid table', () => {
  test('a 3-group table is accepted and keeps version, groups and slot ranges', () => {
    const table = validateTable(threeGroups());
    assert.equal(table.version, 17);
    assert.deepEqual(
      table.groups.map((g) => [g.id, g.master, [...(g.replicas ?? [])]]),
      [
        [1, '10.0.0.1:6379', ['10.0.0.2:6379']],
        [2, '10.0.0.3:6380', []],
        [7, '[::1]:6381', []],
      ],
    );
    assert.deepEqual(table.slots.map((r) => ({ ...r })), threeGroups().slots);
  });

  test('owner[slot] is the id of the group that owns the slot, for all 1024 slots', () => {
    const table = validateTable(threeGroups());
    assert.ok(table.owner instanceof Int32Array);
    assert.equal(table.owner.length, SLOT_COUNT);
    for (let slot = 0; slot < SLOT_COUNT; slot++) {
      const expected = slot <= 340 ? 1 : slot <= 681 ? 2 : 7;
      assert.equal(table.owner[slot], expected, `slot ${slot}`);
    }
  });

  test('ranges may be listed in any order and be as small as one slot', () => {
    const table = validateTable({
      groups: [{ id: 1, master: 'a:1' }, { id: 2, master: 'b:2' }],
      slots: [
        { from: 513, to: 1023, group: 1 },
        { from: 512, to: 512, group: 2 },
        { from: 0, to: 511, group: 1 },
      ],
    });
    assert.equal(table.owner[511], 1);
    assert.equal(table.owner[512], 2);
    assert.equal(table.owner[513], 1);
  });

  test('a group may own no slot at all (e.g. just added, before a rebalance)', () => {
    const table = validateTable({
      groups: [{ id: 1, master: 'a:1' }, { id: 2, master: 'b:2' }],
      slots: [{ from: 0, to: 1023, group: 1 }],
    });
    assert.equal(table.groups.length, 2);
    assert.ok(table.owner.every((g) => g === 1));
  });

  test('version defaults to 0 for a static table', () => {
    const { groups, slots } = threeGroups();
    assert.equal(validateTable({ groups, slots }).version, 0);
    assert.equal(validateTable({ groups, slots, version: 0 }).version, 0);
  });

  test('replicas default to an empty list', () => {
    const table = validateTable(threeGroups());
    assert.deepEqual([...(table.groups[1]!.replicas ?? ['missing'])], []);
  });

  test('accepts a table that went through JSON (the coordinator stores JSON)', () => {
    const table = validateTable(JSON.parse(JSON.stringify(threeGroups())));
    assert.equal(table.owner[1023], 7);
  });

  test('the table, its groups, replicas and slot ranges are frozen', () => {
    const table = validateTable(threeGroups());
    assert.ok(Object.isFrozen(table), 'table');
    assert.ok(Object.isFrozen(table.groups), 'groups');
    assert.ok(Object.isFrozen(table.slots), 'slots');
    for (const g of table.groups) {
      assert.ok(Object.isFrozen(g), `group ${g.id}`);
      assert.ok(Object.isFrozen(g.replicas), `group ${g.id} replicas`);
    }
    for (const r of table.slots) assert.ok(Object.isFrozen(r), `range ${r.from}..${r.to}`);
    assert.equal(Reflect.set(table, 'version', 99), false, 'version cannot be reassigned');
    assert.equal(table.version, 17);
    assert.throws(() => {
      (table.groups as GroupSpec[]).push({ id: 9, master: 'x:1' });
    }, TypeError);
  });

  test('owner is typed read-only (a typed array cannot be frozen at run time)', () => {
    const table: SlotTable = validateTable(threeGroups());
    const writeOwner = (t: SlotTable): void => {
      // @ts-expect-error SlotTable.owner is Readonly<Int32Array>: writes do not type-check.
      t.owner[0] = 2;
    };
    assert.equal(typeof writeOwner, 'function'); // compiled, never called
    assert.equal(table.owner[0], 1);
  });

  test('the table copies its input: changing the input afterwards changes nothing', () => {
    const input = threeGroups();
    const table = validateTable(input);
    input.groups[0]!.replicas = ['evil:1'];
    input.groups[1]!.id = 99;
    input.slots[0] = { from: 0, to: 340, group: 2 };
    input.version = 1000;
    assert.deepEqual([...table.groups[0]!.replicas!], ['10.0.0.2:6379']);
    assert.equal(table.groups[1]!.id, 2);
    assert.equal(table.slots[0]!.group, 1);
    assert.equal(table.owner[0], 1);
    assert.equal(table.version, 17);
  });
});

describe('validateTable: every slot owned exactly once', () => {
  test('a slot owned twice is rejected, naming the slot and both groups', () => {
    rejects(
      withPatch({
        slots: [
          { from: 0, to: 500, group: 1 },
          { from: 500, to: 681, group: 2 },
          { from: 682, to: 1023, group: 7 },
        ],
      }),
      /slot 500\b/,
      /owned twice/,
      /group 1\b/,
      /group 2\b/,
    );
  });

  test('the same range listed twice for one group is also an overlap', () => {
    rejects(
      withPatch({ slots: [...threeGroups().slots, { from: 10, to: 10, group: 1 }] }),
      /slot 10\b/,
      /owned twice/,
    );
  });

  test('a slot owned by nobody is rejected, listing the missing slots as ranges', () => {
    const err = rejects(
      withPatch({
        slots: [
          { from: 0, to: 9, group: 1 },
          { from: 20, to: 340, group: 1 },
          { from: 341, to: 681, group: 2 },
          { from: 683, to: 1022, group: 7 },
        ],
      }),
      /not owned/,
    );
    assert.match(err.message, /10\.\.19, 682, 1023/);
  });

  test('an empty slot list leaves all slots unowned', () => {
    rejects(withPatch({ slots: [] }), /0\.\.1023/);
  });

  test('a range naming a group that is not in the table is rejected, listing the known groups', () => {
    rejects(
      withPatch({
        slots: [
          { from: 0, to: 681, group: 1 },
          { from: 682, to: 1023, group: 3 },
        ],
      }),
      /slots\[1\]/,
      /682\.\.1023/,
      /unknown group 3\b/,
      /known groups: 1, 2, 7/,
    );
  });

  test('a group id given as a string in a range is an unknown group, not coerced', () => {
    rejects(withPatch({ slots: [{ from: 0, to: 1023, group: '1' }] }), /unknown group "1"/);
  });
});

describe('validateTable: slot range fields', () => {
  const bad: Array<[string, unknown]> = [
    ['a fraction', 1.5],
    ['negative', -1],
    ['1024 (one past the last slot)', 1024],
    ['a string "5"', '5'],
    ['NaN', NaN],
    ['Infinity', Infinity],
    ['null', null],
    ['missing', undefined],
  ];
  for (const [what, value] of bad) {
    test(`from = ${what} is rejected`, () => {
      rejects(withPatch({ slots: [{ from: value, to: 1023, group: 1 }] }), /slots\[0\]\.from/, /0\.\.1023/);
    });
    test(`to = ${what} is rejected`, () => {
      rejects(withPatch({ slots: [{ from: 0, to: value, group: 1 }] }), /slots\[0\]\.to/, /0\.\.1023/);
    });
  }

  test('the offending value is quoted in the message', () => {
    rejects(withPatch({ slots: [{ from: '5', to: 1023, group: 1 }] }), /got "5"/);
    rejects(withPatch({ slots: [{ from: 0, to: 1024, group: 1 }] }), /got 1024/);
  });

  test('from after to is rejected, naming both', () => {
    rejects(withPatch({ slots: [{ from: 600, to: 500, group: 1 }] }), /slots\[0\]/, /600/, /500/);
  });

  test('a range that is not an object is rejected', () => {
    rejects(withPatch({ slots: [null] }), /slots\[0\] must be an object/);
    rejects(withPatch({ slots: [[0, 1023, 1]] }), /slots\[0\] must be an object/);
  });

  test('slots that are not an array are rejected', () => {
    rejects(withPatch({ slots: { from: 0, to: 1023, group: 1 } }), /slots must be an array/);
    rejects(withPatch({ slots: undefined }), /slots must be an array/);
  });
});

describe('validateTable: groups', () => {
  test('a group id listed twice is rejected', () => {
    rejects(
      withPatch({ groups: [{ id: 1, master: 'a:1' }, { id: 1, master: 'b:2' }], slots: [{ from: 0, to: 1023, group: 1 }] }),
      /group 1 is listed twice/,
    );
  });

  const badIds: Array<[string, unknown, RegExp]> = [
    ['0', 0, /got 0\b/],
    ['-1', -1, /got -1\b/],
    ['1.5', 1.5, /got 1\.5\b/],
    ['the string "1"', '1', /got "1"/],
    ['missing', undefined, /groups\[0\]\.id/],
    ['NaN', NaN, /groups\[0\]\.id/],
    ['beyond the safe integers', 2 ** 53, /groups\[0\]\.id/],
  ];
  for (const [what, id, pattern] of badIds) {
    test(`group id ${what} is rejected: ids are positive integers`, () => {
      rejects(withPatch({ groups: [{ id, master: 'a:1' }] }), /groups\[0\]\.id must be a positive integer/, pattern);
    });
  }

  const badMasters: Array<[string, unknown]> = [
    ['no port', 'localhost'],
    ['port 0', 'host:0'],
    ['port 70000', 'host:70000'],
    ['an empty port', 'host:'],
    ['an empty host', ':6379'],
    ['a non-numeric port', 'host:http'],
    ['whitespace', 'host :6379'],
    ['an unbracketed IPv6 address', '::1:6379'],
    ['an empty string', ''],
  ];
  for (const [what, master] of badMasters) {
    test(`a master with ${what} (${JSON.stringify(master)}) is rejected, quoting it`, () => {
      const err = rejects(withPatch({ groups: [{ id: 1, master }] }), /group 1: master/, /host:port/);
      assert.ok(err.message.includes(JSON.stringify(master)), err.message);
    });
  }

  test('a master that is not a string (42) is rejected', () => {
    rejects(withPatch({ groups: [{ id: 1, master: 42 }] }), /group 1: master must be a "host:port" string, got 42/);
  });

  test('a missing master is rejected', () => {
    rejects(withPatch({ groups: [{ id: 1 }] }), /group 1: master/);
  });

  test('replicas must be an array of strings', () => {
    rejects(withPatch({ groups: [{ id: 1, master: 'a:1', replicas: [6379] }] }), /group 1: replicas/);
    rejects(withPatch({ groups: [{ id: 1, master: 'a:1', replicas: 'b:2' }] }), /group 1: replicas/);
    rejects(withPatch({ groups: [{ id: 1, master: 'a:1', replicas: [null] }] }), /group 1: replicas/);
    rejects(withPatch({ groups: [{ id: 1, master: 'a:1', replicas: { 0: 'b:2' } }] }), /group 1: replicas/);
  });

  test('each replica must be a "host:port" address', () => {
    rejects(withPatch({ groups: [{ id: 1, master: 'a:1', replicas: ['b:2', 'nope'] }] }), /group 1: replica/, /"nope"/);
  });

  test('groups must be a non-empty array of objects', () => {
    rejects(withPatch({ groups: [] }), /groups must be a non-empty array/);
    rejects(withPatch({ groups: undefined }), /groups must be a non-empty array/);
    rejects(withPatch({ groups: { 1: { id: 1, master: 'a:1' } } }), /groups must be a non-empty array/);
    rejects(withPatch({ groups: ['a:1'] }), /groups\[0\] must be an object/);
  });
});

describe('validateTable: the table itself', () => {
  const notObjects: Array<[string, unknown]> = [
    ['null', null],
    ['undefined', undefined],
    ['an array', [threeGroups()]],
    ['a string', JSON.stringify(threeGroups())],
    ['a number', 17],
  ];
  for (const [what, input] of notObjects) {
    test(`${what} is not a table`, () => {
      rejects(input, /the slot table must be an object/);
    });
  }

  const badVersions: Array<[string, unknown]> = [
    ['negative', -1],
    ['a fraction', 1.5],
    ['a string', '17'],
    ['NaN', NaN],
    ['null', null],
    ['beyond the safe integers', 2 ** 53],
  ];
  for (const [what, version] of badVersions) {
    test(`a version that is ${what} is rejected`, () => {
      rejects(withPatch({ version }), /version must be a non-negative integer/);
    });
  }
});

describe('validateTable: hostile JSON (prototype pollution)', () => {
  const table = JSON.stringify(threeGroups());

  test('"__proto__" at the root of parsed JSON is rejected and Object.prototype stays clean', () => {
    const input: unknown = JSON.parse(`{"__proto__": {"pollutedRoot": true}, ${table.slice(1)}`);
    rejects(input, /the slot table/, /forbidden key "__proto__"/);
    assert.equal(polluted('pollutedRoot'), false);
  });

  test('"__proto__" inside a group is rejected and Object.prototype stays clean', () => {
    const input: unknown = JSON.parse(
      table.replace('{"id":2,', '{"__proto__": {"pollutedGroup": true, "id": 5}, "id":2,'),
    );
    rejects(input, /groups\[1\]/, /forbidden key "__proto__"/);
    assert.equal(polluted('pollutedGroup'), false);
  });

  test('"__proto__" inside a slot range is rejected and Object.prototype stays clean', () => {
    const input: unknown = JSON.parse(
      table.replace('{"from":341,', '{"__proto__": {"pollutedSlot": true, "group": 1}, "from":341,'),
    );
    rejects(input, /slots\[1\]/, /forbidden key "__proto__"/);
    assert.equal(polluted('pollutedSlot'), false);
  });

  test('a "constructor" key is rejected (root, group, range)', () => {
    rejects(JSON.parse(`{"constructor": {"prototype": {}}, ${table.slice(1)}`), /the slot table/, /forbidden key "constructor"/);
    rejects(JSON.parse(table.replace('{"id":2,', '{"constructor": 1, "id":2,')), /groups\[1\]/, /"constructor"/);
    rejects(JSON.parse(table.replace('{"from":0,', '{"constructor": 1, "from":0,')), /slots\[0\]/, /"constructor"/);
  });

  test('a "prototype" key is rejected', () => {
    rejects(JSON.parse(`{"prototype": {}, ${table.slice(1)}`), /forbidden key "prototype"/);
  });

});

describe('evenSlotRanges', () => {
  for (const n of [1, 2, 3, 7, 1024]) {
    test(`${n} group(s): contiguous ranges covering 0..1023 in the order given, sizes differing by at most 1`, () => {
      const ids = Array.from({ length: n }, (_, i) => 100 + i);
      const ranges = evenSlotRanges(ids);
      assert.equal(ranges.length, n);
      assert.deepEqual(ranges.map((r) => r.group), ids);
      assert.equal(ranges[0]!.from, 0);
      assert.equal(ranges[n - 1]!.to, SLOT_COUNT - 1);
      for (let i = 1; i < n; i++) assert.equal(ranges[i]!.from, ranges[i - 1]!.to + 1, `range ${i} follows range ${i - 1}`);
      const sizes = ranges.map((r) => r.to - r.from + 1);
      assert.ok(sizes.every((s) => s >= 1));
      assert.equal(sizes.reduce((a, b) => a + b, 0), SLOT_COUNT);
      assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `sizes ${Math.min(...sizes)}..${Math.max(...sizes)}`);
      // And it is a table validateTable accepts.
      const table = validateTable({ groups: ids.map((id) => ({ id, master: `h${id}:6379` })), slots: ranges });
      assert.equal(table.owner[0], ids[0]);
      assert.equal(table.owner[1023], ids[n - 1]);
    });
  }

  test('2 groups split at 512; 3 groups give 342/341/341', () => {
    assert.deepEqual(evenSlotRanges([1, 2]), [
      { from: 0, to: 511, group: 1 },
      { from: 512, to: 1023, group: 2 },
    ]);
    assert.deepEqual(
      evenSlotRanges([1, 2, 3]).map((r) => r.to - r.from + 1),
      [342, 341, 341],
    );
  });

  test('0 groups is a TopologyError', () => {
    assert.throws(() => evenSlotRanges([]), TopologyError);
  });

  test('more groups than slots (1025) is a TopologyError', () => {
    assert.throws(
      () => evenSlotRanges(Array.from({ length: 1025 }, (_, i) => i + 1)),
      (err: unknown) => err instanceof TopologyError && /1024/.test(err.message),
    );
  });
});

describe('parseAddress', () => {
  test('"host:port" gives the host and the port as a number', () => {
    assert.deepEqual(parseAddress('10.0.0.1:6379', 'x'), { host: '10.0.0.1', port: 6379 });
    assert.deepEqual(parseAddress('redis.internal:1', 'x'), { host: 'redis.internal', port: 1 });
    assert.deepEqual(parseAddress('localhost:65535', 'x'), { host: 'localhost', port: 65535 });
  });

  test('an IPv6 host is written in brackets, and returned without them', () => {
    assert.deepEqual(parseAddress('[::1]:6379', 'x'), { host: '::1', port: 6379 });
    assert.deepEqual(parseAddress('[fe80::1%eth0]:7000', 'x'), { host: 'fe80::1%eth0', port: 7000 });
  });

  test('a bad address is a TopologyError that starts with what was being parsed and quotes the input', () => {
    for (const bad of ['localhost', 'host:0', 'host:65536', 'host:70000', 'host:', ':1', '::1:6379', '[::1:6379', 'a b:1', 'host:-1', 'host:1.5', 'host:6379\n', '']) {
      assert.throws(
        () => parseAddress(bad, 'group 3: replica'),
        (err: unknown) =>
          err instanceof TopologyError &&
          err instanceof ShardisError &&
          err.message.startsWith('group 3: replica must be "host:port"') &&
          err.message.includes(JSON.stringify(bad)),
        bad,
      );
    }
  });
});

describe('parseAddress: brackets', () => {
  test('brackets are only allowed around an IPv6 host ("[]:1", "a]:1", "[a]b:1" are rejected)', () => {
    for (const bad of ['[]:1', 'a]:1', '[a]b:1']) {
      assert.throws(() => parseAddress(bad, 'group 1: master'), TopologyError, bad);
    }
  });
});

describe('formatRanges', () => {
  test('runs of consecutive slots become "from..to", single slots stay as they are', () => {
    assert.equal(formatRanges([1, 2, 3, 7]), '1..3, 7');
    assert.equal(formatRanges([0, 1023]), '0, 1023');
    assert.equal(formatRanges([5]), '5');
    assert.equal(formatRanges([5, 6]), '5..6');
  });

  test('no slots give an empty string', () => {
    assert.equal(formatRanges([]), '');
  });

  test('all 1024 slots are one range', () => {
    assert.equal(formatRanges(Array.from({ length: SLOT_COUNT }, (_, i) => i)), '0..1023');
  });

  test('more than 12 runs are cut short with "..." so a message stays readable', () => {
    const everyOther = Array.from({ length: 20 }, (_, i) => i * 2);
    assert.equal(formatRanges(everyOther), '0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, ...');
    const twelve = Array.from({ length: 12 }, (_, i) => i * 2);
    assert.equal(formatRanges(twelve), '0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22');
  });
});

describe('Sentinel-named groups (DESIGN §6)', () => {
  const slots: SlotRange[] = [
    { from: 0, to: 511, group: 1 },
    { from: 512, to: 1023, group: 2 },
  ];
  const mixed = (): Record<string, unknown> => ({
    version: 3,
    groups: [
      { id: 1, master: '10.0.0.1:6379', replicas: ['10.0.0.2:6379'] },
      { id: 2, sentinel: { name: 'g2' } },
    ],
    sentinels: ['10.0.0.9:26379', '[::1]:26380'],
    slots,
  });

  test('a group is { id, master, replicas? } or { id, sentinel: { name } }; the table keeps its sentinels', () => {
    const table = validateTable(mixed());
    const [g1, g2] = table.groups as [GroupSpec, GroupSpec];
    assert.equal(g1.master, '10.0.0.1:6379');
    assert.equal(g1.sentinel, undefined);
    assert.deepEqual(g2, { id: 2, sentinel: { name: 'g2' } });
    assert.equal(g2.master, undefined);
    assert.deepEqual([...table.sentinels!], ['10.0.0.9:26379', '[::1]:26380']);
    assert.ok(Object.isFrozen(g2) && Object.isFrozen(g2.sentinel) && Object.isFrozen(table.sentinels));
    assert.equal(groupLabel(g1), '10.0.0.1:6379');
    assert.equal(groupLabel(g2), 'sentinel g2');
  });

  test('a table without Sentinel groups has sentinels [] (and may list some anyway)', () => {
    assert.deepEqual([...validateTable(threeGroups()).sentinels!], []);
    assert.deepEqual([...validateTable({ ...threeGroups(), sentinels: ['10.0.0.9:26379'] }).sentinels!], ['10.0.0.9:26379']);
  });

  test('exactly one of master and sentinel', () => {
    const both = { ...mixed(), groups: [{ id: 1, master: '10.0.0.1:6379', sentinel: { name: 'g1' } }, { id: 2, sentinel: { name: 'g2' } }] };
    assert.throws(() => validateTable(both), (e: unknown) => e instanceof TopologyError && /group 1: give either master \(and replicas\) or sentinel, not both/.test(e.message));
    const withReplicas = { ...mixed(), groups: [{ id: 1, master: '10.0.0.1:6379' }, { id: 2, sentinel: { name: 'g2' }, replicas: ['10.0.0.5:6379'] }] };
    assert.throws(() => validateTable(withReplicas), /group 2: give either master/);
    const neither = { ...mixed(), groups: [{ id: 1, master: '10.0.0.1:6379' }, { id: 2 }] };
    assert.throws(() => validateTable(neither), /group 2: master must be a "host:port" string, got undefined \(or give sentinel: \{ name \}\)/);
  });

  test('sentinel.name must be a Sentinel master name, used by one group only', () => {
    for (const sentinel of [{}, { name: '' }, { name: 'a b' }, { name: 7 }, 'g2', null, [], { name: 'x'.repeat(129) }]) {
      const table = { ...mixed(), groups: [{ id: 1, master: '10.0.0.1:6379' }, { id: 2, sentinel }] };
      assert.throws(() => validateTable(table), TopologyError, JSON.stringify(sentinel));
    }
    const twice = { ...mixed(), groups: [{ id: 1, sentinel: { name: 'g' } }, { id: 2, sentinel: { name: 'g' } }] };
    assert.throws(() => validateTable(twice), /sentinel name "g" is used by group 1 and by group 2/);
    const proto = { ...mixed(), groups: [{ id: 1, master: '10.0.0.1:6379' }, { id: 2, sentinel: JSON.parse('{"name":"g","__proto__":{}}') }] };
    assert.throws(() => validateTable(proto), /forbidden key "__proto__"/);
  });

  test('sentinels: required (non-empty) when a group uses a sentinel name; "host:port" each, no duplicates', () => {
    const { sentinels: _omit, ...without } = mixed();
    assert.throws(() => validateTable(without), /group 2 is given by a sentinel name, so the table needs sentinels: \["host:port", \.\.\.\]/);
    assert.throws(() => validateTable({ ...mixed(), sentinels: [] }), /group 2 is given by a sentinel name, so the table needs sentinels/);
    assert.throws(() => validateTable({ ...mixed(), sentinels: '10.0.0.9:26379' }), /sentinels must be an array of "host:port" strings/);
    assert.throws(() => validateTable({ ...mixed(), sentinels: [26379] }), /sentinels must be an array/);
    assert.throws(() => validateTable({ ...mixed(), sentinels: ['10.0.0.9'] }), /sentinels\[0\] must be "host:port"/);
    assert.throws(() => validateTable({ ...mixed(), sentinels: ['A:1', 'a:1'] }), /sentinels lists a:1 twice/);
  });
});

describe('Sentinel-named groups in the stored JSON (parseTableJson / tableToJson)', () => {
  const stored = {
    format: 1, cluster: 'prod', version: 17, slotCount: 1024,
    groups: [{ id: 1, master: '10.0.0.1:6379', replicas: ['10.0.0.2:6379'] }, { id: 2, sentinel: { name: 'g2' } }],
    sentinels: ['10.0.0.9:26379'],
    slots: [{ from: 0, to: 511, group: 1 }, { from: 512, to: 1023, group: 2 }],
    migrations: [],
  };

  test('the documented example reads back, and is written in the documented field order', () => {
    const text = JSON.stringify(stored);
    const table = parseTableJson(text, 'prod');
    assert.deepEqual(table.groups[1], { id: 2, sentinel: { name: 'g2' } });
    assert.deepEqual([...table.sentinels!], ['10.0.0.9:26379']);
    assert.equal(tableToJson(table, 'prod'), text);
  });

  test('a table without Sentinel groups is written without "sentinels" (as before)', () => {
    const plain = { ...stored, groups: [stored.groups[0], { id: 2, master: '10.0.0.3:6379' }] };
    const { sentinels: _omit, ...expected } = plain;
    const table = parseTableJson(JSON.stringify(expected), 'prod');
    assert.deepEqual([...table.sentinels!], []);
    assert.equal(tableToJson(table, 'prod'), JSON.stringify(expected));
    // Sentinels listed without a group using them are kept.
    assert.match(tableToJson(parseTableJson(JSON.stringify(plain), 'prod'), 'prod'), /"sentinels":\["10\.0\.0\.9:26379"\]/);
  });

  test('a stored Sentinel group without sentinels is refused like any bad table', () => {
    const { sentinels: _omit, ...bad } = stored;
    assert.throws(() => parseTableJson(JSON.stringify(bad), 'prod'), /so the table needs sentinels/);
  });
});
