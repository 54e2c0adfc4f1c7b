// Specification of live slot migration (DESIGN §4-5) by a deterministic,
// seeded simulation that can fail (test/sim/). No socket, no timer: every
// message and command sits in a FIFO link until a scheduler step picks it, so
// any interleaving, any delay, and lost events can happen; each seed is one
// random run, and the same seed always gives the same run.
//
// How the simulation maps to the code:
// - test/sim/client.ts is one ShardedRedis following the coordinator:
//   confirm / lease from the send / ack after drain as in
//   src/topology/coordinator.ts, the lease gate of src/client/lease-gate.ts,
//   and the per-slot routing of src/client/pool.ts + src/client/migration-route.ts
//   (pending → source, preparing → hold, migrating → MIGRATE the keys, then
//   run on the target). Its drain waits for each command (the code PINGs each
//   group that owned a changed slot instead).
// - test/sim/coordinator.ts is the confirm script and the table's
//   compare-and-set of src/coordinator/scripts.ts, one atomic step each.
// - test/sim/migrator.ts is the migrator being written in src/admin/migration/:
//   pending → preparing → CLIENT KILL → migrating (SCAN + MIGRATE batches) →
//   verify → stable, progress saved in the coordinator and resumed after a crash.
// - test/sim/server.ts is a group's master: MIGRATE without REPLACE (BUSYKEY:
//   the target's copy wins), not all-or-nothing, timing out part way; CLIENT
//   KILL drops what a connection sent and the server has not run yet.
//
// The invariant, checked after every run: every counter holds at least its
// acknowledged increments and at most those attempted, every list holds each
// acknowledged item (once), and no key is left on a group that does not own its slot.
//
// "The design" below is DESIGN §4-5 plus three rules it does not state yet,
// each shown necessary by a variant caught further down:
// - waited-out clients are fenced (CLIENT KILL) on the target as well as the
//   source (KILL_SOURCE_ONLY);
// - a migrator that resumes a job first fences the connections of the one
//   that died (NO_MIGRATOR_FENCE);
// - after its MIGRATE, a command sends its next request (DEL of the BUSYKEY
//   copies, the command on the target) only under a valid lease and the
//   table it was routed by, else it goes back through the router (STALE_SECOND_LEG).
// DESIGN already says that a retried command is routed again (STALE_RETRY).
// The code follows all of these; docs/migration.md lists them.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { runSeed, sweep, report } from '../sim/run.js';
import type { Bug } from '../sim/config.js';

const DESIGN_SEEDS = 2000;

describe('live migration, simulated', () => {
  test(`the design holds over ${DESIGN_SEEDS} seeds with every fault on`, (t) => {
    // Lost and late events, stalled links, frozen and partitioned clients,
    // clients that die and new ones that start, failovers of the source that
    // bring old copies back, MIGRATE timing out part way, and a migrator that
    // dies and is resumed by another; two to four moves per run, often back and forth.
    const result = sweep({ from: 1, count: DESIGN_SEEDS });
    assert.equal(result.failures, 0, result.firstFailure === null ? '' : report(result.firstFailure));
    // The sweep went through everything it claims to survive.
    for (const [what, count] of Object.entries(result.counts)) assert.ok(count > 0, `no ${what} in ${DESIGN_SEEDS} runs`);
    assert.ok(result.acked > 50 * DESIGN_SEEDS, `only ${result.acked} acknowledged commands`);
    t.diagnostic(`${result.runs} runs, ${result.steps} steps, ${result.acked} acknowledged commands; ${JSON.stringify(result.counts)}`);
  });

  describe('each known mistake is caught', () => {
    const cases: { bug: Bug; what: string; within: number }[] = [
      // The Promela model's variants (../shared/model/migration.pml).
      { bug: 'BUG_REGISTER', what: 'reading the table and registering in two steps', within: 200 },
      { bug: 'BUG_NODRAIN', what: 'acking a version before draining the commands routed under an older one', within: 200 },
      { bug: 'BUG_NOHOLD', what: 'not holding commands in preparing', within: 200 },
      { bug: 'REPLACE', what: 'MIGRATE with REPLACE, letting a copy a failover brought back overwrite the target', within: 200 },
      { bug: 'BUG_NOKILL', what: 'not fencing (CLIENT KILL) the clients waited out by their lease', within: 200 },
      // Beyond the model.
      { bug: 'BUG_LEASE_FROM_ANSWER', what: 'counting the lease from when the confirm was answered, not sent', within: 200 },
      { bug: 'KILL_SOURCE_ONLY', what: 'fencing waited-out clients on the source only (DESIGN §5 as written): their MIGRATE or DEL sent to the old source of a slot moving back lands late', within: 1000 },
      { bug: 'STALE_SECOND_LEG', what: 'going on after a MIGRATE (DEL of BUSYKEY copies, command on the target) without a fresh look at the lease and the table', within: 1000 },
      { bug: 'STALE_RETRY', what: 'retrying a failed MIGRATE on the same route instead of routing again by the current table', within: 1000 },
      { bug: 'NO_MIGRATOR_FENCE', what: 'resuming a job without fencing the dead migrator, whose MIGRATE or DEL lands late', within: 1000 },
    ];
    for (const { bug, what, within } of cases) {
      test(`${bug}: ${what}`, (t) => {
        const result = sweep({ from: 1, count: within, bugs: [bug], stopAtFirst: true });
        assert.ok(result.firstFailure !== null, `${bug} was not caught in ${within} seeds`);
        t.diagnostic(`first failing seed ${result.firstFailure.seed}: ${result.firstFailure.violations[0]}`);
      });
    }
  });

  test('a run is deterministic: the same seed gives the same run', () => {
    for (const seed of [1, 77, 1234]) {
      const a = runSeed({ seed, trace: 50 });
      const b = runSeed({ seed, trace: 50 });
      assert.deepEqual(b.stats, a.stats);
      assert.equal(b.steps, a.steps);
      assert.deepEqual(b.trace, a.trace);
    }
    assert.notDeepEqual(runSeed({ seed: 1 }).stats, runSeed({ seed: 2 }).stats);
  });

  test('a failure names the seed and the variant, says what broke, and shows the last steps', () => {
    const result = sweep({ from: 1, count: 200, bugs: ['BUG_NOHOLD'], stopAtFirst: true, trace: 30 });
    const failed = result.firstFailure!;
    assert.equal(failed.trace.length, 30);
    const text = report(failed);
    assert.match(text, new RegExp(`^seed ${failed.seed}, bugs \\[BUG_NOHOLD\\]: `));
    assert.match(text, /lost writes|does not own it|already holds|on no server|the most any server holds/);
    assert.match(text, /last 30 steps:/);
  });
});
