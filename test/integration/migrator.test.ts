// Specification of the migrator (DESIGN §5, migrator column) on real
// redis-server processes: a coordinator and three groups. Slots move with
// their keys while clients that follow the coordinator keep writing to them;
// every acknowledged write survives, and no key of the slots is left on the
// source. The migrator refuses a target that holds keys of the slots, never
// runs twice at once, can be aborted before keys move, stopped and resumed,
// killed and resumed, and fences the connections of a client whose lease ran
// out. Each test has its own cluster name, and empties the groups first.
import { test, describe, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import {
  AckTimeoutError,
  ArgumentError,
  MigrationLockedError,
  MigrationInProgressError,
  MigrationStateError,
  MigrationStoppedError,
  ShardisAdmin,
  TargetNotEmptyError,
  planRebalance,
  type GroupSpec,
  type MigrationProgress,
  type MigrationReport,
} from '../../src/admin/index.js';
import { ShardedRedis, slotOf, SLOT_COUNT } from '../../src/index.js';
import { coordinatorKeys } from '../../src/coordinator/keys.js';
import { advance, jobToJson, parseJob } from '../../src/admin/migration/job.js';
import { RedisServer, startRedisServers, stopAllRedisServers } from '../../src/testing/index.js';
import { childEnv, connectionsNamed, direct, sleep, until, within } from '../fixtures/integration-kit.js';
import { uniqueCluster } from '../fixtures/coordinator-kit.js';

const followerFixture = join(__dirname, '..', 'fixtures', 'follower-child.ts');
const migratorFixture = join(__dirname, '..', 'fixtures', 'migrator-child.ts');

let coordinatorServer: RedisServer;
let servers: RedisServer[] = [];
let groups: GroupSpec[] = [];
let coordinator: Redis;
/** Raw connections to groups 1, 2, 3 (index 0, 1, 2). */
let onGroup: Redis[] = [];
const admins: ShardisAdmin[] = [];
const clients: ShardedRedis[] = [];
const children: ChildProcess[] = [];
/** INCR loads still running; stopped after each test (one that failed did not stop its own). */
const loads: { stop: () => Promise<void> }[] = [];

before(async () => {
  [coordinatorServer, ...servers] = await startRedisServers(4);
  groups = servers.map((s, i) => ({ id: i + 1, master: s.address }));
  coordinator = direct(coordinatorServer);
  onGroup = servers.map((s) => direct(s));
});

beforeEach(async () => {
  await Promise.all(onGroup.map((r) => r.flushall()));
});

afterEach(async () => {
  await Promise.allSettled(loads.splice(0).map((load) => load.stop()));
});

after(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await Promise.all(clients.map((c) => c.quit().catch(() => c.disconnect())));
  await Promise.all(admins.map((a) => a.close()));
  await Promise.all([coordinator, ...onGroup].map((r) => r.quit().catch(() => r.disconnect())));
  await stopAllRedisServers();
});

function admin(cluster: string): ShardisAdmin {
  const made = new ShardisAdmin({ coordinator: `redis://${coordinatorServer.address}`, cluster });
  admins.push(made);
  return made;
}

async function follower(cluster: string, options: { leaseMs?: number; staleWaitMs?: number } = {}): Promise<ShardedRedis> {
  const client = new ShardedRedis({ coordinator: `redis://${coordinatorServer.address}`, cluster, refreshMs: 100, leaseMs: 2000, ...options });
  client.on('error', () => {});
  clients.push(client);
  await client.connect();
  return client;
}

/** One hash tag per slot in from..to, so `{tag}:x` lands in that slot. */
function tagsIn(from: number, to: number): string[] {
  const tags = new Map<number, string>();
  for (let i = 0; tags.size < to - from + 1; i++) {
    const tag = `t${i}`;
    const slot = slotOf(tag);
    if (slot >= from && slot <= to && !tags.has(slot)) tags.set(slot, tag);
  }
  return [...tags.values()];
}

/** `count` keys spread over slots from..to, each with the value `v:<key>`, written straight to `redis`. */
async function fill(redis: Redis, from: number, to: number, count: number, prefix: string): Promise<string[]> {
  const tags = tagsIn(from, to);
  const keys = Array.from({ length: count }, (_, i) => `{${tags[i % tags.length]}}:${prefix}:${i}`);
  for (let i = 0; i < keys.length; i += 1000) {
    const pipeline = redis.pipeline();
    for (const key of keys.slice(i, i + 1000)) pipeline.set(key, `v:${key}`);
    await pipeline.exec();
  }
  return keys;
}

