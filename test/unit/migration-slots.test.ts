// Specification of the migrator's slot sets and key filtering
// (src/admin/migration/slot-set.ts), the clients' ack status on one registry
// snapshot and the wait built on it (acks.ts), fencing's CLIENT LIST parsing
// (fence.ts), the lock's holder (lock.ts), options (options.ts) and the
// transient-error rule (retry.ts). No socket is opened here.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { AckTimeoutError, ArgumentError } from '../../src/errors.js';
import { SLOT_COUNT, slotOf } from '../../src/slot.js';
import { dedupeKeys, flagsOfRuns, flagsOfSpans, keysInSlots, runsOf, runsText, sameSlots, slotCount } from '../../src/admin/migration/slot-set.js';
import { ackStatus, completedByHeard, parseAckMessage, waitForAcks, LEASE_MARGIN_MS, type HeardAcks } from '../../src/admin/migration/acks.js';
import { connectionIdsNamed, connectionName, fenceSet } from '../../src/admin/migration/fence.js';
import { lockValue, parseLockHolder } from '../../src/admin/migration/lock.js';
import { runSettings, DEFAULTS } from '../../src/admin/migration/options.js';
import { isTransient } from '../../src/admin/migration/retry.js';
import type { RegistrySnapshot } from '../../src/admin/registry.js';

/** A key whose slot is `slot`. */
function keyIn(slot: number, salt = ''): Buffer {
  for (let i = 0; ; i++) {
    const key = Buffer.from(`k${salt}${i}`);
    if (slotOf(key) === slot) return key;
  }
}

describe('slot sets', () => {
  test('spans → flags → merged runs', () => {
    const flags = flagsOfSpans([{ from: 10, to: 12 }, { from: 0, to: 3 }, { from: 4, to: 4 }, { from: 11, to: 20 }]);
    assert.deepEqual(runsOf(flags), [[0, 4], [10, 20]]);
    assert.equal(slotCount(runsOf(flags)), 16);
    assert.equal(runsText(runsOf(flags)), '0..4, 10..20');
    assert.deepEqual(runsOf(flagsOfRuns([[1023, 1023]])), [[1023, 1023]]);
    assert.ok(sameSlots([[0, 4]], [[0, 1], [2, 4]]));
    assert.ok(!sameSlots([[0, 4]], [[0, 5]]));
  });

  test('bad spans are refused naming the bad one', () => {
    assert.throws(() => flagsOfSpans([]), (e: unknown) => e instanceof ArgumentError && /non-empty array/.test(e.message));
    assert.throws(() => flagsOfSpans([{ from: 0, to: SLOT_COUNT }]), /slots\[0\]\.to must be an integer slot in 0\.\.1023/);
    assert.throws(() => flagsOfSpans([{ from: 0, to: 1 }, { from: 5, to: 2 }]), /slots\[1\]: from \(5\) is after to \(2\)/);
    assert.throws(() => flagsOfSpans([{ from: 1.5, to: 2 }]), /slots\[0\]\.from/);
  });

  test('keys in the slots, each once, in the order first seen (the same key twice in MIGRATE … KEYS fails the call)', () => {
    const flags = flagsOfSpans([{ from: 100, to: 101 }]);
    const a = keyIn(100);
    const b = keyIn(101);
    const out = keyIn(102);
    const kept = keysInSlots([a, out, b, Buffer.from(a), a], flags);
    assert.deepEqual(kept.map(String), [a, b].map(String));
  });

  test('binary keys are told apart byte for byte', () => {
    const x = Buffer.from([0xff, 0x00, 0x41]);
    const y = Buffer.from([0xfe, 0x00, 0x41]);
    assert.equal(dedupeKeys([x, y, Buffer.from(x)]).length, 2);
  });
});

