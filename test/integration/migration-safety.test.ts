// The CI safety test of live migration (DESIGN §5; issue 4, point 3): four
// client processes write, acknowledged, over keys in all 1024 slots (INCRBY,
// HINCRBY, RPUSH of unique items, MSET alone and in MULTI, a defineCommand
// script and an EVAL; alone and in pipelines; half of them on the slots that
// are moving) while a migrator process moves slots back and forth among 3
// groups. One client and the migrator are killed with SIGKILL mid-run; the
// migration is resumed with ShardisAdmin.resumeMigration, and a second
// migrator goes on until at least 50 migrations are done.
//
// Then every key of every group is read directly and checked against the
// clients' journals: every counter (and hash field) is at least the sum of
// its acknowledged increments and at most the sum of those attempted
// (exactly the acknowledged sum when every attempt on it was acknowledged);
// every list holds each acknowledged item, and no item more often than it was
// sent; the two keys of an MSET always agree; the parent's padding keys are
// all there; and every key is on the group that owns its slot, once.
//
// The choices (which client dies, when, in which phase the migrator dies,
// which slots move where) come from SAFETY_SEED (random when unset, printed).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { ShardisAdmin, MigrationLockedError, type MigrationReport } from '../../src/admin/index.js';
import type { GroupSpec } from '../../src/index.js';
import { RedisServer, startRedisServers, stopAllRedisServers } from '../../src/testing/index.js';
import { childEnv, direct, sleep, until } from '../fixtures/integration-kit.js';
import { uniqueCluster } from '../fixtures/coordinator-kit.js';
import { check, readGroups } from '../fixtures/safety-check.js';
import { readJournal } from '../fixtures/safety-journal.js';
import { between, keysOf, padValue, pick, seeded, slotTags } from '../fixtures/safety-keys.js';

const SEED = Number(process.env.SAFETY_SEED ?? Math.floor(Math.random() * 2 ** 31));
const CLIENTS = 4;
/** Migrations to complete in all (each moves 1–4 slots). */
const MOVES = 50;
/** Padding keys per slot, written once before the clients start. */
const PADS = 6;
const TAG_PREFIX = `sf${process.pid}-`;
const PHASES = ['pending', 'preparing', 'migrating', 'verifying', 'done'] as const;

const clientScript = join(__dirname, '..', 'fixtures', 'safety-client.ts');
const migratorScript = join(__dirname, '..', 'fixtures', 'safety-migrator.ts');

interface Message {
  type: string;
  n?: number;
  phase?: string;
  slots?: number[];
  from?: number;
  to?: number;
  [field: string]: unknown;
}

/** A child process and everything it said. */
interface Child {
  readonly name: string;
  readonly child: ChildProcess;
  readonly messages: Message[];
  stderr: string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Called with each message as it arrives (kill triggers). */
  onMessage: (message: Message) => void;
}

let coordinatorServer: RedisServer;
let servers: RedisServer[] = [];
let groups: GroupSpec[] = [];
let admin: ShardisAdmin;
let onGroup: Redis[] = [];
let cluster: string;
let dir: string;
let failed = false;
const children: Child[] = [];
const tags = slotTags(TAG_PREFIX);

function launch(name: string, script: string, args: readonly (string | number)[], env: Record<string, string>): Child {
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args.map(String)], { env: childEnv(env), stdio: ['pipe', 'pipe', 'pipe'] });
  const entry: Child = {
    name,
    child,
    messages: [],
    stderr: '',
    exited: new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal }))),
    onMessage: () => {},
  };
  let buffered = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const line of lines) {
      if (!line.trim()) continue;
      let message: Message;
      try {
        message = JSON.parse(line) as Message;
      } catch {
        message = { type: 'text', text: line };
      }
      entry.messages.push(message);
      entry.onMessage(message);
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (entry.stderr = (entry.stderr + chunk).slice(-20_000)));
  child.stdin!.on('error', () => {}); // EPIPE once it is gone
  children.push(entry);
  return entry;
}

const running = (c: Child) => c.child.exitCode === null && c.child.signalCode === null;

