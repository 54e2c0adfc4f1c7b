// Specification of how the CLI shows a migration (src/cli/progress.ts,
// src/cli/migrate.ts's jobLines) and turns its flags into run options
// (src/cli/migration-run.ts). No I/O: a fake clock and a fake terminal (the
// usage errors end before anything connects).
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import type { MigrationJob, MigrationProgress, MigrationReport } from '../../src/admin/index.js';
import { main } from '../../src/cli.js';
import { parseWaitReplicas } from '../../src/cli/args.js';
import { EXIT_USAGE } from '../../src/cli/context.js';
import { jobLines } from '../../src/cli/migrate.js';
import { addRunOptions, runOptions, type RunFlags } from '../../src/cli/migration-run.js';
import { bar, barLine, estimatedTotal, headerLine, phaseLine, progressLine, ProgressPrinter, summaryLine } from '../../src/cli/progress.js';

function progress(change: Partial<MigrationProgress> = {}): MigrationProgress {
  return {
    id: 'abc',
    phase: 'migrating',
    slots: [[0, 99], [200, 200]],
    from: 1,
    to: 2,
    scanned: 0,
    moved: 0,
    busy: 0,
    keysPerSec: 0,
    etaMs: null,
    waitingFor: [],
    ...change,
  };
}

/** A printer on a fake clock; `terminal` true gives it a fake 80-column terminal. */
function printer(terminal: boolean, moves: number | null = null) {
  const lines: string[] = [];
  const screen: string[] = [];
  let now = 0;
  const p = new ProgressPrinter(
    {
      out: (line) => lines.push(line),
      terminal: terminal ? { write: (text) => screen.push(text), columns: () => 80 } : null,
      now: () => now,
    },
    moves,
  );
  return { p, lines, screen, at: (ms: number) => (now = ms) };
}

