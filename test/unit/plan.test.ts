// Specification of src/commands/plan.ts: how each command is routed (DESIGN §3).
// Plans are derived from @ioredis/commands metadata (key positions, request and
// response policies), never from a hand-written command table; only the list of
// refused commands is written by hand.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { getKeyIndexes, list as knownCommands } from '@ioredis/commands';
import commandTable from '@ioredis/commands/built/commands.json';
import { isKnownCommand, planFor, type CommandPlan } from '../../src/commands/plan.js';

interface Meta {
  readonly subcommands?: Readonly<Record<string, unknown>>;
}
const META = commandTable as unknown as Readonly<Record<string, Meta>>;

/** The plan, failing the test when there is none. */
function plan(name: string, firstArg?: unknown): CommandPlan {
  const p = planFor(name, firstArg);
  assert.ok(p !== null, `no plan for ${name}${firstArg === undefined ? '' : ` ${String(firstArg)}`}`);
  return p;
}

describe('keyed commands: run on the group that owns their key(s)', () => {
  for (const name of ['get', 'set', 'hset', 'incr', 'lpush', 'zadd', 'expire']) {
    test(`${name}: the key is always args[0]`, () => {
      assert.deepEqual(plan(name), { kind: 'keyed', keyAt: 0 });
    });
  }

  test('object encoding / memory usage: the key comes after the subcommand, at args[1]', () => {
    assert.deepEqual(plan('object', 'encoding'), { kind: 'keyed', keyAt: 1 });
    assert.deepEqual(plan('memory', 'usage'), { kind: 'keyed', keyAt: 1 });
  });

  const movable = ['eval', 'evalsha', 'fcall', 'zunionstore', 'xread', 'rename', 'msetnx', 'sunionstore', 'blmove', 'sort', 'blpop', 'watch'];
  for (const name of movable) {
    test(`${name}: keys vary with the arguments or are several (keyAt -1: ask getKeyIndexes, all must share a slot)`, () => {
      assert.deepEqual(plan(name), { kind: 'keyed', keyAt: -1 });
    });
  }
});

describe('split commands: keys cut per group, replies merged', () => {
  test('mget: step 1, replies put back in key order', () => {
    assert.deepEqual(plan('mget'), { kind: 'split', step: 1, merge: 'ordered' });
  });

  test('mset: key/value pairs (step 2), "OK" once every part succeeded', () => {
    assert.deepEqual(plan('mset'), { kind: 'split', step: 2, merge: 'ok' });
  });

  for (const name of ['del', 'unlink', 'exists', 'touch']) {
    test(`${name}: step 1, counts summed`, () => {
      assert.deepEqual(plan(name), { kind: 'split', step: 1, merge: 'sum' });
    });
  }

  test('only these six commands are split; every other multi-key command must keep to one slot', () => {
    const split = knownCommands.filter((name) => planFor(name, undefined)?.kind === 'split').sort();
    assert.deepEqual(split, ['del', 'exists', 'mget', 'mset', 'touch', 'unlink']);
  });
});

describe('keyless commands sent to every group', () => {
  test('ping: all groups, the first reply once all succeeded', () => {
    assert.deepEqual(plan('ping'), { kind: 'all-groups', combine: 'first' });
  });

  test('dbsize: all groups, summed', () => {
    assert.deepEqual(plan('dbsize'), { kind: 'all-groups', combine: 'sum' });
  });

  test('script load: all groups (so EVALSHA works wherever a key lives), the first reply', () => {
    assert.deepEqual(plan('script', 'load'), { kind: 'all-groups', combine: 'first' });
  });

  test('script exists: all groups, element-wise AND (a script exists only if every group has it)', () => {
    assert.deepEqual(plan('script', 'exists'), { kind: 'all-groups', combine: 'and' });
  });

  test('script flush: all groups', () => {
    assert.deepEqual(plan('script', 'flush'), { kind: 'all-groups', combine: 'first' });
  });

  test('unwatch: all groups (WATCH state lives on each group connection)', () => {
    assert.deepEqual(plan('unwatch'), { kind: 'all-groups', combine: 'first' });
  });
});

