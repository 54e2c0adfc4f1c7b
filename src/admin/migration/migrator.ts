// The migrator's entry points (DESIGN §5): start a migration, run a
// rebalance plan, resume or abort the job left in the coordinator, read it.
// Each takes the lock for its whole duration; the phases are MigrationRun's.
import createDebug from "debug";
import { ArgumentError, MigrationInProgressError, MigrationLockedError, MigrationStateError, TopologyError, VersionConflictError } from "../../errors.js";
import type { ClusterTable } from "../../topology/format.js";
import { withMaster } from "../group-probe.js";
import { planRebalance } from "../rebalance.js";
import { newJob, type MigrationJob } from "./job.js";
import { runSettings, type MigrateOptions, type MigrationReport, type MigrationRunOptions, type RebalanceRunOptions } from "./options.js";
import { checkAbortable, planMigration, resumePoint, withoutMigration, type MigrationPlan } from "./plan.js";
import { MigrationRun } from "./run.js";
import { withSession, type MigratorContext, type Session } from "./session.js";
import { flagsOfRuns, flagsOfSpans, runsText } from "./slot-set.js";
import { readJob, writeJob } from "./store.js";
import { checkTargetEmpty, clearTarget } from "./target.js";

const debug = createDebug("shardis:migrator");

export class Migrator {
  constructor(private readonly ctx: MigratorContext) {}

  /** Moves `options.slots` to group `options.to` with their keys, live. */
  async migrate(options: MigrateOptions): Promise<MigrationReport> {
    if (typeof options !== "object" || options === null) throw new ArgumentError("migrate needs { slots: [{ from, to }, ...], to, ... }");
    const flags = flagsOfSpans(options.slots);
    if (!Number.isSafeInteger(options.to) || options.to < 1) throw new ArgumentError(`to must be a group id, got ${JSON.stringify(options.to)}`);
    const settings = runSettings(options);
    return withSession(this.ctx, settings, (session) => this.start(session, flags, options.to));
  }

  /** Plans a rebalance, then migrates each move in turn, under one lock. */
  async rebalance(options: RebalanceRunOptions = {}): Promise<MigrationReport[]> {
    const settings = runSettings(options);
    return withSession(this.ctx, settings, async (session) => {
      await this.refuseJob();
      const plan = planRebalance(await this.requireTable(), { weights: options.weights, groups: options.groups });
      debug("rebalance of cluster %s: %d moves, %d slots", this.ctx.cluster, plan.moves.length, plan.moved);
      const reports: MigrationReport[] = [];
      for (const move of plan.moves) reports.push(await this.start(session, flagsOfRuns(move.slots), move.to));
      return reports;
    });
  }

  /** Continues the job left in the coordinator from where it stands. */
  async resume(options: MigrationRunOptions = {}): Promise<MigrationReport> {
    const settings = runSettings(options);
    return withSession(this.ctx, settings, async (session) => {
      const job = await readJob(this.ctx.coordinator, this.ctx.keys);
      if (job === null) throw new MigrationStateError(`cluster "${this.ctx.cluster}" has no migration job to resume; nothing was changed`);
      const table = await this.requireTable();
      const point = resumePoint(job, table);
      debug("resuming migration %s (%s) at %s (table %s)", job.id, runsText(job.slots), point.phase, point.written ? "written" : "one step behind");
      // Before any key moves, the target is checked again (and cleared, if asked).
      const cleared = point.phase === "pending" || point.phase === "preparing" ? await this.prepareTarget(session, table, job) : 0;
      return new MigrationRun(session, job, true, cleared).execute(point);
    });
  }

  /**
   * Undoes the job while it is pending or preparing (no key can have moved
   * yet): the slots stay with the source (stable), the job is deleted.
   */
  async abort(): Promise<void> {
    await withSession(this.ctx, runSettings(), async (session) => {
      const job = await readJob(this.ctx.coordinator, this.ctx.keys);
      if (job === null) throw new MigrationStateError(`cluster "${this.ctx.cluster}" has no migration job to abort; nothing was changed`);
      for (let attempt = 0; ; attempt++) {
        const table = await this.requireTable();
        if (checkAbortable(job, table) === "delete-job") {
          if (!(await writeJob(this.ctx.coordinator, this.ctx.keys, session.lock.value, null))) throw new MigrationLockedError(this.ctx.cluster, null, -1, true);
          break;
        }
        try {
          // The migration leaves the table and the job is deleted in one step, fenced by the lock.
          await this.ctx.writeTable(withoutMigration(table, job), table.version, { lockValue: session.lock.value, json: "" });
          break;
        } catch (error) {
          if (!(error instanceof VersionConflictError) || attempt >= 9) throw error;
        }
      }
      debug("migration %s aborted: slots %s stay on group %d", job.id, runsText(job.slots), job.from);
    });
  }

  /** The job in the coordinator, or null. */
  async status(): Promise<MigrationJob | null> {
    return readJob(this.ctx.coordinator, this.ctx.keys);
  }

  /** Checks, saves a new job, and runs it. */
  private async start(session: Session, flags: Uint8Array, to: number): Promise<MigrationReport> {
    await this.refuseJob();
    const table = await this.requireTable();
    const plan = planMigration(table, flags, to, this.ctx.cluster);
    const cleared = await this.prepareTarget(session, table, plan);
    const job = newJob(plan, table.version, Date.now());
    if (!(await writeJob(this.ctx.coordinator, this.ctx.keys, session.lock.value, job))) throw new MigrationLockedError(this.ctx.cluster, null, -1, true);
    debug("migration %s: slots %s from group %d to group %d", job.id, runsText(job.slots), job.from, job.to);
    return new MigrationRun(session, job, false, cleared).execute({ phase: "pending", written: false });
  }

  /** Refuses (TargetNotEmptyError) when the target holds keys of the slots; with clearTarget, deletes them instead. */
  private async prepareTarget(session: Session, table: ClusterTable, plan: MigrationPlan): Promise<number> {
    const group = table.groups.find((g) => g.id === plan.to);
    if (group === undefined) throw new TopologyError(`group ${plan.to} is not in the table`);
    const flags = flagsOfRuns(plan.slots);
    return withMaster(group, this.ctx.probe, async (target) => {
      if (!session.settings.clearTarget) {
        await checkTargetEmpty(target, plan.to, flags);
        return 0;
      }
      const cleared = await clearTarget(target, flags, () => session.lock.ensure());
      if (cleared > 0) debug("cleared %d keys of slots %s on group %d", cleared, runsText(plan.slots), plan.to);
      return cleared;
    }, table.sentinels);
  }

  private async refuseJob(): Promise<void> {
    const job = await readJob(this.ctx.coordinator, this.ctx.keys);
    if (job !== null) {
      throw new MigrationInProgressError(this.ctx.cluster, `a job moves slots ${runsText(job.slots)} from group ${job.from} to group ${job.to}, phase ${job.phase}`);
    }
  }

  private async requireTable(): Promise<ClusterTable> {
    const table = await this.ctx.readTable();
    if (table === null) throw new TopologyError(`cluster "${this.ctx.cluster}" has no slot table yet; initialize it first (initCluster, or \`shardis init\`)`);
    return table;
  }
}
