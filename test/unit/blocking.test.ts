// Specification of the pure part of src/client/blocking.ts: finding a
// blocking command's timeout, and what is left of it when the command must be
// sent again (its slot started to move while it was blocked, DESIGN §5).
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { argsWithTimeLeft, blockTimeoutOf } from '../../src/client/blocking.js';

describe('blockTimeoutOf', () => {
  test('BLPOP, BRPOP, BZPOPMIN, BLMOVE, BRPOPLPUSH: the last argument, in seconds', () => {
    assert.deepEqual(blockTimeoutOf('blpop', ['a', 'b', '5']), { index: 2, unit: 's' });
    assert.deepEqual(blockTimeoutOf('blmove', ['a', 'b', 'LEFT', 'RIGHT', '0.5']), { index: 4, unit: 's' });
    assert.deepEqual(blockTimeoutOf('brpoplpush', ['a', 'b', '1']), { index: 2, unit: 's' });
  });

  test('BLMPOP and BZMPOP: the first argument, in seconds', () => {
    assert.deepEqual(blockTimeoutOf('blmpop', ['2', '1', 'a', 'LEFT']), { index: 0, unit: 's' });
  });

  test('XREAD and XREADGROUP block only with BLOCK, in milliseconds', () => {
    assert.deepEqual(blockTimeoutOf('xread', ['COUNT', '1', 'BLOCK', '500', 'STREAMS', 's', '$']), { index: 3, unit: 'ms' });
    assert.equal(blockTimeoutOf('xread', ['STREAMS', 's', '0']), null);
    assert.deepEqual(blockTimeoutOf('xreadgroup', ['GROUP', 'g', 'c', 'block', '100', 'STREAMS', 's', '>']), { index: 4, unit: 'ms' });
  });

  test('other commands do not block', () => {
    assert.equal(blockTimeoutOf('get', ['a']), null);
    assert.equal(blockTimeoutOf('blpop', []), null);
  });
});

describe('argsWithTimeLeft', () => {
  test('the timeout is lowered by the time already spent', () => {
    assert.deepEqual(argsWithTimeLeft(['k', '5'], { index: 1, unit: 's' }, 1500), ['k', '3.500']);
    assert.deepEqual(argsWithTimeLeft(['BLOCK', '1000', 'STREAMS', 's', '$'], { index: 1, unit: 'ms' }, 250), ['BLOCK', '750', 'STREAMS', 's', '$']);
  });

  test('0 means forever, and stays 0', () => {
    assert.deepEqual(argsWithTimeLeft(['k', '0'], { index: 1, unit: 's' }, 99_000), ['k', '0']);
  });

  test('no time left (or a nonsense timeout): null, the caller answers as a timeout would', () => {
    assert.equal(argsWithTimeLeft(['k', '1'], { index: 1, unit: 's' }, 999), null);
    assert.equal(argsWithTimeLeft(['k', '1'], { index: 1, unit: 's' }, 2000), null);
    assert.equal(argsWithTimeLeft(['k', 'soon'], { index: 1, unit: 's' }, 0), null);
  });
});