/** Every key of `redis`'s server whose slot is in from..to. */
async function keysInSlots(redis: Redis, from: number, to: number): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'COUNT', 1000);
    for (const key of keys) if (slotOf(key) >= from && slotOf(key) <= to) found.push(key);
    cursor = next;
  } while (cursor !== '0');
  return found;
}

/** Asserts every key is on `redis` with the value fill() gave it. */
async function assertAllThere(redis: Redis, keys: readonly string[], where: string): Promise<void> {
  for (let i = 0; i < keys.length; i += 1000) {
    const part = keys.slice(i, i + 1000);
    const values = await redis.mget(...part);
    const wrong = part.filter((key, j) => values[j] !== `v:${key}`);
    assert.deepEqual(wrong.slice(0, 5), [], `${wrong.length} keys missing or wrong on ${where}`);
  }
}

/**
 * Clients INCRing counters until stopped; each reply counted per counter.
 * Any error is kept (with the counter), since a failed INCR may or may not have happened.
 */
function incrLoad(targets: readonly ShardedRedis[], counters: readonly string[], loopsPerClient = 3) {
  const acked = new Map<string, number>(counters.map((c) => [c, 0]));
  const errors: string[] = [];
  let running = true;
  let n = 0;
  const loops = targets.flatMap((client) =>
    Array.from({ length: loopsPerClient }, async () => {
      while (running && client.status !== 'end') {
        const counter = counters[n++ % counters.length]!;
        try {
          await client.incr(counter);
          acked.set(counter, acked.get(counter)! + 1);
        } catch (error) {
          errors.push(`${counter}: ${(error as Error).message}`);
          await sleep(10);
        }
      }
    }),
  );
  const load = {
    acked,
    errors,
    total: () => [...acked.values()].reduce((a, b) => a + b, 0),
    stop: async () => {
      running = false;
      await within(10_000, 'the INCR loops to end', Promise.all(loops));
    },
  };
  loads.push(load);
  return load;
}

/** Counters: `perSide` in slots from..to and `perSide` elsewhere (spread over every group). */
function counterKeys(from: number, to: number, perSide: number, name: string): string[] {
  const inside = tagsIn(from, to).slice(0, perSide).map((tag) => `{${tag}}:ctr:${name}`);
  const outside: string[] = [];
  for (let i = 0; outside.length < perSide; i++) {
    const key = `ctr:${name}:${i}`;
    const slot = slotOf(key);
    if (slot < from || slot > to) outside.push(key);
  }
  return [...inside, ...outside];
}

async function assertCounters(client: ShardedRedis, load: ReturnType<typeof incrLoad>): Promise<void> {
  assert.deepEqual(load.errors.slice(0, 5), [], `${load.errors.length} INCRs failed`);
  for (const [counter, acked] of load.acked) assert.equal(Number(await client.get(counter)), acked, `counter ${counter}`);
}

/** The lock and job keys are gone, and the table has no migration. */
async function assertFinished(a: ShardisAdmin, cluster: string): Promise<void> {
  const keys = coordinatorKeys(cluster);
  assert.equal(await coordinator.exists(keys.lock), 0, 'lock released');
  assert.equal(await a.migrationStatus(), null, 'job deleted');
  assert.deepEqual((await a.readTable())!.migrations, []);
}

interface ChildLine {
  type: string;
  phase?: string;
  moved?: number;
  name?: string;
  message?: string;
}

/** test/fixtures/migrator-child.ts migrating slots from..to to group `to`, with what it says so far. */
function migratorChild(cluster: string, from: number, to: number, group: number, env: Record<string, string>) {
  const child = spawn(process.execPath, ['--import', 'tsx', migratorFixture, `redis://${coordinatorServer.address}`, cluster, String(from), String(to), String(group)], {
    env: childEnv(env),
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const lines: ChildLine[] = [];
  let buffered = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    const parts = buffered.split('\n');
    buffered = parts.pop()!;
    for (const line of parts) if (line.trim()) lines.push(JSON.parse(line) as ChildLine);
  });
  return { child, lines, exited };
}

/** Waits until the child migrator says it moved `keys` keys; fails at once when it ended first. */
async function untilMoved(lines: readonly ChildLine[], keys: number): Promise<void> {
  const ended = () => lines.find((m) => m.type === 'error' || m.type === 'done');
  await until(30_000, `the child migrator to move ${keys} keys`, () => ended() !== undefined || lines.some((m) => m.type === 'progress' && m.phase === 'migrating' && m.moved! >= keys));
  assert.equal(ended(), undefined, 'the child migrator ended before it was stopped');
}