/** Waits for `c` to exit within `ms`; SIGKILLs it and fails otherwise. */
async function exitOf(c: Child, ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([c.exited, new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), ms)))]);
  clearTimeout(timer);
  if (outcome !== null) return outcome;
  c.child.kill('SIGKILL');
  throw new Error(`${c.name} did not exit within ${ms} ms; killed. Last messages: ${JSON.stringify(c.messages.slice(-5))}\nstderr: ${c.stderr.slice(-2000)}`);
}

function describeChild(c: Child): string {
  return `${c.name}: last messages ${JSON.stringify(c.messages.slice(-3))}; stderr ${c.stderr.slice(-1500) || '(none)'}`;
}

before(async () => {
  [coordinatorServer, ...servers] = await startRedisServers(4);
  groups = servers.map((s, i) => ({ id: i + 1, master: s.address }));
  onGroup = servers.map((s) => direct(s));
  cluster = uniqueCluster('safety');
  admin = new ShardisAdmin({ coordinator: `redis://${coordinatorServer.address}`, cluster });
  const table = await admin.initCluster({ groups });
  // Padding, so that every slot has keys to move from the start.
  const pipelines = onGroup.map((r) => r.pipeline());
  tags.forEach((tag, slot) => {
    const pipeline = pipelines[table.owner[slot]! - 1]!;
    for (let j = 0; j < PADS; j++) pipeline.set(keysOf(tag).pad(j), padValue(slot, j));
  });
  await Promise.all(pipelines.map((p) => p.exec()));
  dir = mkdtempSync(join(tmpdir(), 'shardis-safety-'));
});

after(async () => {
  for (const c of children) if (running(c)) c.child.kill('SIGKILL');
  await Promise.all(children.filter(running).map((c) => exitOf(c, 5000).catch(() => {})));
  await admin?.close().catch(() => {});
  await Promise.all(onGroup.map((r) => r.quit().catch(() => r.disconnect())));
  await stopAllRedisServers();
  if (dir !== undefined) {
    if (failed || process.env.SAFETY_KEEP) console.log(`# migration-safety: journals kept in ${dir} (seed ${SEED})`);
    else rmSync(dir, { recursive: true, force: true });
  }
});

test(`no acknowledged write is lost while slots move, with a client and the migrator killed (seed ${SEED})`, { timeout: 170_000 }, async (t) => {
  try {
    await run(t);
  } catch (error) {
    failed = true;
    throw error;
  }
});

