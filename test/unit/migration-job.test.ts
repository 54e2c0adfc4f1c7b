// Specification of the migration job (src/admin/migration/job.ts) and of where
// a stored job stands against the slot table (plan.ts): phases only go
// forward one at a time; a job resumes at its phase when the table says so,
// or one table write behind it; anything else is refused, as is an abort once
// keys may have moved. No socket is opened here.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ArgumentError, MigrationInProgressError, MigrationStateError } from '../../src/errors.js';
import { advance, jobToJson, newJob, parseJob, withProgress, PHASES, type MigrationJob } from '../../src/admin/migration/job.js';
import {
  checkAbortable,
  finishedMigration,
  planMigration,
  planState,
  resumePoint,
  withMigrationState,
  withoutMigration,
} from '../../src/admin/migration/plan.js';
import { flagsOfSpans } from '../../src/admin/migration/slot-set.js';
import { validateTable, type Migration, type SlotTable } from '../../src/topology/table.js';

const groups = [1, 2, 3].map((id) => ({ id, master: `10.0.0.${id}:6379` }));
const base = [
  { from: 0, to: 340, group: 1 },
  { from: 341, to: 681, group: 2 },
  { from: 682, to: 1023, group: 3 },
];

function table(migrations: Migration[] = [], slots = base, version = 7): SlotTable {
  return validateTable({ groups, slots, migrations, version });
}

const plan = { slots: [[0, 9], [20, 20]] as const, from: 1, to: 2 };
const job = (phase: MigrationJob['phase']): MigrationJob => ({ ...newJob(plan, 7, 1000, 'abc'), phase });
const at = (state: Migration['state']) => table([{ slots: plan.slots, from: 1, to: 2, state }]);
const stableOnTarget = () =>
  table([], [
    { from: 0, to: 9, group: 2 },
    { from: 10, to: 19, group: 1 },
    { from: 20, to: 20, group: 2 },
    { from: 21, to: 340, group: 1 },
    ...base.slice(1),
  ]);

describe('a job', () => {
  test('starts pending at cursor 0 with zero counters, and survives JSON', () => {
    const fresh = newJob(plan, 7, 1234);
    assert.equal(fresh.phase, 'pending');
    assert.equal(fresh.cursor, '0');
    assert.deepEqual([fresh.scanned, fresh.moved, fresh.busy], [0, 0, 0]);
    assert.equal(fresh.tableVersion, 7);
    assert.match(fresh.id, /^[0-9a-f]{16}$/);
    assert.deepEqual(parseJob(jobToJson(fresh), 'k'), fresh);
  });

  test('goes forward one phase at a time (or stays), never back or across', () => {
    let j = job('pending');
    for (const phase of PHASES.slice(1)) {
      j = advance(j, phase, 2000);
      assert.equal(j.phase, phase);
    }
    assert.equal(advance(j, 'done', 3000).phase, 'done', 'the same phase again (a resumed step)');
    assert.throws(() => advance(job('migrating'), 'preparing', 1), MigrationStateError);
    assert.throws(() => advance(job('pending'), 'migrating', 1), MigrationStateError);
  });

  test('a new phase starts its pass from cursor 0; staying keeps the cursor', () => {
    const moving = withProgress(job('migrating'), { cursor: '123', scanned: 10, moved: 5, busy: 1 }, 5);
    assert.equal(advance(moving, 'migrating', 6).cursor, '123');
    const verifying = advance(moving, 'verifying', 6);
    assert.equal(verifying.cursor, '0');
    assert.deepEqual([verifying.scanned, verifying.moved, verifying.busy], [10, 5, 1], 'counters carry over');
  });

  test('entering migrating records the clients waited out', () => {
    assert.deepEqual(advance(job('preparing'), 'migrating', 1, { waitedOut: ['c1'] }).waitedOut, ['c1']);
  });

  test('an unreadable job is refused with what is wrong and what to do', () => {
    const good = JSON.parse(jobToJson(job('migrating'))) as Record<string, unknown>;
    const cases: [string, unknown, RegExp][] = [
      ['format', 2, /newer than this shardis reads/],
      ['slots', [[5, 3]], /slots must be ascending/],
      ['slots', [[0, 9], [5, 12]], /slots must be ascending/],
      ['slots', [[0, 1024]], /slots must be ascending/],
      ['phase', 'prepared', /phase must be one of/],
      ['cursor', 12, /cursor must be a SCAN cursor/],
      ['moved', -1, /moved must be a non-negative integer/],
      ['to', 1, /from and to are the same group/],
      ['waitedOut', [1], /waitedOut/],
    ];
    for (const [field, value, message] of cases) {
      assert.throws(
        () => parseJob(JSON.stringify({ ...good, [field]: value }), 'shardis:{c}:migration'),
        (e: unknown) => e instanceof MigrationStateError && message.test(e.message) && /delete shardis:\{c\}:migration/.test(e.message),
        `${field} = ${JSON.stringify(value)}`,
      );
    }
    assert.throws(() => parseJob('{', 'k'), /not JSON/);
  });
});

