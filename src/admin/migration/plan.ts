// What a migration does to the slot table, and where a stored job stands
// against the table. Pure: tables in, table changes and decisions out.
import { ArgumentError, MigrationInProgressError, MigrationStateError } from "../../errors.js";
import { SLOT_COUNT } from "../../slot.js";
import { rangesOf } from "../../topology/format.js";
import { formatRanges, type Migration, type MigrationState, type SlotTable } from "../../topology/table.js";
import type { TableChange } from "../table-write.js";
import type { MigrationJob, MigrationPhase } from "./job.js";
import { flagsOfRuns, runsOf, runsText, sameSlots, type SlotRuns } from "./slot-set.js";

/** Slots moving from one group to another. */
export interface MigrationPlan {
  readonly slots: SlotRuns;
  readonly from: number;
  readonly to: number;
}

/**
 * Checks that the flagged slots can move to group `to` now: `to` is a group
 * of the table, one other group owns all of them, and no migration is in the
 * table. Returns the plan; throws an ArgumentError or a MigrationInProgressError.
 */
export function planMigration(table: SlotTable, flags: Uint8Array, to: number, cluster: string): MigrationPlan {
  if (!table.groups.some((g) => g.id === to)) {
    throw new ArgumentError(`group ${JSON.stringify(to)} is not in cluster "${cluster}"; its groups are ${table.groups.map((g) => g.id).join(", ")}`);
  }
  const inFlight = table.migrations[0];
  if (inFlight !== undefined) throw new MigrationInProgressError(cluster, `the table moves slots ${describe(inFlight)}`);
  const owners = new Map<number, number[]>();
  for (let slot = 0; slot < SLOT_COUNT; slot++) {
    if (flags[slot] !== 1) continue;
    const owner = table.owner[slot]!;
    const slots = owners.get(owner) ?? [];
    slots.push(slot);
    owners.set(owner, slots);
  }
  if (owners.size > 1) {
    const parts = [...owners].sort(([a], [b]) => a - b).map(([group, slots]) => `${formatRanges(slots)} by group ${group}`);
    throw new ArgumentError(`the slots to migrate must all be owned by one group, but ${parts.join("; ")}; migrate them one source group at a time. Nothing was changed`);
  }
  const from = [...owners.keys()][0]!;
  if (from === to) throw new ArgumentError(`group ${to} already owns slots ${runsText(runsOf(flags))}; nothing to migrate`);
  return { slots: runsOf(flags), from, to };
}

/** Where the plan's slots stand in a table. */
export type PlanState = MigrationState | "stable(from)" | "stable(to)" | "other";

/** The state of the plan's slots in `table`: its migration's state, stable at either end, or something else. */
export function planState(table: SlotTable, plan: MigrationPlan): PlanState {
  const migration = findMigration(table, plan);
  if (migration !== undefined) return migration.state;
  const flags = flagsOfRuns(plan.slots);
  const moving = new Uint8Array(SLOT_COUNT);
  for (const m of table.migrations) for (const [a, b] of m.slots) moving.fill(1, a, b + 1);
  let owner: number | null = null;
  for (let slot = 0; slot < SLOT_COUNT; slot++) {
    if (flags[slot] !== 1) continue;
    if (moving[slot] === 1) return "other";
    if (owner === null) owner = table.owner[slot]!;
    else if (owner !== table.owner[slot]) return "other";
  }
  return owner === plan.from ? "stable(from)" : owner === plan.to ? "stable(to)" : "other";
}

/** The table's migration of exactly these slots from and to these groups. */
export function findMigration(table: SlotTable, plan: MigrationPlan): Migration | undefined {
  return table.migrations.find((m) => m.from === plan.from && m.to === plan.to && sameSlots(m.slots, plan.slots));
}

/** The table with the plan's migration in `state` (added, or its state changed). */
export function withMigrationState(table: SlotTable, plan: MigrationPlan, state: MigrationState): TableChange {
  const others = table.migrations.filter((m) => m !== findMigration(table, plan));
  const migration: Migration = { slots: plan.slots, from: plan.from, to: plan.to, state };
  return { groups: table.groups, slots: table.slots, migrations: [...others, migration], sentinels: table.sentinels };
}

