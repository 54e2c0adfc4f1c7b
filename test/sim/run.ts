// Runs one seed to the end and checks the invariant; on a violation, runs the
// same seed again with a trace (the run is deterministic) for the report.
import { World, type Action } from './world.js';
import { describeTable } from './model.js';
import type { Bug, Fault, SimOptions } from './config.js';
import { Stats } from './stats.js';

export interface RunResult {
  readonly seed: number;
  readonly bugs: readonly Bug[];
  readonly ok: boolean;
  readonly violations: readonly string[];
  readonly steps: number;
  /** Final clock, table versions written, commands issued / acknowledged / failed. */
  readonly stats: { readonly now: number; readonly version: number; readonly issued: number; readonly succeeded: number; readonly failed: number };
  /** How often each fault and protocol path happened. */
  readonly counts: Stats;
  /** The last steps before the end, when asked for. */
  readonly trace: readonly string[];
}

export function runSeed(options: SimOptions): RunResult {
  const world = new World(options);
  const keep = options.trace ?? 0;
  const maxSteps = options.maxSteps ?? 60_000;
  const trace: string[] = [];
  let step = 0;
  for (; step < maxSteps && world.violations.length === 0; step++) {
    if (world.issuing && world.migrator.done) world.windDown();
    if (!world.issuing && world.settled()) break;
    const action = pick(world, world.actions());
    const what = action.run();
    if (keep > 0) {
      trace.push(`${step} t=${world.now} ${what}`);
      if (trace.length > keep) trace.shift();
      // A traced run stops where the first write is lost, so the trace shows how.
      const loss = world.ledger.firstLoss(world.servers);
      if (loss !== null) world.violation(`at step ${step}: ${loss}`);
    }
  }
  if (world.violations.length === 0) {
    if (step >= maxSteps) world.violation(`no end after ${maxSteps} steps (migrator in phase ${world.migrator.phase.t}, table ${describeTable(world.coordinator.table)})`);
    else world.violations.push(...world.ledger.check(world.coordinator.table, world.servers));
  }
  const { ledger } = world;
  return {
    seed: options.seed,
    bugs: options.bugs ?? [],
    ok: world.violations.length === 0,
    violations: world.violations,
    steps: step,
    stats: { now: world.now, version: world.coordinator.table.version, issued: ledger.issued, succeeded: ledger.succeeded, failed: ledger.failed },
    counts: world.stats,
    trace,
  };
}

function pick(world: World, actions: readonly Action[]): Action {
  let total = 0;
  for (const a of actions) total += a.weight;
  let r = world.rng.next() * total;
  for (const a of actions) {
    r -= a.weight;
    if (r < 0) return a;
  }
  return actions[actions.length - 1]!;
}

export interface Sweep {
  /** The first seed that failed, with its trace; null when all held. */
  readonly firstFailure: RunResult | null;
  readonly runs: number;
  readonly failures: number;
  readonly steps: number;
  /** Totals over all runs. */
  readonly counts: Stats;
  readonly acked: number;
}

/**
 * Runs seeds from..from+count-1; with `stopAtFirst`, stops at the first
 * failure. The failing seed is run again with a trace of `trace` steps.
 */
export function sweep(options: { from: number; count: number; bugs?: readonly Bug[]; faults?: readonly Fault[]; stopAtFirst?: boolean; trace?: number }): Sweep {
  let firstFailure: RunResult | null = null;
  let failures = 0;
  let steps = 0;
  let runs = 0;
  let acked = 0;
  const counts = new Stats();
  for (let seed = options.from; seed < options.from + options.count; seed++) {
    const base = { seed, ...(options.bugs && { bugs: options.bugs }), ...(options.faults && { faults: options.faults }) };
    const result = runSeed(base);
    runs++;
    steps += result.steps;
    acked += result.stats.succeeded;
    counts.add(result.counts);
    if (result.ok) continue;
    failures++;
    if (firstFailure === null) {
      // The same run again with a trace; it stops where the first write goes missing, which may be before the end.
      const traced = runSeed({ ...base, trace: options.trace ?? 40 });
      firstFailure = { ...traced, violations: [...new Set([...traced.violations, ...result.violations.map((v) => `at the end: ${v}`)])] };
    }
    if (options.stopAtFirst) break;
  }
  return { firstFailure, runs, failures, steps, counts, acked };
}

/** A readable account of a failed run: seed, variant, what broke, and the last steps. */
export function report(result: RunResult): string {
  return [
    `seed ${result.seed}, bugs [${result.bugs.join(' ')}]: ${result.violations.length} violation(s) after ${result.steps} steps (clock ${result.stats.now}, table v${result.stats.version})`,
    ...result.violations.map((v) => `  ! ${v}`),
    `  last ${result.trace.length} steps:`,
    ...result.trace.map((t) => `    ${t}`),
  ].join('\n');
}