describe('planMigration', () => {
  test('the slots of one group to another', () => {
    const p = planMigration(table(), flagsOfSpans([{ from: 20, to: 20 }, { from: 0, to: 9 }]), 2, 'c');
    assert.deepEqual(p, { slots: [[0, 9], [20, 20]], from: 1, to: 2 });
  });

  test('refuses slots of two groups, slots already on the target, an unknown target, a migration in flight', () => {
    assert.throws(() => planMigration(table(), flagsOfSpans([{ from: 330, to: 350 }]), 3, 'c'), (e: unknown) =>
      e instanceof ArgumentError && /330\.\.340 by group 1; 341\.\.350 by group 2/.test(e.message));
    assert.throws(() => planMigration(table(), flagsOfSpans([{ from: 0, to: 5 }]), 1, 'c'), /already owns slots 0\.\.5/);
    assert.throws(() => planMigration(table(), flagsOfSpans([{ from: 0, to: 5 }]), 9, 'c'), /group 9 is not in cluster "c"/);
    const busy = table([{ slots: [[400, 401]], from: 2, to: 3, state: 'pending' }]);
    assert.throws(() => planMigration(busy, flagsOfSpans([{ from: 0, to: 5 }]), 2, 'c'), MigrationInProgressError);
  });
});

describe('table changes', () => {
  test('add the migration, change its state, remove it (abort), or finish it (stable on the target)', () => {
    const pending = validateTable({ ...withMigrationState(table(), plan, 'pending'), version: 8 });
    assert.deepEqual(pending.migrations, [{ slots: [[0, 9], [20, 20]], from: 1, to: 2, state: 'pending' }]);
    assert.equal(planState(pending, plan), 'pending');
    const preparing = validateTable({ ...withMigrationState(pending, plan, 'preparing'), version: 9 });
    assert.equal(preparing.migrations.length, 1);
    assert.equal(planState(preparing, plan), 'preparing');
    const aborted = validateTable({ ...withoutMigration(preparing, plan), version: 10 });
    assert.equal(planState(aborted, plan), 'stable(from)');
    assert.deepEqual(aborted.migrations, []);
    const finished = validateTable({ ...finishedMigration(at('migrating'), plan), version: 10 });
    assert.equal(planState(finished, plan), 'stable(to)');
    assert.deepEqual([finished.owner[0], finished.owner[9], finished.owner[10], finished.owner[20], finished.owner[21]], [2, 2, 1, 2, 1]);
  });

  test('other migrations are left as they are', () => {
    const other: Migration = { slots: [[700, 701]], from: 3, to: 1, state: 'migrating' };
    const both = validateTable({ ...withMigrationState(table([other]), plan, 'pending'), version: 8 });
    assert.equal(both.migrations.length, 2);
    assert.deepEqual(validateTable({ ...finishedMigration(both, plan), version: 9 }).migrations, [other]);
  });

  test('planState tells a migration of other slots or groups apart', () => {
    assert.equal(planState(table([{ slots: [[0, 9]], from: 1, to: 2, state: 'pending' }]), plan), 'other');
    assert.equal(planState(table([{ slots: [[0, 9], [20, 20]], from: 1, to: 3, state: 'pending' }]), plan), 'other');
    assert.equal(planState(stableOnTarget(), plan), 'stable(to)');
  });
});

describe('resumePoint', () => {
  test('the table at the job phase, or one write behind it', () => {
    const cases: [MigrationJob['phase'], SlotTable, string][] = [
      ['pending', table(), 'pending/false'],
      ['pending', at('pending'), 'pending/true'],
      ['preparing', at('pending'), 'preparing/false'],
      ['preparing', at('preparing'), 'preparing/true'],
      ['migrating', at('preparing'), 'migrating/false'],
      ['migrating', at('migrating'), 'migrating/true'],
      ['verifying', at('migrating'), 'verifying/true'],
      ['done', at('migrating'), 'done/false'],
      ['done', stableOnTarget(), 'done/true'],
    ];
    for (const [phase, t, expected] of cases) {
      const point = resumePoint(job(phase), t);
      assert.equal(`${point.phase}/${point.written}`, expected, `job ${phase}`);
    }
  });

  test('anything else is refused, saying what the job and the table say', () => {
    const cases: [MigrationJob['phase'], SlotTable][] = [
      ['pending', at('preparing')],
      ['preparing', at('migrating')],
      ['migrating', table()],
      ['verifying', at('preparing')],
      ['verifying', stableOnTarget()],
      ['done', table()],
    ];
    for (const [phase, t] of cases) {
      assert.throws(() => resumePoint(job(phase), t), (e: unknown) => e instanceof MigrationStateError && e.message.includes(`phase ${phase}`), phase);
    }
  });
});

describe('checkAbortable', () => {
  test('pending or preparing in the table: remove the migration; not written yet: delete the job', () => {
    assert.equal(checkAbortable(job('pending'), at('pending')), 'remove-migration');
    assert.equal(checkAbortable(job('preparing'), at('preparing')), 'remove-migration');
    assert.equal(checkAbortable(job('migrating'), at('preparing')), 'remove-migration', 'the job went ahead of the table: no key moved yet');
    assert.equal(checkAbortable(job('pending'), table()), 'delete-job');
  });

  test('migrating in the table: keys may have moved, so no abort — resume', () => {
    assert.throws(() => checkAbortable(job('migrating'), at('migrating')), (e: unknown) => e instanceof MigrationStateError && /resumeMigration/.test(e.message));
    assert.throws(() => checkAbortable(job('done'), stableOnTarget()), MigrationStateError);
  });
});
