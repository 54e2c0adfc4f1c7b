// One migration job carried out, from whatever phase it stands in to the end
// (DESIGN §5, migrator column). Each step is saved in the job before the
// table is written, so a migrator killed anywhere leaves a job that
// resumePoint() can place against the table; every table write is the
// admin's compare-and-set.
import { performance } from "node:perf_hooks";
import type { Redis } from "ioredis";
import createDebug from "debug";
import { MigrationLockedError, MigrationStateError, MigrationStoppedError, VersionConflictError } from "../../errors.js";
import { closeQuietly } from "../../coordinator/connection.js";
import type { ClusterTable } from "../../topology/format.js";
import type { MigrationState } from "../../topology/table.js";
import { masterResolver, sentinelAskOptions } from "../../topology/master-address.js";
import { readRegistry } from "../registry.js";
import { withMaster } from "../group-probe.js";
import type { TableChange } from "../table-write.js";
import { waitForAcks, type AckStatus } from "./acks.js";
import { fenceSet, killConnectionsOf } from "./fence.js";
import { advance, jobToJson, withProgress, type MigrationJob, type MigrationPhase } from "./job.js";
import { KeyMover, type PassCounts } from "./mover.js";
import type { MigrationReport } from "./options.js";
import { finishedMigration, planMigration, planState, withMigrationState, type PlanState, type ResumePoint } from "./plan.js";
import { estimateKeys, etaMs, keysPerSec } from "./progress.js";
import { backoffMs, isTransient, retrying, sleep, type RetryBudget } from "./retry.js";
import type { Session } from "./session.js";
import { flagsOfRuns, runsText, slotCount } from "./slot-set.js";
import { fencePredecessors, migrateAuth, migratorName, openSource } from "./source-link.js";
import { TargetLink } from "./target-link.js";
import { replicasToWait } from "./target-replicas.js";
import { writeJob } from "./store.js";

const debug = createDebug("shardis:migrator");

/** Verification passes before giving up on keys that keep appearing on the source. */
const MAX_VERIFY_PASSES = 5;
/** Table writes lost to other writers (VersionConflictError) before giving up. */
const MAX_TABLE_ATTEMPTS = 10;
/** WAIT's timeout when confirming moved keys on the target's replicas (a shorter answer is retried, within retryMs). */
const CONFIRM_WAIT_MS = 1000;

/** The table state each state written must come from. */
const PREVIOUS: Record<MigrationState, PlanState> = { pending: "stable(from)", preparing: "pending", migrating: "preparing" };

export class MigrationRun {
  private readonly flags: Uint8Array;
  private readonly started = performance.now();
  private source: Redis | null = null;
  private mover: KeyMover | null = null;
  /** Confirms moved keys on the target's replicas (when there are replicas to wait for). */
  private link: TargetLink | null = null;
  private waitReplicas = 0;
  private movedThisRun = 0;
  private moveMs = 0;
  private estimate: number | null = null;
  private waitingFor: readonly string[] = [];
  private fenced = 0;
  private verifyPasses = 0;
  private largeKeys = 0;
  /** The clients the pending wait saw (when this run did it). */
  private pendingIds: readonly string[] = [];
  private finalVersion = 0;
  /** Transient errors are retried this long, stopping when the run must stop. */
  private readonly budget: RetryBudget;

  constructor(
    private readonly session: Session,
    private job: MigrationJob,
    private readonly resumed: boolean,
    private readonly cleared = 0,
  ) {
    this.flags = flagsOfRuns(job.slots);
    this.budget = { retryMs: session.settings.retryMs, checkStopped: () => this.checkStopped() };
  }