/** The table without the plan's migration: the slots stay with the source (abort). */
export function withoutMigration(table: SlotTable, plan: MigrationPlan): TableChange {
  const migration = findMigration(table, plan);
  return { groups: table.groups, slots: table.slots, migrations: table.migrations.filter((m) => m !== migration), sentinels: table.sentinels };
}

/** The table with the plan's slots owned by the target and its migration gone: stable(to). */
export function finishedMigration(table: SlotTable, plan: MigrationPlan): TableChange {
  const migration = findMigration(table, plan);
  const owner = Int32Array.from(table.owner);
  for (const [a, b] of plan.slots) owner.fill(plan.to, a, b + 1);
  return { groups: table.groups, slots: rangesOf(owner), migrations: table.migrations.filter((m) => m !== migration), sentinels: table.sentinels };
}

/** Where a stored job resumes: its phase, and whether the table already says so. */
export interface ResumePoint {
  readonly phase: MigrationPhase;
  /**
   * The table write of the phase was done (the job is saved before the
   * table is written, so a migrator that died in between left the table one step behind).
   */
  readonly written: boolean;
}

/**
 * Where a job resumes, checked against the table: the table may say the
 * job's phase, or be one write behind it. Anything else is a MigrationStateError.
 */
export function resumePoint(job: MigrationJob, table: SlotTable): ResumePoint {
  const state = planState(table, job);
  const at = (phase: MigrationPhase, written: boolean): ResumePoint => ({ phase, written });
  switch (job.phase) {
    case "pending":
      if (state === "stable(from)") return at("pending", false);
      if (state === "pending") return at("pending", true);
      break;
    case "preparing":
      if (state === "pending") return at("preparing", false);
      if (state === "preparing") return at("preparing", true);
      break;
    case "migrating":
      if (state === "preparing") return at("migrating", false);
      if (state === "migrating") return at("migrating", true);
      break;
    case "verifying":
      if (state === "migrating") return at("verifying", true);
      break;
    case "done":
      if (state === "migrating") return at("done", false);
      if (state === "stable(to)") return at("done", true);
      break;
  }
  throw new MigrationStateError(
    `the migration job (slots ${runsText(job.slots)} from group ${job.from} to group ${job.to}, phase ${job.phase}) does not match the slot table ` +
      `(version ${table.version}: ${stateText(state, job)}), so it cannot be resumed. Someone changed the table by hand? ` +
      `Check the keys of these slots on both groups, set the table right, then delete the job`,
  );
}

/**
 * Whether a migration can be undone: only while no key can have moved, that
 * is while the table says pending or preparing (or has not been written yet).
 */
export function checkAbortable(job: MigrationJob, table: SlotTable): "remove-migration" | "delete-job" {
  const state = planState(table, job);
  if (state === "pending" || state === "preparing") return "remove-migration";
  if (state === "stable(from)" && job.phase === "pending") return "delete-job";
  if (state === "migrating") {
    throw new MigrationStateError(
      `the migration of slots ${runsText(job.slots)} from group ${job.from} to group ${job.to} is past preparing (the table says migrating), ` +
        `so keys may already be on group ${job.to}; it cannot be aborted. Run resumeMigration (\`shardis migration resume\`) to finish it`,
    );
  }
  throw new MigrationStateError(
    `the migration job (phase ${job.phase}) does not match the slot table (version ${table.version}: ${stateText(state, job)}); ` +
      `abort only undoes a pending or preparing migration. Check the table by hand`,
  );
}

function stateText(state: PlanState, plan: MigrationPlan): string {
  switch (state) {
    case "stable(from)":
      return `the slots are stable on group ${plan.from}`;
    case "stable(to)":
      return `the slots are stable on group ${plan.to}`;
    case "other":
      return "the slots are owned or moved otherwise";
    default:
      return `the migration is ${state}`;
  }
}

function describe(m: Migration): string {
  return `${runsText(m.slots)} from group ${m.from} to group ${m.to}, ${m.state}`;
}