describe('ack status of one registry snapshot', () => {
  const entry = (version: number, at: number, leaseMs = 2000) => JSON.stringify({ version, at, host: 'h', pid: 1, name: 'shardis:x', leaseMs });
  const T = 100_000;
  const snapshot = (now: number): RegistrySnapshot => ({
    now,
    entries: {
      acked: entry(8, T - 10),
      newer: entry(9, T - 10),
      waiting: entry(7, T - 100),
      edge: entry(7, T - 2000 - LEASE_MARGIN_MS),
      expired: entry(7, T - 2000 - LEASE_MARGIN_MS - 1),
      junk: 'not json',
    },
  });

  test('acked (at or past the version), waited out (lease + margin run out), waiting; junk ignored', () => {
    assert.deepEqual(ackStatus(snapshot(T), 8), { acked: ['acked', 'newer'], waitedOut: ['expired'], waiting: ['edge', 'waiting'] });
  });

  test('waitForAcks ends when nobody is waited for, polling and telling who is left', async () => {
    let now = T;
    const seen: string[][] = [];
    const status = await waitForAcks({
      version: 8,
      phase: 'pending',
      timeoutMs: 10_000,
      read: async () => snapshot(now),
      sleep: async () => {
        now += 1000;
      },
      checkStopped: () => {},
      onWaiting: (s) => seen.push([...s.waiting]),
    });
    assert.deepEqual(status.waiting, []);
    assert.deepEqual(status.waitedOut, ['edge', 'expired', 'waiting']);
    assert.deepEqual(seen[0], ['edge', 'waiting']);
  });

  test('waitForAcks gives up after timeoutMs with an AckTimeoutError naming the clients', async () => {
    await assert.rejects(
      waitForAcks({
        version: 8,
        phase: 'preparing',
        timeoutMs: 30,
        read: async () => snapshot(100_000),
        sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
        checkStopped: () => {},
      }),
      (e: unknown) => e instanceof AckTimeoutError && e.version === 8 && e.clients.join() === 'edge,waiting',
    );
  });

  test('ack messages: "<id> <version>" and "<id> gone"; anything else is not one', () => {
    assert.deepEqual(parseAckMessage('c1 8'), { id: 'c1', ack: 8 });
    assert.deepEqual(parseAckMessage('host a:1 12'), { id: 'host a:1', ack: 12 });
    assert.deepEqual(parseAckMessage('c1 gone'), { id: 'c1', ack: 'gone' });
    for (const bad of ['c1', ' 8', 'c1 ', 'c1 x', 'c1 1.5']) assert.equal(parseAckMessage(bad), null, bad);
  });

  const heardOf = (acks: Record<string, number | 'gone'>): HeardAcks & { forgotten: number } => {
    const heard = { forgotten: 0, forget: () => void heard.forgotten++, get: (id: string) => acks[id] };
    return heard;
  };

  test('acks heard after a snapshot complete it only when every waited-for client acked the version or left (then it is fenced)', () => {
    const status = ackStatus(snapshot(T), 8); // waiting: edge, waiting; waited out: expired
    assert.equal(completedByHeard(status, 8, heardOf({ edge: 8 })), null, 'one still waited for');
    assert.equal(completedByHeard(status, 8, heardOf({ edge: 8, waiting: 7 })), null, 'an ack of an older version is not one');
    assert.equal(completedByHeard(status, 8, heardOf({ edge: 8, waiting: 8, stranger: 3 })) !== null, true, 'clients not in the snapshot do not count');
    assert.deepEqual(completedByHeard(status, 8, heardOf({ edge: 9, waiting: 'gone', expired: 8 })), { acked: ['acked', 'edge', 'expired', 'newer'], waitedOut: ['waiting'], waiting: [] }, 'one heard leaving is fenced like one waited out');
    assert.deepEqual(completedByHeard(status, 8, heardOf({ edge: 8, waiting: 8, expired: 'gone' })), { acked: ['acked', 'edge', 'newer', 'waiting'], waitedOut: ['expired'], waiting: [] }, 'status() removing an expired entry does not spare it the fence');
    assert.deepEqual(completedByHeard(status, 8, heardOf({ edge: 8, waiting: 8 })), { acked: ['acked', 'edge', 'newer', 'waiting'], waitedOut: ['expired'], waiting: [] });
  });

  test('waitForAcks ends on the last ack heard, without reading the registry again', async () => {
    const acks: Record<string, number | 'gone'> = {};
    const heard = heardOf(acks);
    let reads = 0;
    const arriving: [string, number][] = [['edge', 8], ['waiting', 8]];
    const status = await waitForAcks({
      version: 8,
      phase: 'preparing',
      timeoutMs: 10_000,
      read: async () => (reads++, snapshot(T)),
      sleep: async () => {
        const [id, version] = arriving.shift()!;
        acks[id] = version;
      },
      checkStopped: () => {},
      heard,
    });
    assert.equal(reads, 1);
    assert.equal(heard.forgotten, 1, 'what was heard is forgotten before the read');
    assert.deepEqual(status, { acked: ['acked', 'edge', 'newer', 'waiting'], waitedOut: ['expired'], waiting: [] });
  });

  test('waitForAcks: a client waited out stays waited out (fenced) when its entry is removed before the wait ends', async () => {
    // First read: "expired" is waited out; by the second, status() has removed it and the others acked.
    const reads = [snapshot(T), { now: T + 10, entries: { acked: entry(8, T), newer: entry(9, T), edge: entry(8, T), waiting: entry(8, T) } }];
    const status = await waitForAcks({ version: 8, phase: 'pending', timeoutMs: 10_000, read: async () => reads.shift()!, sleep: async () => {}, checkStopped: () => {} });
    assert.deepEqual(status, { acked: ['acked', 'edge', 'newer', 'waiting'], waitedOut: ['expired'], waiting: [] });
  });

  test('waitForAcks stops when told to', async () => {
    const stop = new Error('stopped');
    await assert.rejects(
      waitForAcks({ version: 8, phase: 'pending', timeoutMs: 1000, read: async () => snapshot(1), sleep: async () => {}, checkStopped: () => { throw stop; } }),
      (e: unknown) => e === stop,
    );
  });
});

