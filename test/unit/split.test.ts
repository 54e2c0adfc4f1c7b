// Specification of src/commands/split.ts: how a multi-key command (MGET, MSET,
// DEL, ...) is cut into one request per group, and how the groups' replies
// are put back together into the reply the whole command would give (DESIGN §3).
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { combineReplies, mergeSplitReplies, splitByGroup, type Arg } from '../../src/commands/split.js';

/** Keys are routed by their first character: "a1" → group "a". */
const byFirstChar = (key: Arg): string => String(key)[0]!;

describe('splitByGroup', () => {
  test('MGET-like (step 1): each group gets its keys, with their positions in the original command', () => {
    const parts = splitByGroup(['a1', 'b1', 'a2', 'c1', 'b2'], 1, byFirstChar);
    assert.deepEqual(parts, [
      { group: 'a', args: ['a1', 'a2'], positions: [0, 2] },
      { group: 'b', args: ['b1', 'b2'], positions: [1, 4] },
      { group: 'c', args: ['c1'], positions: [3] },
    ]);
  });

  test('MSET-like (step 2): values stay beside their keys; positions count keys, not arguments', () => {
    const parts = splitByGroup(['a1', 'v1', 'b1', 'v2', 'a2', 'v3'], 2, byFirstChar);
    assert.deepEqual(parts, [
      { group: 'a', args: ['a1', 'v1', 'a2', 'v3'], positions: [0, 2] },
      { group: 'b', args: ['b1', 'v2'], positions: [1] },
    ]);
  });

  test('only keys are routed: values are never passed to groupOf', () => {
    const seen: Arg[] = [];
    splitByGroup(['a1', 'zz-value', 'b1', 'yy-value'], 2, (key) => {
      seen.push(key);
      return byFirstChar(key);
    });
    assert.deepEqual(seen, ['a1', 'b1']);
  });

  test('keys that all live in one group give exactly one part, identical to the command', () => {
    const args = ['a1', 'a2', 'a3'];
    const parts = splitByGroup(args, 1, byFirstChar);
    assert.equal(parts.length, 1);
    assert.deepEqual(parts[0], { group: 'a', args, positions: [0, 1, 2] });
  });

  test('parts come in order of the first appearance of their group', () => {
    const parts = splitByGroup(['c1', 'a1', 'b1', 'a2'], 1, byFirstChar);
    assert.deepEqual(parts.map((p) => p.group), ['c', 'a', 'b']);
  });

  test('the same key twice is kept twice, at both positions', () => {
    const parts = splitByGroup(['a1', 'b1', 'a1'], 1, byFirstChar);
    assert.deepEqual(parts[0], { group: 'a', args: ['a1', 'a1'], positions: [0, 2] });
  });

  test('Buffer keys and values are passed through as the same Buffers', () => {
    const key = Buffer.from([0xff, 0x00]);
    const value = Buffer.from('v');
    const parts = splitByGroup([key, value], 2, () => 1);
    assert.equal(parts[0]!.args[0], key);
    assert.equal(parts[0]!.args[1], value);
  });

  test('groups are told apart by identity (numbers as group ids)', () => {
    const parts = splitByGroup(['k1', 'k2', 'k3', 'k4'], 1, (key) => (String(key) === 'k2' ? 2 : 1));
    assert.deepEqual(parts.map((p) => [p.group, p.positions]), [[1, [0, 2, 3]], [2, [1]]]);
  });

  test('no keys give no parts', () => {
    assert.deepEqual(splitByGroup([], 1, byFirstChar), []);
    assert.deepEqual(splitByGroup([], 2, byFirstChar), []);
  });

  test('an odd number of arguments with step 2 is a RangeError, not a guess', () => {
    assert.throws(() => splitByGroup(['a1', 'v1', 'b1'], 2, byFirstChar), RangeError);
    assert.throws(() => splitByGroup(['a1'], 2, byFirstChar), /odd number of arguments \(1\)/);
  });

  test('the input array is not modified', () => {
    const args = ['a1', 'v1', 'b1', 'v2'];
    splitByGroup(args, 2, byFirstChar);
    assert.deepEqual(args, ['a1', 'v1', 'b1', 'v2']);
  });
});