describe('progress lines', () => {
  test('the header and a line per phase', () => {
    assert.equal(headerLine(progress()), 'migration abc: slots 0..99, 200 (101 slots) from group 1 to group 2');
    assert.equal(headerLine(progress({ slots: [[7, 7]] })), 'migration abc: slots 7 (1 slot) from group 1 to group 2');
    assert.match(phaseLine(progress({ phase: 'pending' })), /^pending: .*acknowledge/);
    assert.match(phaseLine(progress({ phase: 'preparing' })), /^preparing: /);
    assert.equal(phaseLine(progress()), 'migrating: moving the keys from group 1 to group 2');
    assert.equal(phaseLine(progress({ moved: 5 })), 'migrating: moving the keys from group 1 to group 2 (5 moved before)');
    assert.match(phaseLine(progress({ phase: 'verifying', moved: 10 })), /^verifying: 10 keys moved; checking that group 1 holds no key/);
    assert.equal(phaseLine(progress({ phase: 'done' })), 'done: giving the slots to group 2');
  });

  test('moved/estimated keys, speed and time left; the estimate comes from the speed and the ETA, to 3 digits', () => {
    const p = progress({ moved: 4210, keysPerSec: 1000, etaMs: 5791 });
    assert.equal(estimatedTotal(p), 10_001);
    assert.equal(progressLine(p), 'migrating: 4210/~10000 keys moved, 1000 keys/s, ETA 5.8s');
    assert.equal(progressLine(progress({ moved: 3 })), 'migrating: 3 keys moved, 0 keys/s, ETA ?');
    assert.equal(estimatedTotal(progress({ moved: 3 })), null);
    // The estimate never shows below what has moved.
    assert.equal(progressLine(progress({ moved: 44_301, keysPerSec: 1000, etaMs: 0 })), 'migrating: 44301/~44301 keys moved, 1000 keys/s, ETA 0ms');
    assert.equal(progressLine(progress({ phase: 'verifying', moved: 9, scanned: 12 })), 'verifying: 9 keys moved, 12 scanned');
  });

  test('while waiting for acks: how long, and who', () => {
    assert.equal(progressLine(progress({ phase: 'pending', waitingFor: ['a'] }), 1500), 'pending: waiting 1.5s for 1 client to acknowledge: a');
    const many = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
    assert.equal(progressLine(progress({ phase: 'preparing', waitingFor: many }), 0), 'preparing: waiting 0ms for 7 clients to acknowledge: a, b, c, d, e, ... (7 in all)');
  });

  test('the bar: filled by the share moved, cut to the terminal width', () => {
    assert.equal(bar(0.5, 10), '[#####-----]');
    assert.equal(bar(null, 4), '[----]');
    assert.equal(bar(2, 4), '[####]');
    const line = barLine(progress({ moved: 5000, keysPerSec: 1000, etaMs: 5000 }), 200);
    assert.equal(line, 'migrating [##########----------] 5000/~10000 keys  1000 keys/s  ETA 5.0s  slots 0..99, 200 1->2');
    const narrow = barLine(progress({ moved: 5000, keysPerSec: 1000, etaMs: 5000 }), 40);
    assert.equal(narrow.length, 39);
    assert.ok(narrow.endsWith('...'));
    assert.match(barLine(progress({ phase: 'pending', waitingFor: ['x'] }), 200, 2000), /^pending   waiting 2\.0s for 1 client to acknowledge: x {2}slots/);
    assert.match(barLine(progress({ phase: 'verifying', moved: 7 }), 200), /^verifying \[#{20}\] 7 keys moved/);
  });

  test('the summary: keys, time, speed, verify passes, and what else happened', () => {
    const report: MigrationReport = {
      id: 'abc',
      slots: [[0, 99]],
      from: 1,
      to: 2,
      moved: 3000,
      busy: 0,
      scanned: 3100,
      cleared: 0,
      waitedOut: [],
      fencedConnections: 0,
      verifyPasses: 1,
      largeKeys: 0,
      tableVersion: 5,
      ms: 1500,
      keysPerSec: 2000,
      resumed: false,
    };
    assert.equal(summaryLine(report), 'migration abc done: 3000 keys of slots 0..99 (100 slots) moved from group 1 to group 2 in 1.5s, 2000 keys/s, 1 verify pass, table version 5');
    const busy = summaryLine({ ...report, verifyPasses: 2, resumed: true, cleared: 1, busy: 2, largeKeys: 1, waitedOut: ['x'], fencedConnections: 3 });
    assert.match(busy, /, 2 verify passes, table version 5, resumed, 1 key cleared on group 2 first, 2 source copies dropped \(group 2 had the newer one\), 1 large key moved alone, 1 client waited out \(lease ran out\), 3 connections of theirs killed on group 1$/);
  });
});

describe('ProgressPrinter', () => {
  test('in a pipe: a line per phase at once, at most one progress line a second, and only when something changed (or every 10 s)', () => {
    const { p, lines, at } = printer(false);
    p.update(progress({ phase: 'pending' }));
    assert.deepEqual(lines, [headerLine(progress()), phaseLine(progress({ phase: 'pending' }))]);
    lines.length = 0;
    at(100);
    p.update(progress({ phase: 'pending', waitingFor: ['x'] }));
    at(900);
    p.update(progress({ phase: 'pending', waitingFor: ['x'] }));
    assert.deepEqual(lines, [], 'not within a second of the last line');
    at(1100);
    p.update(progress({ phase: 'pending', waitingFor: ['x'] }));
    assert.deepEqual(lines, ['pending: waiting 1.0s for 1 client to acknowledge: x']);
    at(2200);
    p.update(progress({ phase: 'pending', waitingFor: ['x'] }));
    assert.equal(lines.length, 1, 'the same wait is not repeated every second');
    at(11_200);
    p.update(progress({ phase: 'pending', waitingFor: ['x'] }));
    assert.equal(lines.length, 2, '...but every 10 s');
    at(11_300);
    p.update(progress({ phase: 'migrating' }));
    assert.equal(lines.at(-1), phaseLine(progress()), 'a phase change is printed at once');
    for (let t = 11_400, moved = 0; t <= 14_000; t += 100, moved += 10) {
      at(t);
      p.update(progress({ moved, keysPerSec: 100 }));
    }
    assert.equal(lines.filter((line) => /^migrating: \d+/.test(line)).length, 2, lines.join('\n'));
  });

  test('a new migration (a rebalance\'s next move) prints its header, numbered', () => {
    const { p, lines } = printer(false, 2);
    p.update(progress({ phase: 'pending' }));
    p.update(progress({ id: 'def', phase: 'pending' }));
    p.update(progress({ id: 'ghi', phase: 'pending' }));
    assert.deepEqual(lines.filter((line) => /migration \w+:/.test(line)).map((line) => line.split(':')[0]), ['move 1/2', 'move 2/2', 'move 3']);
  });

  test('on a terminal: the bar is redrawn in place (at most every 100 ms), lines go above it, close erases or keeps it', () => {
    const { p, lines, screen, at } = printer(true);
    p.update(progress({ phase: 'pending' }));
    assert.equal(lines.length, 2);
    assert.match(screen.at(-1)!, /^\r\x1b\[Kpending {3}\[-+\]/);
    at(50);
    p.update(progress({ phase: 'pending', waitingFor: ['x'] }));
    assert.equal(screen.length, 1, 'not redrawn within 100 ms');
    at(150);
    p.update(progress({ phase: 'pending', waitingFor: ['x'] }));
    assert.match(screen.at(-1)!, /^\r\x1b\[Kpending {3}waiting 100ms for 1 client/);
    at(200);
    p.update(progress({ phase: 'migrating' }));
    assert.deepEqual(screen.slice(-2).map((text) => text.slice(0, 4)), ['\r\x1b[K', '\r\x1b[K'], 'the bar is erased, the phase line printed, the bar drawn again');
    assert.equal(lines.at(-1), phaseLine(progress()));
    p.note('SIGINT: stopping');
    assert.equal(lines.at(-1), 'SIGINT: stopping');
    at(210);
    p.update(progress({ moved: 7 })); // within 100 ms: not drawn
    p.close(true);
    assert.equal(screen.at(-1), '\n', 'kept: the cursor goes to the next line');
    assert.match(screen.at(-2)!, /^\r\x1b\[Kmigrating \[-+\] 7 keys /, 'after drawing the latest state');
    p.close(true);
    assert.equal(screen.at(-1), '\n');
    const count = screen.length;
    p.close(false);
    assert.equal(screen.length, count, 'closing twice writes nothing');
  });

  test('remembers the latest progress', () => {
    const { p } = printer(false);
    const before = p.latest;
    assert.equal(before, null);
    p.update(progress({ moved: 4 }));
    const after = p.latest;
    assert.equal(after?.moved, 4);
  });
});

describe('run options and migration status', () => {
  test('only the flags given become options', () => {
    assert.deepEqual(runOptions({}), {});
    assert.deepEqual(runOptions({ clearTarget: false }), {});
    assert.deepEqual(runOptions({ batchMs: 5, maxBatchKeys: 100, largeKeyBytes: 4096, migrateTimeoutMs: 1000, ackTimeoutMs: 300, clearTarget: true }), {
      batchMs: 5,
      maxBatchKeys: 100,
      largeKeyBytes: 4096,
      migrateTimeoutMs: 1000,
      ackTimeoutMs: 300,
      clearTarget: true,
    });
    assert.deepEqual(runOptions({ pauseMs: 0 }), { pauseMs: 0 });
    assert.deepEqual(runOptions({ batchMs: 1, pauseMs: 9 }), { batchMs: 1, pauseMs: 9 });
    // 0 is given, not unset: it asks for a plain MIGRATE.
    assert.deepEqual(runOptions({ waitReplicas: 0 }), { waitReplicas: 0 });
    assert.deepEqual(runOptions({ waitReplicas: 'auto' }), { waitReplicas: 'auto' });
    assert.deepEqual(runOptions({ waitReplicas: 2 }), { waitReplicas: 2 });
  });

  test('--wait-replicas: "auto" or a number of replicas >= 0; anything else is a usage error', () => {
    assert.equal(parseWaitReplicas('auto'), 'auto');
    assert.equal(parseWaitReplicas('AUTO'), 'auto');
    assert.equal(parseWaitReplicas('0'), 0);
    assert.equal(parseWaitReplicas('1'), 1);
    assert.equal(parseWaitReplicas(' 2 '), 2);
    for (const bad of ['', '-1', '1.5', 'yes', 'true', '1e3', '0x1', '99999999999999999999']) {
      assert.throws(
        () => parseWaitReplicas(bad),
        (error: unknown) => error instanceof InvalidArgumentError && /--wait-replicas must be "auto" or a number of replicas >= 0/.test(error.message),
        bad,
      );
    }
    const parse = (...argv: string[]): RunFlags => {
      const command = addRunOptions(new Command('migrate').exitOverride().configureOutput({ writeErr: () => {} }));
      command.parse(argv, { from: 'user' });
      return command.opts<RunFlags>();
    };
    assert.deepEqual(runOptions(parse('--wait-replicas', '0')), { waitReplicas: 0 });
    assert.deepEqual(runOptions(parse('--wait-replicas', 'auto', '--batch-ms', '5')), { waitReplicas: 'auto', batchMs: 5 });
    assert.deepEqual(runOptions(parse()), {});
    assert.throws(() => parse('--wait-replicas', 'some'), (error: unknown) => error instanceof CommanderError && error.code === 'commander.invalidArgument');
  });

  test('a bad --wait-replicas exits 2 (usage) from migrate, rebalance --apply and migration resume, before connecting', async () => {
    const written: string[] = [];
    const write = process.stderr.write;
    process.stderr.write = ((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    }) as typeof process.stderr.write;
    const coordinator = ['--coordinator', 'redis://127.0.0.1:1'];
    try {
      assert.equal(await main([...coordinator, 'migrate', '--slots', '0-9', '--to', '2', '--wait-replicas', 'maybe']), EXIT_USAGE);
      assert.equal(await main([...coordinator, 'rebalance', '--apply', '--wait-replicas', '-1']), EXIT_USAGE);
      assert.equal(await main([...coordinator, 'migration', 'resume', '--wait-replicas', '1.5']), EXIT_USAGE);
    } finally {
      process.stderr.write = write;
    }
    const text = written.join('');
    assert.equal(text.match(/--wait-replicas must be "auto" or a number of replicas >= 0/g)?.length, 3, text);
    assert.doesNotMatch(text, /cannot reach the coordinator/, 'nothing connected');
  });

  test('jobLines: no job; a job nobody runs; a job a migrator runs', () => {
    assert.deepEqual(jobLines('c', null, null), ['cluster c: no migration job']);
    assert.match(jobLines('c', null, { holder: null, ttlMs: 900 }).join('\n'), /a migrator holds the lock \(it expires in 900ms unless renewed\), starting or between moves/);
    const job: MigrationJob = {
      format: 1,
      id: 'abc',
      slots: [[0, 9]],
      from: 1,
      to: 2,
      phase: 'migrating',
      cursor: '0',
      scanned: 20,
      moved: 15,
      busy: 0,
      startedAt: 1_000_000,
      updatedAt: 1_002_000,
      tableVersion: 4,
      waitedOut: [],
    };
    const idle = jobLines('c', job, null, 1_003_000);
    assert.deepEqual(idle, [
      'cluster c: migration abc: slots 0..9 (10 slots) from group 1 to group 2',
      '  phase       migrating (table version 4)',
      '  keys        15 moved, 20 scanned',
      '  started     1970-01-01T00:16:40.000Z (3.0s ago), last saved 1.0s ago',
      '  waited out  -',
      '  migrator    none is running it: `shardis migration resume` continues it',
    ]);
    assert.match(jobLines('c', { ...job, phase: 'preparing' }, null).at(-1)!, /, or `shardis migration abort` puts the slots back$/);
    const running = jobLines('c', job, { holder: { host: 'h', pid: 7, since: 0 }, ttlMs: 14_000 });
    assert.equal(running.at(-1), '  migrator    a migrator on h (pid 7) since 1970-01-01T00:00:00.000Z holds the lock (it expires in 14.0s unless renewed); if that migrator died, `shardis migration resume` continues the job once the lock has expired');
  });
});
