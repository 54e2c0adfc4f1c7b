// The pure parts of waiting for the target's replicas during a migration:
// the waitReplicas option, and which errors a failover makes worth another try.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ArgumentError } from '../../src/errors.js';
import { runSettings } from '../../src/admin/migration/options.js';
import { ReplicaWaitError, isTransient } from '../../src/admin/migration/retry.js';

test('waitReplicas: "auto" by default, or an integer ≥ 0', () => {
  assert.equal(runSettings().waitReplicas, 'auto');
  assert.equal(runSettings({ waitReplicas: 0 }).waitReplicas, 0);
  assert.equal(runSettings({ waitReplicas: 2 }).waitReplicas, 2);
  for (const bad of [-1, 1.5, Number.NaN, 'all', '1']) {
    assert.throws(() => runSettings({ waitReplicas: bad as never }), (e: unknown) => e instanceof ArgumentError && /waitReplicas/.test(e.message), String(bad));
  }
});

test('errors of a failing-over target or source are transient; others are not', () => {
  for (const message of [
    'ERR Target instance replied with error: READONLY You can\'t write against a read only replica.',
    'ERR Target instance replied with error: NOREPLICAS Not enough good replicas to write.',
    'IOERR error or timeout connecting to the client',
    'Command aborted due to connection close',
    'Connection is closed.',
  ]) {
    assert.ok(isTransient(new Error(message)), message);
  }
  assert.ok(isTransient(new ReplicaWaitError('WAIT answered 0 of 1 replicas')));
  assert.ok(!isTransient(new Error('ERR Target instance replied with error: BUSYKEY Target key name already exists.')));
  assert.ok(!isTransient(new Error('WRONGTYPE Operation against a key holding the wrong kind of value')));
});
