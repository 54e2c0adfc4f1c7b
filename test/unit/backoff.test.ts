// Specification of src/backoff.ts: reconnects back off exponentially
// with full jitter, capped, so that many clients that lost a group at the same
// moment spread their reconnects instead of arriving in lockstep.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelay, jitteredRetryStrategy, DEFAULT_BACKOFF } from '../../src/backoff.js';
import { jitteredRetryStrategy as exported } from '../../src/index.js';

describe('backoffDelay', () => {
  test('the window doubles from 50 ms per attempt and is capped at 2 s (random draw at its top)', () => {
    const top = 0.999999;
    const windows = [1, 2, 3, 4, 5, 6, 7, 8, 20, 1000].map((attempt) => backoffDelay(attempt, {}, top) + 1);
    assert.deepEqual(windows, [50, 100, 200, 400, 800, 1600, 2000, 2000, 2000, 2000]);
    assert.deepEqual(DEFAULT_BACKOFF, { baseMs: 50, capMs: 2000 });
  });

  test('full jitter: a draw of 0 gives 0, a draw of 0.5 half the window', () => {
    assert.equal(backoffDelay(5, {}, 0), 0);
    assert.equal(backoffDelay(5, {}, 0.5), 400);
    assert.equal(backoffDelay(30, {}, 0.5), 1000);
  });

  test('base and cap can be set; a cap below the base is raised to it', () => {
    assert.equal(backoffDelay(1, { baseMs: 100, capMs: 5000 }, 0.999999), 99);
    assert.equal(backoffDelay(10, { baseMs: 100, capMs: 5000 }, 0.999999), 4999);
    assert.equal(backoffDelay(10, { baseMs: 100, capMs: 10 }, 0.999999), 99);
  });

  test('odd attempts (0, negative, NaN, fractions) count as the first; huge ones stay at the cap', () => {
    for (const attempt of [0, -3, Number.NaN, 0.5]) assert.ok(backoffDelay(attempt, {}, 0.999999) < 50, String(attempt));
    assert.equal(backoffDelay(Number.MAX_SAFE_INTEGER, {}, 0.999999), 1999);
    assert.equal(backoffDelay(Infinity, {}, 0.999999), 49);
  });

  test('always an integer within [0, window)', () => {
    for (let attempt = 1; attempt <= 12; attempt++) {
      for (let i = 0; i < 200; i++) {
        const delay = backoffDelay(attempt);
        const window = Math.min(2000, 50 * 2 ** (attempt - 1));
        assert.ok(Number.isInteger(delay) && delay >= 0 && delay < window, `attempt ${attempt}: ${delay}`);
      }
    }
  });
});

describe('jitteredRetryStrategy (the default retryStrategy of the connections shardis opens)', () => {
  test('is exported and never gives up (always a number)', () => {
    assert.equal(exported, jitteredRetryStrategy);
    const strategy = jitteredRetryStrategy();
    for (let times = 1; times < 100; times++) assert.equal(typeof strategy(times), 'number');
  });

  test('no lockstep: 1,000 clients retrying at the same attempt spread over the whole window', () => {
    const clients = Array.from({ length: 1000 }, () => jitteredRetryStrategy());
    for (const attempt of [1, 4, 10]) {
      const window = Math.min(2000, 50 * 2 ** (attempt - 1));
      const delays = clients.map((strategy) => strategy(attempt));
      // At most a few clients share a millisecond: no thundering herd at one instant.
      const perMs = new Map<number, number>();
      for (const d of delays) perMs.set(d, (perMs.get(d) ?? 0) + 1);
      const crowd = Math.max(...perMs.values());
      assert.ok(crowd <= Math.max(60, (1000 / window) * 6), `attempt ${attempt}: ${crowd} clients at one ms`);
      // Every tenth of the window gets some clients, none gets more than twice its share.
      const buckets = new Array<number>(10).fill(0);
      for (const d of delays) buckets[Math.floor((d / window) * 10)]!++;
      for (const [i, count] of buckets.entries()) {
        assert.ok(count >= 50 && count <= 200, `attempt ${attempt}, tenth ${i}: ${count} of 1000 clients`);
      }
      // Spread: the standard deviation is near that of a uniform draw (window / sqrt(12)).
      const mean = delays.reduce((a, b) => a + b, 0) / delays.length;
      const sd = Math.sqrt(delays.reduce((a, b) => a + (b - mean) ** 2, 0) / delays.length);
      assert.ok(sd > (window / Math.sqrt(12)) * 0.8, `attempt ${attempt}: sd ${sd.toFixed(1)} ms over a ${window} ms window`);
    }
  });
});