describe('fencing: connections by name in CLIENT LIST', () => {
  const list = [
    'id=3 addr=127.0.0.1:50001 laddr=127.0.0.1:6379 fd=8 name=shardis:c1 age=1 idle=0 flags=N db=0 cmd=get',
    'id=4 addr=127.0.0.1:50002 laddr=127.0.0.1:6379 fd=9 name=shardis:c1:events age=1 idle=0 flags=N db=0',
    'id=5 addr=127.0.0.1:50003 laddr=127.0.0.1:6379 fd=10 name=shardis:c2 age=1 idle=0 flags=N db=0',
    'id=6 addr=127.0.0.1:50004 laddr=127.0.0.1:6379 fd=11 name= age=1 idle=0 flags=N db=0',
    'id=7 addr=127.0.0.1:50005 laddr=127.0.0.1:6379 fd=12 name=shardis:c1 age=1 idle=0 flags=N db=0',
    '',
  ].join('\r\n');

  test('every connection named exactly shardis:<clientId> of the clients given', () => {
    assert.equal(connectionName('c1'), 'shardis:c1');
    assert.deepEqual(connectionIdsNamed(list, new Set(['shardis:c1'])), ['3', '7']);
    assert.deepEqual(connectionIdsNamed(list, new Set(['shardis:c1', 'shardis:c2'])), ['3', '5', '7']);
    assert.deepEqual(connectionIdsNamed(list, new Set(['shardis:c3'])), []);
  });
});

describe('which clients are fenced', () => {
  test('waited out in pending or preparing, or gone from the registry since pending; never one that acked preparing', () => {
    const preparing = { acked: ['fine', 'thawed'], waitedOut: ['frozen'], waiting: [] };
    // thawed: waited out in pending, then came back and acked preparing (it drained first).
    // removed: waited out in pending, its entry removed by status() before the preparing wait.
    // vanished: acked pending, then gone (quit, or removed).
    assert.deepEqual(fenceSet(['thawed', 'removed'], ['fine', 'thawed', 'removed', 'vanished', 'frozen'], preparing), ['frozen', 'removed', 'vanished']);
    assert.deepEqual(fenceSet([], [], { acked: ['a'], waitedOut: [], waiting: [] }), []);
  });
});

describe('the lock holder', () => {
  test('a holder is written with a random token and read back', () => {
    const holder = { host: 'box', pid: 12, since: 1000 };
    const a = lockValue(holder);
    assert.notEqual(a, lockValue(holder), 'each holder has its own token');
    assert.deepEqual(parseLockHolder(a), holder);
    assert.equal(parseLockHolder('garbage'), null);
    assert.equal(parseLockHolder(null), null);
  });
});

describe('run options', () => {
  test('defaults', () => {
    const s = runSettings();
    assert.deepEqual(
      [s.batchMs, s.maxBatchKeys, s.largeKeyBytes, s.ackTimeoutMs, s.migrateTimeoutMs, s.lockMs, s.clearTarget],
      [DEFAULTS.batchMs, 1000, 1024 * 1024, 60_000, 5000, DEFAULTS.lockMs, false],
    );
  });

  test('bad values are refused naming the option', () => {
    assert.throws(() => runSettings({ batchMs: 0 }), /batchMs must be a positive number/);
    assert.throws(() => runSettings({ maxBatchKeys: 2.5 }), /maxBatchKeys must be a positive integer/);
    assert.throws(() => runSettings({ lockMs: 100 }), /lockMs must be at least 300/);
    assert.throws(() => runSettings({ largeKeyBytes: -1 }), /largeKeyBytes/);
    assert.equal(runSettings({ largeKeyBytes: Infinity }).largeKeyBytes, Infinity);
  });
});

describe('transient errors (one list, src/transient.ts, for the migrator and the client\'s migrating path)', () => {
  test('IOERR, LOADING, timeouts, reconnects are retried; BUSYKEY and others are not', () => {
    for (const message of [
      'IOERR error or timeout reading to target instance',
      'ERR Target instance replied with error: LOADING Redis is loading the dataset in memory',
      'Command timed out',
      'Connection is closed.',
      'connect ECONNREFUSED 127.0.0.1:6379',
      'Reached the max retries per request limit (which is 1). Refer to "maxRetriesPerRequest" option for details.',
      'BUSY Redis is busy running a script.',
      'ERR Target instance replied with error: READONLY You can\'t write against a read only replica.',
      'group 2 (127.0.0.1:7002) is unavailable: connect ECONNREFUSED',
    ]) {
      assert.ok(isTransient(new Error(message)), message);
    }
    for (const message of ['ERR Target instance replied with error: BUSYKEY Target key name already exists.', 'ERR syntax error', 'NOAUTH Authentication required.']) {
      assert.ok(!isTransient(new Error(message)), message);
    }
    assert.ok(!isTransient('IOERR'), 'only Errors');
  });
});