async function run(t: { diagnostic: (message: string) => void }): Promise<void> {
  const started = Date.now();
  const rng = seeded(SEED);
  const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)} s`;
  t.diagnostic(`seed ${SEED} (SAFETY_SEED=${SEED} to repeat its choices)`);
  const plan = {
    victim: between(rng, 0, CLIENTS - 1),
    victimAtMove: between(rng, 3, 10),
    // In preparing and migrating, its writes on the moving slots are held or moving their keys.
    victimPhase: pick(rng, ['pending', 'preparing', 'migrating'] as const),
    victimDelayMs: between(rng, 0, 30),
    migratorAtMove: between(rng, 12, 25),
    migratorPhase: pick(rng, PHASES.slice(0, 4)),
    migratorSkip: between(rng, 0, 2),
  };
  t.diagnostic(`plan: ${JSON.stringify(plan)}`);

  // The clients.
  const url = `redis://${coordinatorServer.address}`;
  const clients = Array.from({ length: CLIENTS }, (_, i) =>
    launch(`client ${i}`, clientScript, [url, cluster, i, join(dir, `client-${i}.jsonl`), SEED + 100 + i, 1_000_000, 120_000], {
      TAG_PREFIX,
      CLIENTS: String(CLIENTS),
      WORKERS: '4',
      PACE_MS: '2',
      REFRESH_MS: '150',
      LEASE_MS: '2500',
    }),
  );
  const swept = (c: Child) => c.messages.some((m) => m.type === 'swept');
  await until(40_000, 'every client ready and swept', () => clients.every(swept) || !clients.every(running), 50);
  for (const c of clients) if (!running(c)) assert.fail(`${describeChild(c)} exited before it was ready`);
  t.diagnostic(`${elapsed()}: ${CLIENTS} clients writing`);

  // Moves, with the kills, through the first migrator.
  const migratorEnv = { LOCK_MS: '1500', BATCH_MS: '5', MAX_BATCH_KEYS: '16', ACK_TIMEOUT_MS: '20000' };
  const migrator1 = launch('migrator 1', migratorScript, [url, cluster, SEED + 1, MOVES, 1, 90_000], migratorEnv);
  const victim = { armed: false, killedAt: null as string | null };
  let killedAt: Message | null = null;
  let seenInPhase = 0;
  migrator1.onMessage = (m) => {
    if (m.type === 'progress' && m.n === plan.victimAtMove && m.phase === plan.victimPhase && !victim.armed) {
      victim.armed = true;
      setTimeout(() => {
        clients[plan.victim]!.child.kill('SIGKILL');
        victim.killedAt = `${plan.victimDelayMs} ms after migration ${m.n} entered ${m.phase}`;
      }, plan.victimDelayMs);
    }
    // The migrator dies after the client: in migration migratorAtMove (or the first one after the client died).
    if (m.type !== 'progress' || killedAt !== null || victim.killedAt === null || m.n! < plan.migratorAtMove) return;
    if (PHASES.indexOf(m.phase as (typeof PHASES)[number]) < PHASES.indexOf(plan.migratorPhase)) return;
    if (m.n === plan.migratorAtMove && seenInPhase++ < plan.migratorSkip) return;
    migrator1.child.kill('SIGKILL');
    killedAt = m;
  };
  const first = await exitOf(migrator1, 90_000);
  if (first.signal !== 'SIGKILL' || killedAt === null) assert.fail(`migrator 1 ended by itself (${JSON.stringify(first)}) before it was killed; ${describeChild(migrator1)}`);
  const trigger = killedAt as Message;

  const starts = (c: Child) => c.messages.filter((m) => m.type === 'start');
  const dones = (c: Child) => c.messages.filter((m) => m.type === 'done');
  const size = (c: Child, n: number) => c.messages.find((m) => m.type === 'start' && m.n === n)!.slots!.length;
  let completed = dones(migrator1).length;
  let slotMoves = dones(migrator1).reduce((sum, m) => sum + size(migrator1, m.n!), 0);
  // The SIGKILL lands a little after the message that called for it: the migrator may have gone on. Its
  // stdout is a pipe (written synchronously), so its last 'start' is the migration it was in.
  const last = starts(migrator1).at(-1)!;
  const lastDone = dones(migrator1).some((m) => m.n === last.n);
  t.diagnostic(
    `${elapsed()}: client ${plan.victim} killed ${victim.killedAt}; migrator killed on migration ${trigger.n}'s ${trigger.phase} message ` +
      `(moved ${String(trigger.moved)}), last seen ${JSON.stringify(migrator1.messages.at(-1))}`,
  );

  // Resume the killed migration (its lock runs out within LOCK_MS).
  const job = await admin.migrationStatus();
  if (job !== null) {
    assert.deepEqual(
      { from: job.from, to: job.to, slots: job.slots.flatMap(([a, b]) => Array.from({ length: b - a + 1 }, (_, i) => a + i)) },
      { from: last.from, to: last.to, slots: last.slots },
      `the job left behind is migration ${last.n}'s, the last one started (${JSON.stringify(job)})`,
    );
    let resumed: MigrationReport | null = null;
    const deadline = Date.now() + 20_000;
    while (resumed === null) {
      try {
        resumed = await admin.resumeMigration({ batchMs: 5, maxBatchKeys: 16, ackTimeoutMs: 20_000, lockMs: 1500 });
      } catch (error) {
        if (!(error instanceof MigrationLockedError) || Date.now() > deadline) throw error;
        await sleep(100);
      }
    }
    assert.equal(resumed.resumed, true, 'the report says the run resumed a job');
    completed++;
    slotMoves += last.slots!.length;
    t.diagnostic(`${elapsed()}: migration ${last.n} resumed from ${job.phase}: moved ${resumed.moved} (${resumed.busy} busy), ${resumed.verifyPasses} verify passes, in ${resumed.ms} ms`);
  } else if (!lastDone) {
    // Killed before its job was written (nothing moved), or after it was deleted (all moved).
    const table = (await admin.readTable())!;
    const on = [...new Set(last.slots!.map((s) => table.owner[s]))];
    assert.ok(on.length === 1 && (on[0] === last.from || on[0] === last.to), `no job left, and migration ${last.n}'s slots ${last.slots} are on groups ${on}`);
    if (on[0] === last.to) [completed, slotMoves] = [completed + 1, slotMoves + last.slots!.length];
    t.diagnostic(`${elapsed()}: no job left behind; migration ${last.n}'s slots are on group ${on[0]}`);
  }

  // A second migrator goes on until MOVES migrations are done.
  const migrator2 = launch('migrator 2', migratorScript, [url, cluster, SEED + 2, MOVES - completed, last.n! + 1, 90_000], migratorEnv);
  const second = await exitOf(migrator2, 100_000);
  const failure = migrator2.messages.find((m) => m.type === 'error');
  if (second.code !== 0 || failure) assert.fail(`migrator 2 failed: ${JSON.stringify(failure ?? second)}; ${describeChild(migrator2)}`);
  completed += dones(migrator2).length;
  const allStarts = [...starts(migrator1), ...starts(migrator2)];
  slotMoves += dones(migrator2).reduce((sum, m) => sum + size(migrator2, m.n!), 0);
  const waitedOut = new Set([...dones(migrator1), ...dones(migrator2)].flatMap((m) => m.waitedOut as string[]));
  t.diagnostic(`${elapsed()}: ${completed} migrations done (${slotMoves} slot moves); clients waited out: ${[...waitedOut].join(', ') || 'none'}`);
  assert.ok(completed >= MOVES && slotMoves >= MOVES, `${completed} migrations done (${slotMoves} slot moves), ${MOVES} wanted`);

  // Stop the clients that are left; each prints its summary.
  const survivors = clients.filter((_, i) => i !== plan.victim);
  for (const c of survivors) c.child.stdin!.end();
  for (const c of survivors) {
    const outcome = await exitOf(c, 30_000);
    if (outcome.code !== 0) assert.fail(`${c.name} exited with ${JSON.stringify(outcome)}; ${describeChild(c)}`);
  }
  for (const c of clients) {
    const summary = c.messages.find((m) => m.type === 'summary') ?? { killed: true, ...c.messages.filter((m) => m.type === 'progress').at(-1) };
    t.diagnostic(`${c.name}: ${JSON.stringify(summary)}`);
  }

  // Nothing is left in flight.
  assert.equal(await admin.migrationStatus(), null, 'no migration job is left');
  const table = (await admin.readTable())!;
  assert.deepEqual(table.migrations, [], 'the table has no migration left');

  // Read everything, directly, and check.
  const journals = clients.map((_, i) => readJournal(join(dir, `client-${i}.jsonl`)));
  t.diagnostic(`unacknowledged attempts: ${journals.map((j, i) => `client ${i} ${j.attempts.size - j.acked.size}${j.truncated ? ' (last line cut short)' : ''}`).join(', ')}`);
  const observed = await readGroups(onGroup.map((redis, i) => ({ id: i + 1, redis })));
  const left = new Map<number, Set<number>>();
  for (const m of allStarts) for (const s of m.slots!) left.set(s, (left.get(s) ?? new Set()).add(m.from!));
  const { problems, counts } = check({ journals, observed, owner: table.owner, tags, pads: PADS, left });
  const acked = journals.reduce((sum, j) => sum + j.acked.size, 0);
  const attempted = journals.reduce((sum, j) => sum + j.attempts.size, 0);
  t.diagnostic(`${elapsed()}: ${attempted} writes attempted, ${acked} acknowledged; checked ${JSON.stringify(counts)}`);
  const shown = problems.slice(0, 40).join('\n  ');
  assert.deepEqual(problems.length, 0, `${problems.length} problems (seed ${SEED}):\n  ${shown}${problems.length > 40 ? '\n  ...' : ''}`);

  // The test did what it says: enough writes, and some on moving slots in every client.
  assert.ok(acked >= 2000, `only ${acked} writes acknowledged`);
  const hot = clients.map((c) => Number(c.messages.filter((m) => m.type === 'summary' || m.type === 'progress').at(-1)?.hot ?? 0));
  assert.ok(hot.every((n) => n > 0), `writes on moving slots per client: ${hot.join(', ')}`);
}