  /** Carries the job out from `point` to the end; the job is deleted when done. */
  async execute(point: ResumePoint): Promise<MigrationReport> {
    try {
      let { phase, written } = point;
      this.emit();
      for (;;) {
        this.checkStopped();
        switch (phase) {
          case "pending": {
            if (!written) await this.writeState(this.job);
            const pending = await this.waitAcks("pending");
            this.pendingIds = [...pending.acked, ...pending.waitedOut];
            // Recorded now: status() may remove their registry entries before the next wait.
            await this.writeState(this.next("preparing", { waitedOut: pending.waitedOut }), pending.table);
            [phase, written] = ["preparing", true];
            break;
          }
          case "preparing": {
            if (!written) await this.writeState(this.job);
            const preparing = await this.waitAcks("preparing");
            const waitedOut = fenceSet(this.job.waitedOut, this.pendingIds, preparing);
            await this.fence(waitedOut);
            // The hold in preparing ends when this write reaches the clients: no other round trip before it.
            await this.writeState(this.next("migrating", { waitedOut }), waitedOut.length === 0 ? preparing.table : null);
            [phase, written] = ["migrating", true];
            break;
          }
          case "migrating":
            if (!written) await this.writeState(this.job);
            await this.moveKeys();
            await this.enter("verifying");
            [phase, written] = ["verifying", true];
            break;
          case "verifying":
            await this.verify();
            [phase, written] = ["done", false];
            break;
          case "done":
            // The slots become the target's and the job is deleted, in one step.
            if (!written) this.finalVersion = (await this.commit("stable(to)", "migrating", (t) => finishedMigration(t, this.job), null)).version;
            else {
              this.finalVersion = (await this.readTable()).version;
              await this.saveJob(null);
            }
            this.job = this.next("done");
            this.emit();
            debug("migration %s done: slots %s now on group %d (version %d)", this.job.id, runsText(this.job.slots), this.job.to, this.finalVersion);
            return this.report();
        }
      }
    } finally {
      if (this.source !== null) await closeQuietly(this.source);
      await this.link?.close();
    }
  }

  /** Throws when the run must stop: its signal fired, or its lock was lost. */
  private checkStopped(): void {
    const signal = this.session.settings.signal;
    if (signal?.aborted) throw new MigrationStoppedError(this.job.phase, { cause: signal.reason });
    this.session.lock.check();
  }

  /** The job moved on to `phase` (not saved). */
  private next(phase: MigrationPhase, change: { waitedOut?: readonly string[] } = {}): MigrationJob {
    return advance(this.job, phase, Date.now(), change);
  }

  /** The job in its next phase, saved (a phase that writes no table). */
  private async enter(phase: MigrationPhase): Promise<void> {
    await this.saveJob(this.next(phase));
    debug("migration %s: %s", this.job.id, phase);
    this.emit();
  }

  /** Saves the job (null: deletes it), fenced by the lock. */
  private async saveJob(job: MigrationJob | null): Promise<void> {
    const { ctx, lock } = this.session;
    const saved = await retrying("saving the job", this.budget, () => writeJob(ctx.coordinator, ctx.keys, lock.value, job));
    if (!saved) {
      lock.markLost("the job could not be saved: the lock is not ours");
      throw new MigrationLockedError(ctx.cluster, null, -1, true);
    }
    if (job !== null) this.job = job;
  }

  /**
   * Writes the table state named by `job`'s phase, saving `job` (stamped with the
   * version written) in the same step. `known`: the table as just read, tried
   * first without reading it again.
   */
  private async writeState(job: MigrationJob, known: ClusterTable | null = null): Promise<void> {
    const state = job.phase;
    if (state !== "pending" && state !== "preparing" && state !== "migrating") throw new MigrationStateError(`phase ${state} writes no migration state`);
    const { ctx } = this.session;
    const table = await this.commit(
      state,
      PREVIOUS[state],
      (t) => {
        // Starting: the slots must still be the source's, with no migration in the table.
        if (state === "pending") planMigration(t, this.flags, this.job.to, ctx.cluster);
        return withMigrationState(t, this.job, state);
      },
      job,
      known,
    );
    debug("migration %s: %s, table version %d", this.job.id, job.phase, table.version);
    this.emit();
  }