describe('mergeSplitReplies', () => {
  test('ordered (MGET): replies of interleaved groups are put back in key order', () => {
    const keys = ['a1', 'b1', 'a2', 'c1', 'b2', 'a3'];
    const parts = splitByGroup(keys, 1, byFirstChar);
    // Each group answers with the value of each of its keys, in the order it was sent them.
    const replies = parts.map((p) => p.args.map((k) => `value-of-${String(k)}`));
    assert.deepEqual(
      mergeSplitReplies('ordered', parts, replies),
      keys.map((k) => `value-of-${k}`),
    );
  });

  test('ordered: nulls (missing keys) keep their place', () => {
    const parts = splitByGroup(['a1', 'b1', 'a2'], 1, byFirstChar);
    assert.deepEqual(mergeSplitReplies('ordered', parts, [[null, 'x'], ['y']]), [null, 'y', 'x']);
  });

  test('ordered: a part whose reply has the wrong length is a TypeError, not a shifted result', () => {
    const parts = splitByGroup(['a1', 'b1', 'a2'], 1, byFirstChar);
    assert.throws(() => mergeSplitReplies('ordered', parts, [['only-one'], ['y']]), TypeError);
    assert.throws(() => mergeSplitReplies('ordered', parts, [['x', 'x', 'extra'], ['y']]), TypeError);
    assert.throws(() => mergeSplitReplies('ordered', parts, [['x', 'x'], 'not-an-array']), TypeError);
    assert.throws(() => mergeSplitReplies('ordered', parts, [['x', 'x']]), TypeError, 'a reply missing');
  });

  test('ordered: the TypeError says what came back and for how many keys', () => {
    const parts = splitByGroup(['a1', 'a2'], 1, byFirstChar);
    assert.throws(() => mergeSplitReplies('ordered', parts, [['x']]), /an array of 1 for 2 keys/);
  });

  test('sum (DEL, EXISTS, ...): the counts are added', () => {
    assert.equal(mergeSplitReplies('sum', [], [2, 0, 3]), 5);
    assert.equal(mergeSplitReplies('sum', [], []), 0);
  });

  test('sum: bigint replies (RESP3 / big-number parsers) are added as numbers', () => {
    assert.equal(mergeSplitReplies('sum', [], [1n, 2, 3n]), 6);
  });

  test('sum: a reply that is not an integer is a TypeError', () => {
    assert.throws(() => mergeSplitReplies('sum', [], [1, 'two']), TypeError);
    assert.throws(() => mergeSplitReplies('sum', [], [1, null]), TypeError);
  });

  test('sum: integer strings (ioredis stringNumbers) are added and answered as a string', () => {
    assert.equal(mergeSplitReplies('sum', [], ['2', '3']), '5');
    assert.equal(mergeSplitReplies('sum', [], [Buffer.from('4'), '-1']), '3');
  });

  test('ok (MSET): the reply is the first part\'s reply ("OK")', () => {
    assert.equal(mergeSplitReplies('ok', [], ['OK', 'OK']), 'OK');
  });
});

describe('combineReplies (a command sent to every group)', () => {
  test('first: the first group\'s reply', () => {
    assert.equal(combineReplies('first', ['PONG', 'PONG', 'PONG']), 'PONG');
    assert.equal(combineReplies('first', ['sha1', 'sha1']), 'sha1');
  });

  test('sum (DBSIZE): the replies are added', () => {
    assert.equal(combineReplies('sum', [10, 20, 12]), 42);
    assert.equal(combineReplies('sum', [10n, 20, 12n]), 42);
  });

  test('min: the smallest reply', () => {
    assert.equal(combineReplies('min', [5, 3, 9]), 3);
    assert.equal(combineReplies('min', [5n, 3n]), 3);
  });

  test('and (SCRIPT EXISTS): 1 at a position only when every group replied 1 there', () => {
    assert.deepEqual(combineReplies('and', [[1, 1, 0, 1], [1, 0, 0, 1], [1, 1, 1, 1]]), [1, 0, 0, 1]);
    assert.deepEqual(combineReplies('and', [[1, 0]]), [1, 0]);
  });

  test('and: a reply that is not an array is a TypeError', () => {
    assert.throws(() => combineReplies('and', [1]), TypeError);
  });

  test('and: a position another group did not answer for is never reported as 1', () => {
    assert.deepEqual(combineReplies('and', [[1, 1], 'not-an-array']), [0, 0]);
    assert.throws(() => combineReplies('and', [[1, 1], [1]]), TypeError, 'a shorter array');
  });

  test('concat: the arrays are joined in group order', () => {
    assert.deepEqual(combineReplies('concat', [['a', 'b'], [], ['c']]), ['a', 'b', 'c']);
  });

  test('concat: a reply that is not an array is a TypeError', () => {
    assert.throws(() => combineReplies('concat', [['a'], 'b']), TypeError);
  });
});