/** resumeMigration, retried while another migrator's lock has not expired yet (at most 10 s). */
async function resumeWhenUnlocked(resumer: ShardisAdmin, onRefusal: () => void = () => {}): Promise<MigrationReport> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      return await within(30_000, 'the resumed migration', resumer.resumeMigration());
    } catch (error) {
      if (!(error instanceof MigrationLockedError) || Date.now() > deadline) throw error;
      onRefusal();
      await sleep(200);
    }
  }
}

describe('migrating slots with their keys while clients write', () => {
  test('10k keys move while two clients INCR counters in those slots and others: every acknowledged INCR counted, nothing left on the source', async (t) => {
    const cluster = uniqueCluster('mig');
    const a = admin(cluster);
    await a.initCluster({ groups });
    const moving = await fill(onGroup[0]!, 0, 99, 10_000, 'm');
    const staying = await fill(onGroup[0]!, 100, 300, 2000, 's');
    const [c1, c2] = [await follower(cluster), await follower(cluster)];
    const counters = counterKeys(0, 99, 10, 'main');
    const load = incrLoad([c1!, c2!], counters);
    await sleep(200);

    const phases: string[] = [];
    const progress: MigrationProgress[] = [];
    const report = await within(60_000, 'the migration', a.migrate({
      slots: [{ from: 0, to: 99 }],
      to: 2,
      onProgress: (p) => {
        progress.push(p);
        if (phases[phases.length - 1] !== p.phase) phases.push(p.phase);
      },
    }));
    await sleep(200);
    await load.stop();

    t.diagnostic(`moved ${report.moved} keys in ${report.ms} ms, ${report.keysPerSec} keys/s while moving; ${load.total()} INCRs acknowledged meanwhile`);
    assert.deepEqual(phases, ['pending', 'preparing', 'migrating', 'verifying', 'done']);
    assert.ok(report.moved >= 10_000, `moved ${report.moved}`);
    assert.equal(report.verifyPasses, 1);
    assert.deepEqual(report.waitedOut, []);
    assert.ok(load.total() > 100, `${load.total()} INCRs`);
    await assertCounters(c1!, load);
    assert.deepEqual(await keysInSlots(onGroup[0]!, 0, 99), [], 'no key of the slots left on the source');
    await assertAllThere(onGroup[1]!, moving, 'group 2');
    await assertAllThere(onGroup[0]!, staying, 'group 1 (slots that did not move)');
    const table = (await a.readTable())!;
    for (let slot = 0; slot < SLOT_COUNT; slot++) {
      const expected = slot <= 99 ? 2 : slot <= 341 ? 1 : slot <= 682 ? 2 : 3;
      if (table.owner[slot] !== expected) assert.fail(`slot ${slot} owned by ${table.owner[slot]}, expected ${expected}`);
    }
    await assertFinished(a, cluster);
    const moves = progress.filter((p) => p.phase === 'migrating' && p.moved > 0);
    assert.ok(moves.length > 3, 'progress after every batch');
    assert.ok(moves.some((p) => p.etaMs !== null && p.keysPerSec > 0), 'speed and time left are estimated');
  });

  test('the target holding keys of the slots is refused, naming them; clearTarget deletes them', async () => {
    const cluster = uniqueCluster('target');
    const a = admin(cluster);
    await a.initCluster({ groups });
    await fill(onGroup[0]!, 10, 19, 100, 'm');
    const [stray] = await fill(onGroup[1]!, 15, 15, 1, 'stray');
    const version = (await a.readTable())!.version;

    await assert.rejects(a.migrate({ slots: [{ from: 10, to: 19 }], to: 2 }), (e: unknown) =>
      e instanceof TargetNotEmptyError && e.group === 2 && e.keys.length === 1 && e.keys[0]!.key === stray && e.message.includes(stray!));
    assert.equal((await a.readTable())!.version, version, 'the table was not touched');
    await assertFinished(a, cluster);

    const report = await within(20_000, 'the migration', a.migrate({ slots: [{ from: 10, to: 19 }], to: 2, clearTarget: true }));
    assert.equal(report.cleared, 1);
    assert.equal(report.moved, 100);
    assert.equal(await onGroup[1]!.exists(stray!), 0);
    assert.equal((await keysInSlots(onGroup[1]!, 10, 19)).length, 100);
  });

  test('a small batchMs bounds SCAN too: no SCAN asks for more keys than the time budget allows', async () => {
    // SCAN blocks the source like MIGRATE does: with batchMs 0.5 its COUNT
    // stays under (0.5 - 0.3 ms call overhead) / 0.5 µs per key = 400, far
    // below maxBatchKeys (which once set the COUNT whatever batchMs said).
    const cluster = uniqueCluster('scan-budget');
    const a = admin(cluster);
    await a.initCluster({ groups });
    await fill(onGroup[0]!, 10, 19, 2000, 'sb');
    const source = onGroup[0]!;
    await source.config('SET', 'slowlog-log-slower-than', '0', 'slowlog-max-len', '100000');
    try {
      await source.slowlog('RESET');
      const report = await within(30_000, 'the migration', a.migrate({ slots: [{ from: 10, to: 19 }], to: 2, batchMs: 0.5, maxBatchKeys: 1000 }));
      assert.equal(report.moved, 2000);
      const entries = (await source.slowlog('GET', 100_000)) as [number, number, number, string[]][];
      const counts = entries.filter(([, , , args]) => String(args[0]).toUpperCase() === 'SCAN').map(([, , , args]) => Number(args[args.length - 1]));
      assert.ok(counts.length > 0, 'the slow log saw the SCAN calls');
      assert.ok(Math.max(...counts) <= 400, `SCAN COUNTs: ${[...new Set(counts)].join(', ')}`);
    } finally {
      await source.config('SET', 'slowlog-log-slower-than', '10000', 'slowlog-max-len', '128');
    }
  });

  test('bad requests are refused before anything changes', async () => {
    const cluster = uniqueCluster('bad');
    const a = admin(cluster);
    await a.initCluster({ groups });
    await assert.rejects(a.migrate({ slots: [{ from: 300, to: 400 }], to: 3 }), ArgumentError);
    await assert.rejects(a.migrate({ slots: [{ from: 0, to: 10 }], to: 1 }), /already owns/);
    await assert.rejects(a.migrate({ slots: [{ from: 0, to: 10 }], to: 7 }), /group 7 is not in cluster/);
    await assert.rejects(a.resumeMigration(), (e: unknown) => e instanceof MigrationStateError && /no migration job to resume/.test(e.message));
    await assert.rejects(a.abortMigration(), (e: unknown) => e instanceof MigrationStateError && /no migration job to abort/.test(e.message));
    await assertFinished(a, cluster);
  });

  test('a second migrator meets the lock (naming its holder) while the first runs', async () => {
    const cluster = uniqueCluster('lock');
    const [a, b] = [admin(cluster), admin(cluster)];
    await a.initCluster({ groups });
    await fill(onGroup[0]!, 0, 9, 2000, 'm');
    let second: Promise<unknown> | null = null;
    const report = await within(20_000, 'the first migration', a.migrate({
      slots: [{ from: 0, to: 9 }],
      to: 2,
      maxBatchKeys: 100,
      onProgress: (p) => {
        if (p.phase === 'migrating' && second === null) {
          second = Promise.allSettled([b.migrate({ slots: [{ from: 20, to: 29 }], to: 3 }), b.resumeMigration(), b.abortMigration()]);
        }
      },
    }));
    assert.ok(second !== null);
    const outcomes = await (second as Promise<PromiseSettledResult<unknown>[]>);
    for (const outcome of outcomes) {
      assert.equal(outcome.status, 'rejected');
      const error = (outcome as PromiseRejectedResult).reason as unknown;
      assert.ok(error instanceof MigrationLockedError, String(error));
      assert.equal(error.holder?.pid, process.pid);
      assert.ok(error.ttlMs > 0);
      assert.match(error.message, /held by a migrator on .* \(pid \d+/);
    }
    assert.equal(report.moved, 2000);
    await assertFinished(a, cluster);
    // And with the lock free again, another migration can start; one at a time.
    await b.migrate({ slots: [{ from: 20, to: 29 }], to: 3 });
  });

  test('abort while preparing: the table goes back to stable on the source and held commands go there', async () => {
    const cluster = uniqueCluster('abort');
    const a = admin(cluster);
    await a.initCluster({ groups });
    const [key] = await fill(onGroup[0]!, 50, 50, 1, 'held');
    const client = await follower(cluster, { staleWaitMs: 10_000 });
    const controller = new AbortController();
    client.on('topology', () => {
      if (client.slotTable.migrations[0]?.state === 'preparing') controller.abort();
    });
    await assert.rejects(
      within(20_000, 'the stopped migration', a.migrate({ slots: [{ from: 50, to: 59 }], to: 3, signal: controller.signal })),
      (e: unknown) => e instanceof MigrationStoppedError && e.phase === 'preparing' && /abortMigration/.test(e.message),
    );
    assert.equal((await a.migrationStatus())?.phase, 'preparing');
    assert.equal((await a.readTable())!.migrations[0]?.state, 'preparing');
    await until(2000, 'the client to apply preparing', () => client.slotTable.migrations[0]?.state === 'preparing');

    let done = false;
    const held = client.set(key!, 'written while preparing').then((reply) => ((done = true), reply));
    await sleep(300);
    assert.equal(done, false, 'preparing holds the command');
    // A new migration is refused while this one is in progress.
    await assert.rejects(a.migrate({ slots: [{ from: 0, to: 9 }], to: 2 }), MigrationInProgressError);

    await a.abortMigration();
    assert.equal(await within(3000, 'the held SET', held), 'OK');
    assert.equal(await onGroup[0]!.get(key!), 'written while preparing', 'the source got it');
    assert.equal(await onGroup[2]!.exists(key!), 0);
    const table = (await a.readTable())!;
    assert.equal(table.owner[50], 1);
    await assertFinished(a, cluster);
  });

  test('stopped by its signal mid-move, a migration is resumed by another admin and finishes with nothing lost', async (t) => {
    const cluster = uniqueCluster('stop');
    const a = admin(cluster);
    await a.initCluster({ groups });
    const moving = await fill(onGroup[0]!, 200, 229, 5000, 'm');
    const client = await follower(cluster);
    const load = incrLoad([client], counterKeys(200, 229, 5, 'stop'), 2);
    const controller = new AbortController();
    await assert.rejects(
      within(30_000, 'the stopped migration', a.migrate({
        slots: [{ from: 200, to: 229 }],
        to: 3,
        maxBatchKeys: 100,
        signal: controller.signal,
        onProgress: (p) => {
          if (p.phase === 'migrating' && p.moved >= 1000) controller.abort();
        },
      })),
      (e: unknown) => e instanceof MigrationStoppedError && e.phase === 'migrating' && !/abortMigration/.test(e.message),
    );
    const job = (await a.migrationStatus())!;
    assert.equal(job.phase, 'migrating');
    assert.ok(job.moved >= 1000 && job.moved < 5000, `moved ${job.moved}`);
    await assert.rejects(a.abortMigration(), (e: unknown) => e instanceof MigrationStateError && /resumeMigration/.test(e.message));
    await sleep(300); // clients keep working on the half-moved slots meanwhile

    const report = await within(30_000, 'the resumed migration', admin(cluster).resumeMigration());
    await load.stop();
    t.diagnostic(`resumed: ${report.moved} keys moved in all, ${report.keysPerSec} keys/s in the resumed run`);
    assert.equal(report.resumed, true);
    assert.ok(report.moved >= 5000, `moved ${report.moved}`);
    await assertCounters(client, load);
    assert.deepEqual(await keysInSlots(onGroup[0]!, 200, 229), []);
    await assertAllThere(onGroup[2]!, moving, 'group 3');
    await assertFinished(a, cluster);
  });

  test('resumed with the table one write behind the job; a key on both sides keeps the target copy; a large key moves alone', async () => {
    const cluster = uniqueCluster('busy');
    const a = admin(cluster);
    await a.initCluster({ groups });
    const moving = await fill(onGroup[0]!, 300, 309, 500, 'm');
    const controller = new AbortController();
    // Stopped in preparing; then the job is set one phase ahead of the table by
    // hand, as a migrator killed between saving its job and writing the table
    // could leave it (shardis now does both in one script; older jobs may not).
    await assert.rejects(
      within(20_000, 'the stopped migration', a.migrate({
        slots: [{ from: 300, to: 309 }],
        to: 3,
        signal: controller.signal,
        onProgress: (p) => p.phase === 'preparing' && controller.abort(),
      })),
      MigrationStoppedError,
    );
    const { migration } = coordinatorKeys(cluster);
    await coordinator.set(migration, jobToJson(advance(parseJob((await coordinator.get(migration))!, migration), 'migrating', Date.now())));
    assert.equal((await a.migrationStatus())?.phase, 'migrating');
    assert.equal((await a.readTable())!.migrations[0]?.state, 'preparing', 'the table is one write behind');
    // A copy on each side (as a timed-out MIGRATE or a failover of the source leaves), and a large key.
    const [both, large] = await fill(onGroup[0]!, 305, 305, 2, 'extra');
    await onGroup[2]!.set(both!, 'newer copy on the target');
    await onGroup[0]!.set(large!, 'x'.repeat(20_000));

    const report = await within(20_000, 'the resumed migration', admin(cluster).resumeMigration({ largeKeyBytes: 4096 }));
    assert.equal(report.busy, 1);
    assert.equal(report.largeKeys, 1);
    assert.equal(report.moved, 501, 'the 500 keys and the large one');
    assert.equal(await onGroup[2]!.get(both!), 'newer copy on the target');
    assert.equal((await onGroup[2]!.get(large!))?.length, 20_000);
    assert.deepEqual(await keysInSlots(onGroup[0]!, 300, 309), []);
    await assertAllThere(onGroup[2]!, moving, 'group 3');
    await assertFinished(a, cluster);
  });

  test('a live client that does not ack in time: AckTimeoutError naming it; the job is kept and resumes later', async () => {
    const cluster = uniqueCluster('ack');
    const a = admin(cluster);
    await a.initCluster({ groups });
    const keys = coordinatorKeys(cluster);
    await registerStuckClient(keys.clients);
    const waiting: number[] = [];
    await assert.rejects(
      within(10_000, 'the migration', a.migrate({
        slots: [{ from: 400, to: 409 }],
        to: 3,
        ackTimeoutMs: 500,
        onProgress: (p) => waiting.push(p.waitingFor.length),
      })),
      (e: unknown) => e instanceof AckTimeoutError && e.clients.join() === 'stuck' && e.version === 2 && /pending/.test(e.message),
    );
    assert.ok(waiting.includes(1), 'progress told who was waited for');
    assert.equal((await a.migrationStatus())?.phase, 'pending', 'the job is kept');
    assert.equal(await coordinator.exists(keys.lock), 0, 'the lock is released');
    await coordinator.hdel(keys.clients, 'stuck');
    const report = await within(20_000, 'the resumed migration', a.resumeMigration());
    assert.equal(report.resumed, true);
    assert.equal((await a.readTable())!.owner[405], 3);
    await assertFinished(a, cluster);
  });

  test('a migrator whose lock was taken over writes neither the table nor its job', async () => {
    const cluster = uniqueCluster('takeover');
    const a = admin(cluster);
    await a.initCluster({ groups });
    const keys = coordinatorKeys(cluster);
    await registerStuckClient(keys.clients); // holds the migration in pending until it is removed
    let waiting!: () => void;
    const waited = new Promise<void>((resolve) => (waiting = resolve));
    const run = a.migrate({ slots: [{ from: 500, to: 509 }], to: 3, lockMs: 60_000, onProgress: (p) => p.waitingFor.length > 0 && waiting() });
    await within(10_000, 'the wait in pending', waited);
    // Another migrator takes the lock (as after this one's lease ran out); its renewal timer has not run yet.
    await coordinator.set(keys.lock, 'someone else');
    await coordinator.hdel(keys.clients, 'stuck');
    await assert.rejects(within(10_000, 'the migration', run), (e: unknown) => e instanceof MigrationLockedError && e.lost);
    assert.equal((await a.readTable())!.migrations[0]?.state, 'pending', 'preparing was not written');
    assert.equal((await a.migrationStatus())?.phase, 'pending', 'the job was not advanced');
    assert.equal(await coordinator.get(keys.lock), 'someone else', 'the other holder keeps the lock');
    await coordinator.del(keys.lock);
    await within(20_000, 'the resumed migration', a.resumeMigration());
    await assertFinished(a, cluster);
  });

  test('a migrator killed (SIGKILL) mid-move is resumed and finishes with nothing lost', async (t) => {
    const cluster = uniqueCluster('kill');
    const a = admin(cluster);
    await a.initCluster({ groups });
    const moving = await fill(onGroup[0]!, 0, 49, 10_000, 'm');
    const client = await follower(cluster);
    const load = incrLoad([client], counterKeys(0, 49, 5, 'kill'), 2);

    const { child, lines, exited } = migratorChild(cluster, 0, 49, 2, { LOCK_MS: '1500', MAX_BATCH_KEYS: '50', BATCH_MS: '2' });
    await untilMoved(lines, 2000);
    child.kill('SIGKILL');
    const movedAtKill = Math.max(...lines.map((m) => m.moved ?? 0));
    await within(5000, 'the child to die', exited);
    const job = (await a.migrationStatus())!;
    assert.equal(job.phase, 'migrating');
    assert.ok(job.moved >= movedAtKill - 50 && job.moved < 10_000, `job says ${job.moved} moved, the child ${movedAtKill}`);

    // Its lock lasts until its lease (1.5 s) runs out.
    let refusals = 0;
    const report = await resumeWhenUnlocked(admin(cluster), () => refusals++);
    await load.stop();
    t.diagnostic(`killed after ${movedAtKill} keys; resumed after ${refusals} refusals on the lock; ${report.moved} moved in all`);
    // A batch the killed migrator moved but did not record yet is counted by nobody (at most 50 keys).
    assert.ok(report.moved >= 10_000 - 50, `moved ${report.moved}`);
    await assertCounters(client, load);
    assert.deepEqual(await keysInSlots(onGroup[0]!, 0, 49), []);
    await assertAllThere(onGroup[1]!, moving, 'group 2');
    await assertFinished(a, cluster);
  });

  test('a migrator paused (SIGSTOP) mid-move is taken over; when it wakes up, its connections are gone and it stops, changing nothing', async () => {
    const cluster = uniqueCluster('paused');
    const a = admin(cluster);
    await a.initCluster({ groups });
    const moving = await fill(onGroup[0]!, 250, 289, 6000, 'm');
    const { child, lines } = migratorChild(cluster, 250, 289, 3, { LOCK_MS: '1500', MAX_BATCH_KEYS: '50', BATCH_MS: '2' });
    await untilMoved(lines, 1000);
    child.kill('SIGSTOP');
    assert.equal((await connectionsNamed(onGroup[0]!, `shardis-migrator:${cluster}`)).length, 1, 'the paused migrator is connected to the source');

    const report = await resumeWhenUnlocked(admin(cluster));
    // A batch the paused migrator moved but did not record yet is counted by nobody (at most 50 keys).
    assert.ok(report.moved >= 6000 - 50, `moved ${report.moved}`);
    const version = (await a.readTable())!.version;
    assert.equal((await connectionsNamed(onGroup[0]!, `shardis-migrator:${cluster}`)).length, 0, 'the paused migrator was fenced off the source');

    child.kill('SIGCONT');
    await until(10_000, 'the woken migrator to stop', () => lines.some((m) => m.type === 'error' || m.type === 'done'));
    const end = lines.find((m) => m.type === 'error' || m.type === 'done')!;
    assert.equal(end.name, 'MigrationLockedError', JSON.stringify(end));
    assert.equal((await a.readTable())!.version, version, 'it wrote no table');
    assert.equal(await a.migrationStatus(), null, 'nor a job');
    assert.deepEqual(await keysInSlots(onGroup[0]!, 250, 289), []);
    await assertAllThere(onGroup[2]!, moving, 'group 3');
  });

  test('a client whose lease runs out (its process stopped) is waited out, and its connections on the source are killed', async () => {
    const cluster = uniqueCluster('frozen');
    const a = admin(cluster);
    await a.initCluster({ groups });
    const counter = `{${tagsIn(70, 70)[0]}}:frozen`;
    const clientId = `frozen-${process.pid}`;
    const child = spawn(process.execPath, ['--import', 'tsx', followerFixture, `redis://${coordinatorServer.address}`, cluster, '100', '2000'], {
      env: childEnv({ CLIENT_ID: clientId, COUNTER: counter }),
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    children.push(child);
    const messages: { type: string; n?: number }[] = [];
    let buffered = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      buffered += chunk;
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) if (line.trim()) messages.push(JSON.parse(line) as { type: string });
    });
    await until(20_000, 'the child counting', () => messages.filter((m) => m.type === 'incr').length >= 5);
    assert.ok((await connectionsNamed(onGroup[0]!, `shardis:${clientId}`)).length >= 1, 'it has a connection on the source');

    child.kill('SIGSTOP');
    const started = Date.now();
    const report = await within(30_000, 'the migration', a.migrate({ slots: [{ from: 70, to: 79 }], to: 2 }));
    const ms = Date.now() - started;
    assert.deepEqual(report.waitedOut, [clientId]);
    assert.ok(report.fencedConnections >= 1, `${report.fencedConnections} connections killed`);
    assert.ok(ms >= 1500, `waited ${ms} ms for the lease (2000 ms + margin) to run out`);
    assert.deepEqual(await connectionsNamed(onGroup[0]!, `shardis:${clientId}`), [], 'no connection of it left on the source');
    assert.deepEqual(await connectionsNamed(onGroup[1]!, `shardis:${clientId}`), [], 'nor on the target');

    child.kill('SIGCONT');
    const seen = messages.length;
    await until(10_000, 'counting after the thaw', () => messages.slice(seen).filter((m) => m.type === 'incr').length >= 10);
    child.kill('SIGTERM');
    await within(5000, 'the child to exit', new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.once('exit', resolve))));
    // An INCR whose reply was lost with its killed connection may have happened: the counter holds
    // every acknowledged INCR, plus at most the ones that failed.
    const acked = messages.filter((m) => m.type === 'incr').length;
    const failed = messages.filter((m) => m.type === 'incr-error').length;
    const value = Number(await onGroup[1]!.get(counter));
    assert.ok(value >= acked && value <= acked + failed, `counter ${value}, acknowledged ${acked}, failed ${failed}`);
    assert.equal(await onGroup[0]!.exists(counter), 0);
  });

  test('groups with a password: MIGRATE authenticates to the target with the admin\'s credentials', async () => {
    const secured = await startRedisServers(2, { password: 'migr-secret' });
    const cluster = uniqueCluster('auth');
    const a = new ShardisAdmin({ coordinator: `redis://${coordinatorServer.address}`, cluster, redisOptions: { password: 'migr-secret' } });
    admins.push(a);
    await a.initCluster({ groups: secured.map((s, i) => ({ id: i + 1, master: s.address })) });
    const [source, target] = secured.map((s) => direct(s));
    try {
      const moving = await fill(source!, 0, 9, 300, 'auth');
      const report = await within(20_000, 'the migration', a.migrate({ slots: [{ from: 0, to: 9 }], to: 2 }));
      assert.equal(report.moved, 300);
      await assertAllThere(target!, moving, 'the target');
      assert.deepEqual(await keysInSlots(source!, 0, 9), []);
    } finally {
      source!.disconnect();
      target!.disconnect();
      await Promise.all(secured.map((s) => s.stop()));
    }
  });

  test('rebalance from one group to three moves the planned slots with their keys', async (t) => {
    const cluster = uniqueCluster('rebalance');
    const a = admin(cluster);
    await a.initCluster({ groups, slots: [{ from: 0, to: 1023, group: 1 }] });
    const keys = await fill(onGroup[0]!, 0, 1023, 6000, 'r');
    const plan = planRebalance((await a.readTable())!);
    assert.equal(plan.moves.length, 2);
    const client = await follower(cluster);
    const load = incrLoad([client], counterKeys(400, 1023, 5, 'rb'), 2);

    const reports = await within(60_000, 'the rebalance', a.rebalance());
    await load.stop();
    t.diagnostic(`rebalance: ${reports.map((r) => `${r.moved} keys ${r.from}→${r.to} at ${r.keysPerSec} keys/s`).join('; ')}`);
    assert.deepEqual(reports.map((r) => [r.from, r.to, r.slots]), plan.moves.map((m) => [m.from, m.to, m.slots]));
    const table = (await a.readTable())!;
    assert.deepEqual(table.slots, plan.target);
    await assertCounters(client, load);
    for (const [i, redis] of onGroup.entries()) {
      let cursor = '0';
      do {
        const [next, found] = await redis.scan(cursor, 'COUNT', 1000);
        for (const key of found) if (table.owner[slotOf(key)] !== i + 1) assert.fail(`${key} on group ${i + 1}, owned by ${table.owner[slotOf(key)]}`);
        cursor = next;
      } while (cursor !== '0');
    }
    const byGroup = await Promise.all(onGroup.map((r) => r.dbsize()));
    assert.equal(byGroup.reduce((x, y) => x + y, 0), keys.length + load.acked.size);
    for (const count of byGroup) assert.ok(count > 1500, `keys per group ${byGroup.join(', ')}`);
    await assertFinished(a, cluster);
  });
});

/** Registers client "stuck": its entry is fresh and its lease long, but it never applies a new table. */
async function registerStuckClient(clientsKey: string): Promise<void> {
  const [seconds, micros] = await coordinator.time();
  const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  await coordinator.hset(clientsKey, 'stuck', JSON.stringify({ version: 1, at: now, host: 'elsewhere', pid: 1, name: 'shardis:stuck', leaseMs: 60_000 }));
}