describe('keyless commands sent to one group', () => {
  for (const name of ['info', 'time', 'echo', 'randomkey', 'lastsave']) {
    test(`${name}: any group`, () => {
      assert.deepEqual(plan(name), { kind: 'any-group' });
    });
  }

  test('an unknown subcommand of a known container command goes to one group, so the server can answer with its own error', () => {
    assert.deepEqual(plan('object', 'nosuch'), { kind: 'any-group' });
    assert.deepEqual(plan('script', 'nosuch'), { kind: 'any-group' });
  });

  test('a container command with no subcommand at all goes to one group (the server replies with an arity error)', () => {
    assert.deepEqual(plan('object', undefined), { kind: 'any-group' });
    assert.deepEqual(plan('object', 42), { kind: 'any-group' });
  });
});

describe('scan', () => {
  test('scan walks every group in turn', () => {
    assert.deepEqual(plan('scan'), { kind: 'scan' });
    assert.deepEqual(plan('SCAN'), { kind: 'scan' });
  });
});

describe('refused commands', () => {
  test('keys: refused unless allowKeys is set', () => {
    const p = plan('keys');
    assert.equal(p.kind, 'refused');
    assert.equal(p.kind === 'refused' && p.optIn, 'allowKeys');
    assert.match(p.kind === 'refused' ? p.reason : '', /scan/i);
  });

  for (const name of ['flushdb', 'flushall']) {
    test(`${name}: refused unless allowFlush is set`, () => {
      const p = plan(name);
      assert.equal(p.kind, 'refused');
      assert.equal(p.kind === 'refused' && p.optIn, 'allowFlush');
    });
  }

  const refused = [
    'select', 'move', 'swapdb', 'migrate',
    'subscribe', 'psubscribe', 'ssubscribe', 'unsubscribe', 'punsubscribe', 'sunsubscribe', 'monitor',
    'multi', 'exec', 'discard', 'auth', 'hello', 'reset', 'quit',
    'cluster', 'readonly', 'readwrite', 'asking',
    'sync', 'psync', 'replicaof', 'slaveof', 'failover', 'shutdown',
  ];
  for (const name of refused) {
    test(`${name}: refused with a reason and no opt-in`, () => {
      const p = planFor(name, name === 'cluster' ? 'info' : undefined);
      assert.ok(p !== null && p.kind === 'refused', `${name} -> ${JSON.stringify(p)}`);
      assert.equal(typeof p.reason, 'string');
      assert.ok(p.reason.trim().length > 10, `reason for ${name}: ${JSON.stringify(p.reason)}`);
      assert.equal(p.optIn, undefined);
    });
  }

  test('refusal holds whatever the first argument is', () => {
    assert.equal(plan('select', '1').kind, 'refused');
    assert.equal(plan('keys', '*').kind, 'refused');
    assert.equal(plan('cluster', 'nodes').kind, 'refused');
    assert.equal(plan('cluster', Buffer.from('slots')).kind, 'refused');
  });
});

