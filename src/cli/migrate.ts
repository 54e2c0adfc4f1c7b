// `shardis migrate`: moves slots with their keys to another group while
// clients use them (DESIGN §5), showing its progress. `shardis migration
// status|resume|abort`: the job a migrator left in the coordinator (stopped
// by Ctrl-C, failed, or killed), and what to do with it.
import type { Command } from "commander";
import type { Redis } from "ioredis";
import type { MigrationJob, ShardisAdmin } from "../admin/index.js";
import { parseLockHolder } from "../admin/migration/lock.js";
import { coordinatorKeys } from "../coordinator/keys.js";
import type { LockHolder } from "../errors.js";
import { parseGroupId, parseSlotList, type SlotSpan } from "./args.js";
import { EXIT_FAILED, withAdmin, type CliContext } from "./context.js";
import { duration, migrationLines } from "./format.js";
import { addRunOptions, runOptions, setMigrationHints, showMigration, type RunFlags } from "./migration-run.js";
import { headerLine, slotsText, summaryLine } from "./progress.js";

export function registerMigrate(program: Command, ctx: CliContext): void {
  addRunOptions(
    program
      .command("migrate")
      .summary("move slots, with their keys, to another group while clients use them")
      .description(
        "move slots with their keys to group --to while clients keep using them (a live migration): one group must own all the slots. " +
          "Shows its progress; Ctrl-C stops it cleanly between batches and keeps the job, which `shardis migration resume` continues",
      )
      .requiredOption("--slots <slots>", "the slots to move: slots and ranges, e.g. 0-99,512 (0..1023)", parseSlotList)
      .requiredOption("--to <group>", "the group that receives them", parseGroupId),
  ).action(async (options: RunFlags & { slots: SlotSpan[]; to: number }, command: Command) => {
    setMigrationHints(ctx);
    await withAdmin(command, async (admin) => {
      const report = await showMigration(ctx, (hooks) => admin.migrate({ slots: options.slots, to: options.to, ...runOptions(options), ...hooks }));
      if (report !== null) ctx.out(summaryLine(report));
    });
  });

  const migration = program
    .command("migration")
    .summary("show, resume or abort the migration job left in the coordinator")
    .description("the migration job saved in the coordinator: show it (status), carry it on (resume), or undo it before keys move (abort)");

  migration
    .command("status")
    .summary("show the migration job, if any, and whether a migrator is running it")
    .description("show the migration job saved in the coordinator (phase, slots, keys moved) and whether a migrator holds the lock now")
    .option("--json", "print it as JSON: { cluster, job (as stored, or null), lock (holder and ttlMs, or null), migrations (the table's) }")
    .action(async (options: { json?: boolean }, command: Command) => {
      await withAdmin(command, async (admin, { cluster }, redis) => {
        const [job, lock, table] = await Promise.all([admin.migrationStatus(), readLock(redis, cluster), admin.readTable()]);
        const migrations = table?.migrations ?? [];
        if (options.json === true) {
          ctx.out(JSON.stringify({ cluster, job, lock, migrations }, null, 2));
          return;
        }
        for (const line of jobLines(cluster, job, lock)) ctx.out(line);
        if (job === null && migrations.length > 0) {
          ctx.out(`the slot table (version ${table!.version}) has a migration, but no job is saved for it:`);
          for (const line of migrationLines(table!)) ctx.out(line);
          if (lock === null) ctx.out("nobody is carrying it out; check the table and the keys of those slots, then finish or undo the migration by hand");
        }
      });
    });

  addRunOptions(
    migration
      .command("resume")
      .summary("carry on the migration job from where it stands")
      .description("carry on the migration job saved in the coordinator (left by a migrator that was stopped, failed or died) from where it stands, to the end"),
  ).action(resumeAction(ctx));

  // The library's errors say `shardis resume`; the same command, unlisted.
  addRunOptions(program.command("resume", { hidden: true }).description("the same as `shardis migration resume`")).action(resumeAction(ctx));

  migration
    .command("abort")
    .summary("undo the migration job while it is pending or preparing")
    .description(
      "undo the migration job while it is pending or preparing (before any key has moved): the slots stay with their group and the job is deleted. " +
        "Past that, keys may have moved: resume it instead",
    )
    .action(async (_options: object, command: Command) => {
      setMigrationHints(ctx);
      ctx.hints.set(
        "ERR_MIGRATION_STATE",
        "keys may have moved already, so it cannot be undone: `shardis migration resume` finishes it (then `shardis migrate` can move the slots back)",
      );
      await withAdmin(command, async (admin, { cluster }) => {
        const job = await requireJob(ctx, admin, cluster, "abort");
        if (job === null) return;
        await admin.abortMigration();
        const table = await admin.readTable();
        ctx.out(`migration ${job.id} aborted: slots ${slotsText(job.slots)} stay on group ${job.from}${table === null ? "" : ` (table version ${table.version})`}`);
      });
    });
}