  /**
   * Moves the table from `previous` to `desired` with a compare-and-set that
   * also saves `job` (null: deletes it), stamped with the new version, only
   * while the lock is ours: one script, so the job never lags the table and a
   * migrator that lost its lock writes nothing. Reads the table again after a
   * lost race; a table already at `desired` (a write whose answer was lost)
   * is taken as done.
   */
  private async commit(
    desired: PlanState,
    previous: PlanState,
    change: (table: ClusterTable) => TableChange,
    job: MigrationJob | null,
    known: ClusterTable | null = null,
  ): Promise<ClusterTable> {
    const { ctx, lock } = this.session;
    for (let attempt = 0; ; attempt++) {
      this.checkStopped();
      const table = known ?? (await this.readTable());
      known = null;
      const state = planState(table, this.job);
      if (state === desired) {
        await this.saveJob(job === null ? null : { ...job, tableVersion: table.version });
        return table;
      }
      if (state !== previous) throw this.mismatch(table, state, `to write ${desired}`);
      const stamped = job === null ? null : { ...job, tableVersion: table.version + 1, updatedAt: Date.now() };
      try {
        const written = await ctx.writeTable(change(table), table.version, { lockValue: lock.value, json: stamped === null ? "" : jobToJson(stamped) });
        if (stamped !== null) this.job = stamped;
        return written;
      } catch (error) {
        if (error instanceof MigrationLockedError) lock.markLost("the table could not be written: the lock is not ours");
        if (attempt + 1 >= MAX_TABLE_ATTEMPTS || !(error instanceof VersionConflictError || isTransient(error))) throw error;
        debug("table write (%s): %s; again", desired, (error as Error).message);
        if (!(error instanceof VersionConflictError)) await sleep(backoffMs(attempt));
      }
    }
  }

  private async readTable(): Promise<ClusterTable> {
    const { ctx } = this.session;
    const table = await retrying("reading the table", this.budget, () => ctx.readTable());
    if (table === null) throw new MigrationStateError(`cluster "${ctx.cluster}" has no slot table any more; the migration job ${this.job.id} cannot go on. Delete ${ctx.keys.migration}`);
    return table;
  }

  private mismatch(table: ClusterTable, state: PlanState, doing: string): MigrationStateError {
    return new MigrationStateError(
      `the slot table changed under the migration (slots ${runsText(this.job.slots)} from group ${this.job.from} to group ${this.job.to}, ` +
        `phase ${this.job.phase}): about ${doing}, table version ${table.version} says ${state}. Someone edited it? ` +
        `The job is kept; check the table and the keys of these slots, then resumeMigration or abortMigration`,
    );
  }

  /** Waits until every client acked the table of `phase` or was waited out; answers with the table waited on. */
  private async waitAcks(phase: "pending" | "preparing"): Promise<AckStatus & { readonly table: ClusterTable }> {
    const { ctx, settings } = this.session;
    const table = await this.readTable();
    const state = planState(table, this.job);
    if (state !== phase) throw this.mismatch(table, state, `to wait for acks of ${phase}`);
    const waker = await this.session.waker();
    const status = await waitForAcks({
      version: table.version,
      phase,
      timeoutMs: settings.ackTimeoutMs,
      read: () => retrying("reading the client registry", this.budget, () => readRegistry(ctx.coordinator, ctx.keys)),
      sleep: (ms) => waker.sleep(ms, settings.signal ?? undefined),
      heard: waker,
      checkStopped: () => this.checkStopped(),
      onWaiting: (s) => {
        this.waitingFor = s.waiting;
        this.emit();
      },
    });
    this.waitingFor = [];
    debug("migration %s: version %d acked by %d clients, %d waited out", this.job.id, table.version, status.acked.length, status.waitedOut.length);
    return { ...status, table };
  }