describe('names', () => {
  test('a command @ioredis/commands does not know has no plan (null)', () => {
    assert.equal(planFor('nosuchcommand', undefined), null);
    assert.equal(planFor('', undefined), null);
    assert.equal(isKnownCommand('nosuchcommand'), false);
  });

  test('names inherited from Object.prototype are not commands', () => {
    for (const name of ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf']) {
      assert.equal(planFor(name, undefined), null, name);
      assert.equal(isKnownCommand(name), false, name);
    }
  });

  test('command names are case-insensitive', () => {
    assert.deepEqual(plan('GET'), plan('get'));
    assert.deepEqual(plan('Mget'), plan('mget'));
    assert.deepEqual(plan('DBSIZE'), plan('dbsize'));
    assert.deepEqual(plan('Select'), plan('select'));
    assert.equal(isKnownCommand('GeT'), true);
  });

  test('subcommand names are case-insensitive and may be Buffers', () => {
    assert.deepEqual(plan('OBJECT', 'Encoding'), { kind: 'keyed', keyAt: 1 });
    assert.deepEqual(plan('object', Buffer.from('ENCODING')), { kind: 'keyed', keyAt: 1 });
    assert.deepEqual(plan('script', Buffer.from('load')), { kind: 'all-groups', combine: 'first' });
    assert.deepEqual(plan('Memory', Buffer.from('usage')), { kind: 'keyed', keyAt: 1 });
  });

  test('asking twice gives the same answer (plans are cached per name, not per call)', () => {
    assert.equal(planFor('get', undefined), planFor('get', undefined));
    assert.deepEqual(planFor('object', 'encoding'), planFor('object', 'freq'));
    assert.deepEqual(plan('object', 'nosuch'), plan('object', 'nosuch'));
  });

  test('a subcommand named like an Object.prototype member is an unknown subcommand', () => {
    assert.deepEqual(plan('object', '__proto__'), { kind: 'any-group' });
    assert.deepEqual(plan('object', 'constructor'), { kind: 'any-group' });
  });
});

describe('derived from @ioredis/commands: checked over the whole command list', () => {
  /** Every command, and every subcommand of a container command, with plausible arguments. */
  function* everyCommand(): Generator<{ name: string; sub: string | undefined; args: string[] }> {
    const filler = ['1', 'a', 'b', 'c', 'd', 'e', 'f', 'g'];
    for (const name of knownCommands) {
      const subs = META[name]?.subcommands;
      if (subs) for (const sub of Object.keys(subs)) yield { name, sub, args: [sub, ...filler] };
      else yield { name, sub: undefined, args: filler };
    }
  }

  test('every command and subcommand @ioredis/commands lists has a plan', () => {
    let n = 0;
    for (const { name, sub } of everyCommand()) {
      n++;
      assert.ok(planFor(name, sub) !== null, `${name} ${sub ?? ''}`);
    }
    assert.ok(n > 300, `only ${n} commands`);
  });

  test('a fixed keyAt is exactly where getKeyIndexes (what ioredis itself uses) finds the key', () => {
    for (const { name, sub, args } of everyCommand()) {
      const p = planFor(name, sub);
      if (p?.kind !== 'keyed' || p.keyAt < 0) continue;
      assert.deepEqual(getKeyIndexes(name, args), [p.keyAt], `${name} ${sub ?? ''}`);
    }
  });

  test('split commands take keys (step 1) or key/value pairs (step 2) from the first argument on', () => {
    const args = ['k0', 'v0', 'k1', 'v1', 'k2', 'v2'];
    for (const name of ['mget', 'mset', 'del', 'unlink', 'exists', 'touch']) {
      const p = plan(name);
      assert.ok(p.kind === 'split');
      const expected = args.map((_, i) => i).filter((i) => i % p.step === 0);
      assert.deepEqual(getKeyIndexes(name, args), expected, name);
    }
  });

  test('a command that has keys is never sent to an arbitrary group or fanned out (only refused)', () => {
    for (const { name, sub, args } of everyCommand()) {
      const p = planFor(name, sub);
      if (p === null || p.kind === 'keyed' || p.kind === 'split' || p.kind === 'refused') continue;
      assert.deepEqual(getKeyIndexes(name, args), [], `${name} ${sub ?? ''} is ${p.kind} but has keys`);
    }
  });
});

describe('refused commands that would break a shared group connection', () => {
  test('CLIENT REPLY is refused: replies are matched to commands by order on a shared connection', () => {
    assert.equal(plan('client', 'reply').kind, 'refused');
  });

  test('CLIENT SETNAME is refused: group connections keep their shardis:<clientId> names (DESIGN §5)', () => {
    assert.equal(plan('client', 'setname').kind, 'refused');
  });
});