function resumeAction(ctx: CliContext): (options: RunFlags, command: Command) => Promise<void> {
  return async (options, command) => {
    setMigrationHints(ctx);
    await withAdmin(command, async (admin, { cluster }) => {
      const job = await requireJob(ctx, admin, cluster, "resume");
      if (job === null) return;
      ctx.out(`resuming migration ${job.id} in phase ${job.phase} (${job.moved} keys moved so far)`);
      const report = await showMigration(ctx, (hooks) => admin.resumeMigration({ ...runOptions(options), ...hooks }));
      if (report !== null) ctx.out(summaryLine(report));
    });
  };
}

/** The job, or null (said on stderr, exit code 1) when there is none to `verb`. */
async function requireJob(ctx: CliContext, admin: ShardisAdmin, cluster: string, verb: string): Promise<MigrationJob | null> {
  const job = await admin.migrationStatus();
  if (job === null) {
    ctx.err(`shardis: cluster ${cluster} has no migration job to ${verb}; nothing was changed`);
    ctx.exitCode = EXIT_FAILED;
  }
  return job;
}

/** Who holds the migration lock, and for how long unless renewed. */
export interface LockStatus {
  /** null when the lock's value does not name a holder. */
  readonly holder: LockHolder | null;
  readonly ttlMs: number;
}

async function readLock(redis: Redis, cluster: string): Promise<LockStatus | null> {
  const key = coordinatorKeys(cluster).lock;
  const [value, ttlMs] = await Promise.all([redis.get(key), redis.pttl(key)]);
  return value === null ? null : { holder: parseLockHolder(value), ttlMs };
}

/** The text of `migration status`. */
export function jobLines(cluster: string, job: MigrationJob | null, lock: LockStatus | null, now = Date.now()): string[] {
  const holder =
    lock === null
      ? null
      : `${lock.holder === null ? "a migrator" : `a migrator on ${lock.holder.host} (pid ${lock.holder.pid}) since ${new Date(lock.holder.since).toISOString()}`}` +
        ` holds the lock${lock.ttlMs >= 0 ? ` (it expires in ${duration(lock.ttlMs)} unless renewed)` : ""}`;
  if (job === null) {
    return [`cluster ${cluster}: no migration job`, ...(holder === null ? [] : [`  ${holder}, starting or between moves`])];
  }
  const undo = job.phase === "pending" || job.phase === "preparing" ? ", or `shardis migration abort` puts the slots back" : "";
  return [
    `cluster ${cluster}: ${headerLine(job)}`,
    `  phase       ${job.phase} (table version ${job.tableVersion})`,
    `  keys        ${job.moved} moved, ${job.scanned} scanned${job.busy > 0 ? `, ${job.busy} source copies dropped (the target had the newer one)` : ""}`,
    `  started     ${new Date(job.startedAt).toISOString()} (${duration(now - job.startedAt)} ago), last saved ${duration(now - job.updatedAt)} ago`,
    `  waited out  ${job.waitedOut.length === 0 ? "-" : job.waitedOut.join(", ")}`,
    holder === null
      ? `  migrator    none is running it: \`shardis migration resume\` continues it${undo}`
      : `  migrator    ${holder}; if that migrator died, \`shardis migration resume\` continues the job once the lock has expired`,
  ];
}
