// The pure parts of finding a Sentinel-named group's replicas: parsing
// `SENTINEL REPLICAS`, and which of the replicas a sentinel lists get a
// connection (never the master; not one the sentinel sees down, unless a
// connection to it works).
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { parseSentinelReplicas, replicasToUse, type SentinelView } from '../../src/topology/sentinel-replicas.js';
import { formatHostPort } from '../../src/topology/master-address.js';

/** One entry of a `SENTINEL REPLICAS` reply, as RESP2 gives it (a flat field/value array). */
function entry(ip: string, port: number, flags: string, extra: Record<string, string> = {}): string[] {
  const fields: Record<string, string> = { name: `${ip}:${port}`, ip, port: String(port), runid: 'abc', flags, 'master-link-status': 'ok', 'master-host': '127.0.0.1', 'master-port': '6379', ...extra };
  return Object.entries(fields).flat();
}

describe('parseSentinelReplicas', () => {
  test('reads address and flags of each replica', () => {
    const reply = [
      entry('127.0.0.1', 6380, 'slave'),
      entry('127.0.0.1', 6381, 's_down,slave,disconnected'),
      entry('10.0.0.3', 6379, 'slave,disconnected'),
      entry('10.0.0.4', 6379, 'o_down,slave'),
      entry('::1', 7000, 'slave'),
    ];
    assert.deepEqual(parseSentinelReplicas(reply), [
      { address: '127.0.0.1:6380', down: false },
      { address: '127.0.0.1:6381', down: true },
      { address: '10.0.0.3:6379', down: true },
      { address: '10.0.0.4:6379', down: true },
      { address: '[::1]:7000', down: false },
    ]);
  });

  test('leaves out entries without a usable ip and port, and replies that are not arrays', () => {
    assert.deepEqual(parseSentinelReplicas(null), []);
    assert.deepEqual(parseSentinelReplicas('ERR'), []);
    assert.deepEqual(parseSentinelReplicas([]), []);
    assert.deepEqual(parseSentinelReplicas([['name', 'x', 'flags', 'slave'], 'junk', entry('127.0.0.1', 0, 'slave'), entry('', 6379, 'slave'), ['ip', '127.0.0.1', 'port', 'x']]), []);
    // A flag that merely contains a down word is not one.
    assert.deepEqual(parseSentinelReplicas([entry('127.0.0.1', 6390, 'slave,promoted_s_down_x')]), [{ address: '127.0.0.1:6390', down: false }]);
  });
});

describe('replicasToUse', () => {
  const view = (master: string | null, ...replicas: [string, boolean][]): SentinelView => ({ master, replicas: replicas.map(([address, down]) => ({ address, down })) });
  const none = (): boolean => false;

  test('every replica the sentinel lists, sorted and without duplicates', () => {
    assert.deepEqual(replicasToUse(view('h:1', ['h:3', false], ['h:2', false], ['h:3', false]), ['h:1'], none), ['h:2', 'h:3']);
    assert.deepEqual(replicasToUse(view('h:1'), ['h:1'], none), []);
  });

  test('never the master, by any of the addresses given for it (a sentinel may still list a promoted replica)', () => {
    assert.deepEqual(replicasToUse(view('h:2', ['h:1', false], ['h:2', false], ['h:3', false]), ['h:2', '127.0.0.9:3'], none), ['h:1', 'h:3']);
    assert.deepEqual(replicasToUse(view(null, ['h:1', false], ['h:2', false]), [null, 'h:2'], none), ['h:1']);
  });

  test('a replica the sentinel sees down is left out, unless a connection to it works', () => {
    const connected = (address: string): boolean => address === 'h:3';
    assert.deepEqual(replicasToUse(view('h:1', ['h:2', true], ['h:3', true], ['h:4', false]), ['h:1'], connected), ['h:3', 'h:4']);
  });
});

test('formatHostPort brackets IPv6 hosts', () => {
  assert.equal(formatHostPort({ host: '10.0.0.1', port: 6379 }), '10.0.0.1:6379');
  assert.equal(formatHostPort({ host: 'fe80::1', port: 6379 }), '[fe80::1]:6379');
  assert.equal(formatHostPort({ host: 'redis.local', port: 1 }), 'redis.local:1');
});