  /**
   * Kills the connections of the clients that were waited out, on the source
   * and on the target: a MIGRATE or a BUSYKEY DEL such a client sent to the
   * source, or a write it sent to the target, must not land after keys move
   * (on the target it could land after the slots move back; test/sim's
   * KILL_SOURCE_ONLY shows the lost write).
   */
  private async fence(clientIds: readonly string[]): Promise<void> {
    if (clientIds.length === 0) return;
    const source = await this.openSource();
    const killed = await retrying("fencing clients on the source", this.budget, () => killConnectionsOf(source, clientIds));
    const table = await this.readTable();
    const target = table.groups.find((g) => g.id === this.job.to);
    if (target === undefined) throw new MigrationStateError(`group ${this.job.to}, receiving the migration, is not in the table any more`);
    const onTarget = await retrying("fencing clients on the target", this.budget, () =>
      withMaster(target, this.session.ctx.probe, (redis) => killConnectionsOf(redis, clientIds), table.sentinels),
    );
    this.fenced += killed + onTarget;
    debug("migration %s: killed %d + %d connections of waited-out clients %s on groups %d and %d", this.job.id, killed, onTarget, clientIds.join(", "), this.job.from, this.job.to);
  }

  /** The move's pass over the source, from the job's cursor. */
  private async moveKeys(): Promise<void> {
    const table = await this.readTable();
    const source = await this.openSource();
    let owned = 0;
    for (let slot = 0; slot < table.owner.length; slot++) if (table.owner[slot] === this.job.from) owned++;
    const dbsize = await retrying("DBSIZE", this.budget, () => source.dbsize());
    this.estimate = this.job.moved + estimateKeys(dbsize, slotCount(this.job.slots), owned);
    const counts = await this.pass(this.job.cursor);
    debug("migration %s: pass moved %d keys (%d busy) of %d found", this.job.id, counts.moved, counts.busy, counts.found);
  }

  /** Full passes over the source until one finds no key of the slots. */
  private async verify(): Promise<void> {
    for (let pass = 1; ; pass++) {
      if (pass > MAX_VERIFY_PASSES) {
        throw new MigrationStateError(
          `keys of slots ${runsText(this.job.slots)} keep appearing on group ${this.job.from} after ${MAX_VERIFY_PASSES} passes moving them: ` +
            `something still writes there (a client that does not follow the coordinator, or a fromGroups client?). Stop it, then resumeMigration`,
        );
      }
      const counts = await this.pass("0");
      this.verifyPasses = pass;
      if (counts.found === 0) return;
      debug("migration %s: verification pass %d found %d keys (moved %d)", this.job.id, pass, counts.found, counts.moved);
    }
  }

  /** One pass over the source from `cursor`, saving the job after every step. */
  private async pass(cursor: string): Promise<PassCounts> {
    const mover = await this.keyMover();
    const base = { scanned: this.job.scanned, moved: this.job.moved, busy: this.job.busy };
    const movedBefore = this.movedThisRun;
    const msBefore = this.moveMs;
    const started = performance.now();
    const largeBefore = this.largeKeys;
    return mover.pass(cursor, async (at, counts) => {
      this.largeKeys = largeBefore + counts.large;
      this.movedThisRun = movedBefore + counts.moved;
      this.moveMs = msBefore + performance.now() - started;
      const progress = { cursor: at, scanned: base.scanned + counts.scanned, moved: base.moved + counts.moved, busy: base.busy + counts.busy };
      await this.saveJob(withProgress(this.job, progress, Date.now()));
      this.emit();
    });
  }

