// Specification of the migrator's batch sizing (src/admin/migration/batch-size.ts)
// and of the SCAN queue that decides which cursor to save (scan-queue.ts):
// batches grow toward what fits the time budget, shrink at once when a call
// ran over, stay within 1..maxKeys; a saved cursor always finds again every
// key not yet moved. No socket is opened here.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { CALL_OVERHEAD_MS, FIRST_BATCH, firstSizer, nextSizer, type BatchSizer } from '../../src/admin/migration/batch-size.js';
import { ScanQueue } from '../../src/admin/migration/scan-queue.js';
import { estimateKeys, etaMs, keysPerSec } from '../../src/admin/migration/progress.js';

/** A source where one MIGRATE of n keys takes overhead + n × perKey ms. */
function converge(budgetMs: number, maxKeys: number, perKeyMs: number, calls = 30): BatchSizer {
  const budget = { budgetMs, maxKeys };
  let sizer = firstSizer(budget);
  for (let i = 0; i < calls; i++) sizer = nextSizer(sizer, { keys: sizer.size, ms: CALL_OVERHEAD_MS + sizer.size * perKeyMs }, budget);
  return sizer;
}

describe('batch sizing by time budget', () => {
  test('the first batch is small, before anything was measured', () => {
    assert.deepEqual(firstSizer({ budgetMs: 10, maxKeys: 1000 }), { size: FIRST_BATCH, perKeyMs: null });
    assert.equal(firstSizer({ budgetMs: 10, maxKeys: 20 }).size, 20);
  });

  test('converges on the size whose call takes the budget (7 µs per key: ~1400 keys in 10 ms)', () => {
    const sizer = converge(10, 5000, 0.007);
    const ms = CALL_OVERHEAD_MS + sizer.size * 0.007;
    assert.ok(ms <= 10 && ms > 9, `${sizer.size} keys take ${ms} ms`);
  });

  test('never above maxKeys, never below 1', () => {
    assert.equal(converge(10, 1000, 0.007).size, 1000);
    assert.equal(converge(1, 1000, 5).size, 1, 'a key that takes longer than the budget still moves, alone');
  });

  test('grows at most twofold per call', () => {
    const budget = { budgetMs: 10, maxKeys: 100_000 };
    const next = nextSizer(firstSizer(budget), { keys: FIRST_BATCH, ms: CALL_OVERHEAD_MS + FIRST_BATCH * 0.0001 }, budget);
    assert.equal(next.size, FIRST_BATCH * 2);
  });

  test('a call over budget shrinks the next batch at once', () => {
    const budget = { budgetMs: 10, maxKeys: 5000 };
    const steady = converge(10, 5000, 0.007);
    const slow = nextSizer(steady, { keys: steady.size, ms: 40 }, budget);
    assert.ok(slow.size <= steady.size / 3, `${steady.size} → ${slow.size}`);
    assert.ok(CALL_OVERHEAD_MS + slow.size * (40 / steady.size) <= 10.5);
  });

  test('a smaller budget gives smaller batches (speed traded for the source latency)', () => {
    assert.ok(converge(2, 5000, 0.007).size < converge(10, 5000, 0.007).size);
  });

  test('nonsense samples change nothing', () => {
    const budget = { budgetMs: 10, maxKeys: 1000 };
    const sizer = firstSizer(budget);
    assert.deepEqual(nextSizer(sizer, { keys: 0, ms: 3 }, budget), sizer);
    assert.deepEqual(nextSizer(sizer, { keys: 10, ms: NaN }, budget), sizer);
  });
});

describe('ScanQueue', () => {
  const k = (name: string) => Buffer.from(name);

  test('the cursor to save finds again every key not yet taken', () => {
    const q = new ScanQueue('0');
    assert.equal(q.resumeCursor, '0');
    q.push('0', '17', [k('a'), k('b'), k('c')]);
    assert.equal(q.resumeCursor, '0', 'a, b, c were found from cursor 0');
    q.push('17', '42', [k('d')]);
    assert.deepEqual(q.take(2).map(String), ['a', 'b']);
    assert.equal(q.resumeCursor, '0', 'c is not taken yet');
    assert.deepEqual(q.take(2).map(String), ['c', 'd']);
    assert.equal(q.resumeCursor, '42', 'everything found so far was taken');
    assert.equal(q.length, 0);
    assert.equal(q.done, false);
  });

  test('SCAN calls that kept nothing move the cursor on', () => {
    const q = new ScanQueue('5');
    q.push('5', '9', []);
    q.push('9', '11', []);
    assert.equal(q.resumeCursor, '11');
    assert.equal(q.nextCursor, '11');
  });

  test('the pass is done when SCAN came back to 0 and every key was taken', () => {
    const q = new ScanQueue('7');
    q.push('7', '0', [k('x')]);
    assert.equal(q.scanEnded, true);
    assert.equal(q.done, false);
    assert.equal(q.resumeCursor, '7');
    q.take(10);
    assert.equal(q.done, true);
    assert.equal(q.resumeCursor, '0');
    assert.throws(() => q.push('0', '3', []), /ended/);
  });

  test('answers for the wrong cursor are refused', () => {
    assert.throws(() => new ScanQueue('0').push('8', '9', []), /cursor 8/);
  });
});

describe('progress', () => {
  test('estimate from DBSIZE by the share of the source slots that move', () => {
    assert.equal(estimateKeys(10_000, 100, 400), 2500);
    assert.equal(estimateKeys(10_000, 100, 0), 0);
    assert.equal(estimateKeys(0, 100, 400), 0);
  });

  test('speed and time left', () => {
    assert.equal(keysPerSec(5000, 500), 10_000);
    assert.equal(keysPerSec(0, 500), 0);
    assert.equal(etaMs(2500, 500, 1000), 2000);
    assert.equal(etaMs(2500, 3000, 1000), 0, 'more moved than estimated');
    assert.equal(etaMs(2500, 0, 0), null);
  });
});