  private async keyMover(): Promise<KeyMover> {
    if (this.mover !== null) return this.mover;
    const { ctx, settings } = this.session;
    const table = await this.readTable();
    const target = table.groups.find((g) => g.id === this.job.to);
    if (target === undefined) throw new MigrationStateError(`group ${this.job.to}, receiving the migration, is not in the table any more`);
    // With replicas to wait for, the source keeps each key until the target's replicas have it (a failover of the target loses nothing).
    this.waitReplicas = await retrying("counting the target's replicas", this.budget, () => replicasToWait(settings.waitReplicas, target, table.sentinels, ctx.probe));
    this.link =
      this.waitReplicas > 0
        ? new TargetLink({ redisOptions: ctx.probe.redisOptions, connectTimeoutMs: ctx.probe.timeoutMs, waitMs: CONFIRM_WAIT_MS, name: migratorName(ctx.cluster), group: target.id })
        : null;
    debug("migration %s: %s", this.job.id, this.waitReplicas > 0 ? `moved keys confirmed on ${this.waitReplicas} replica(s) of group ${target.id} before the source's copies go` : "plain MIGRATE");
    this.mover = new KeyMover({
      source: await this.openSource(),
      // A Sentinel-named target: its master now, asked of the sentinels (answer reused 1 s).
      target: masterResolver(target, table.sentinels, undefined, { ...sentinelAskOptions(ctx.probe.redisOptions), cacheMs: 1000 }),
      auth: migrateAuth(ctx.probe.redisOptions),
      db: ctx.probe.redisOptions.db ?? 0,
      flags: this.flags,
      budgetMs: settings.batchMs,
      pauseMs: settings.pauseMs,
      maxKeys: settings.maxBatchKeys,
      largeKeyBytes: settings.largeKeyBytes,
      largeKeyTimeoutMs: settings.largeKeyTimeoutMs,
      migrateTimeoutMs: settings.migrateTimeoutMs,
      retryMs: settings.retryMs,
      checkStopped: () => this.checkStopped(),
      checkLock: () => this.session.lock.ensure(),
      replicas: this.waitReplicas,
      link: this.link,
    });
    return this.mover;
  }

  private async openSource(): Promise<Redis> {
    if (this.source !== null) return this.source;
    const { ctx, settings } = this.session;
    const table = await this.readTable();
    const group = table.groups.find((g) => g.id === this.job.from);
    if (group === undefined) throw new MigrationStateError(`group ${this.job.from}, giving the migration's slots, is not in the table any more`);
    const name = migratorName(ctx.cluster);
    const source = await retrying("connecting to the source", this.budget, () => openSource(group, {
      redisOptions: ctx.probe.redisOptions,
      connectTimeoutMs: ctx.probe.timeoutMs,
      commandTimeoutMs: 2 * Math.max(settings.migrateTimeoutMs, settings.largeKeyTimeoutMs) + ctx.probe.timeoutMs,
      name,
    }, table.sentinels));
    try {
      await retrying("fencing earlier migrators", this.budget, () => fencePredecessors(source, name));
    } catch (error) {
      await closeQuietly(source);
      throw error;
    }
    this.source = source;
    return source;
  }

  private emit(): void {
    const onProgress = this.session.settings.onProgress;
    if (onProgress === null) return;
    const job = this.job;
    const perSec = keysPerSec(this.movedThisRun, this.moveMs);
    try {
      onProgress({
        id: job.id,
        phase: job.phase,
        slots: job.slots,
        from: job.from,
        to: job.to,
        scanned: job.scanned,
        moved: job.moved,
        busy: job.busy,
        keysPerSec: perSec,
        etaMs: job.phase === "migrating" && this.estimate !== null ? etaMs(this.estimate, job.moved, perSec) : null,
        waitingFor: this.waitingFor,
      });
    } catch (error) {
      debug("onProgress threw: %s", (error as Error).message);
    }
  }

  private report(): MigrationReport {
    const job = this.job;
    return {
      id: job.id,
      slots: job.slots,
      from: job.from,
      to: job.to,
      moved: job.moved,
      busy: job.busy,
      scanned: job.scanned,
      cleared: this.cleared,
      waitedOut: job.waitedOut,
      fencedConnections: this.fenced,
      verifyPasses: this.verifyPasses,
      largeKeys: this.largeKeys,
      waitReplicas: this.waitReplicas,
      tableVersion: this.finalVersion,
      ms: Math.round(performance.now() - this.started),
      keysPerSec: keysPerSec(this.movedThisRun, this.moveMs),
      resumed: this.resumed,
    };
  }
}
