// What the commands that move slots share (migrate, rebalance --apply,
// migration resume): their tuning options, the progress display, Ctrl-C
// stopping the run cleanly between batches, and hints in the CLI's words for
// the migrator's errors.
import { performance } from "node:perf_hooks";
import type { Command } from "commander";
import { MigrationStoppedError, type MigrationProgress, type MigrationRunOptions } from "../admin/index.js";
import { DEFAULTS } from "../admin/migration/options.js";
import { parseInteger, parseMs, parseWaitReplicas } from "./args.js";
import { EXIT_INTERRUPTED, type CliContext } from "./context.js";
import { ProgressPrinter } from "./progress.js";

/** The run options as commander parses them. */
export interface RunFlags {
  batchMs?: number;
  pauseMs?: number;
  maxBatchKeys?: number;
  largeKeyBytes?: number;
  migrateTimeoutMs?: number;
  ackTimeoutMs?: number;
  waitReplicas?: number | "auto";
  clearTarget?: boolean;
}

const MAX_MS = 2_147_483_647;

/** Adds the options that tune a migration run to `command`. */
export function addRunOptions(command: Command): Command {
  return command
    .option(
      "--batch-ms <ms>",
      `time one MIGRATE batch should take; MIGRATE blocks the source meanwhile, so smaller keeps its latency low, larger moves faster (default ${DEFAULTS.batchMs})`,
      (text: string) => parseMs("--batch-ms", text, 0, 60_000, true),
    )
    .option(
      "--pause-ms <ms>",
      `rest after every batch: with --batch-ms it sets the share of the source's time the move takes (batch / (batch + pause)), trading speed for foreground latency (default 0)`,
      (text: string) => parseMs("--pause-ms", text, 0, 60_000),
    )
    .option("--max-batch-keys <n>", `at most this many keys in one MIGRATE (default ${DEFAULTS.maxBatchKeys})`, (text: string) =>
      parseInteger("--max-batch-keys", text, 1, 1_000_000),
    )
    .option(
      "--large-key-bytes <n>",
      `keys bigger than this (MEMORY USAGE) move alone, with a longer timeout (default ${DEFAULTS.largeKeyBytes})`,
      (text: string) => parseInteger("--large-key-bytes", text, 1, Number.MAX_SAFE_INTEGER),
    )
    .option("--migrate-timeout-ms <ms>", `MIGRATE's timeout for a batch (default ${DEFAULTS.migrateTimeoutMs})`, (text: string) =>
      parseInteger("--migrate-timeout-ms", text, 1, MAX_MS),
    )
    .option(
      "--ack-timeout-ms <ms>",
      `how long to wait for the clients to acknowledge a step before giving up; the job is kept (default ${DEFAULTS.ackTimeoutMs})`,
      (text: string) => parseInteger("--ack-timeout-ms", text, 1, MAX_MS),
    )
    .option(
      "--wait-replicas <auto|n>",
      "how many replicas of the receiving group must have the moved keys before the source's copies are deleted: with 1 or more, keys move " +
        "with MIGRATE ... COPY and WAIT confirms them, so a failover of the receiving group to such a replica keeps them; while too few " +
        `replicas are up, keys wait on the source (after ${DEFAULTS.retryMs / 1000} s of that the run stops, keeping the job). 0: a plain MIGRATE, faster, unconfirmed ` +
        "(default auto: 1 when the receiving group has a replica, else 0)",
      parseWaitReplicas,
    )
    .option("--clear-target", "delete the keys the receiving group already holds in the slots (stale copies), instead of refusing");
}

/** The flags given, as the admin's run options (unset ones left to its defaults). */
export function runOptions(flags: RunFlags): MigrationRunOptions {
  const options: { -readonly [K in keyof MigrationRunOptions]: MigrationRunOptions[K] } = {};
  if (flags.batchMs !== undefined) options.batchMs = flags.batchMs;
  if (flags.pauseMs !== undefined) options.pauseMs = flags.pauseMs;
  if (flags.maxBatchKeys !== undefined) options.maxBatchKeys = flags.maxBatchKeys;
  if (flags.largeKeyBytes !== undefined) options.largeKeyBytes = flags.largeKeyBytes;
  if (flags.migrateTimeoutMs !== undefined) options.migrateTimeoutMs = flags.migrateTimeoutMs;
  if (flags.ackTimeoutMs !== undefined) options.ackTimeoutMs = flags.ackTimeoutMs;
  if (flags.waitReplicas !== undefined) options.waitReplicas = flags.waitReplicas;
  if (flags.clearTarget === true) options.clearTarget = true;
  return options;
}

const STATUS = "`shardis migration status`";
const RESUME = "`shardis migration resume`";
const ABORT = "`shardis migration abort`";

/**
 * Sets the hints printed after the migrator's errors, in the CLI's words
 * (the errors name the library's options and methods). `after`: said at the
 * end of the hints for errors that leave a job (e.g. what a rebalance still
 * has to do).
 */
export function setMigrationHints(ctx: CliContext, after = ""): void {
  const tail = after === "" ? "" : ` ${after}`;
  ctx.hints.set(
    "ERR_TARGET_NOT_EMPTY",
    "if those keys are stale copies, run the same command again with --clear-target to have them deleted first; otherwise delete or move them yourself. Nothing was changed",
  );
  ctx.hints.set(
    "ERR_MIGRATION_IN_PROGRESS",
    `${STATUS} shows it; ${RESUME} finishes it, or ${ABORT} puts the slots back while it is pending or preparing`,
  );
  ctx.hints.set(
    "ERR_MIGRATION_LOCKED",
    `another migrator (shardis migrate, rebalance --apply or migration resume) holds the cluster's migration lock; ${STATUS} shows who and the job. ` +
      `Once it has stopped (the lock of one that died expires within ${DEFAULTS.lockMs / 1000} s), ${RESUME} continues any job it left${tail}`,
  );
  ctx.hints.set(
    "ERR_ACK_TIMEOUT",
    `\`shardis status\` lists the clients and the version each applied; once they acknowledge (or are stopped), ${RESUME} waits again ` +
      `(--ack-timeout-ms to wait longer), or ${ABORT} puts the slots back${tail}`,
  );
  ctx.hints.set(
    "ERR_MIGRATION_STATE",
    `${STATUS} shows the job and \`shardis status\` the table; ${RESUME} continues the job, ${ABORT} undoes it while it is pending or preparing${tail}`,
  );
}

/** What a run gets from showMigration: where to report progress, and the signal that stops it. */
export interface RunHooks {
  readonly onProgress: (progress: MigrationProgress) => void;
  readonly signal: AbortSignal;
}

export interface ShowOptions {
  /** For a rebalance: the number of moves planned. */
  readonly moves?: number;
  /** Said after "interrupted" when the run stopped with a job left (e.g. what a rebalance still has to do). */
  readonly afterStop?: string;
}

/**
 * Runs `run` with its progress shown, SIGINT/SIGTERM stopping it between
 * batches (a second one exits at once). Answers what `run` answered, or null
 * when it was interrupted: then the message is printed and the exit code is 130.
 */
export async function showMigration<T>(ctx: CliContext, run: (hooks: RunHooks) => Promise<T>, options: ShowOptions = {}): Promise<T | null> {
  const printer = new ProgressPrinter({ out: ctx.out, terminal: ctx.terminal, now: () => performance.now() }, options.moves ?? null);
  const abort = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (!abort.signal.aborted) {
      printer.note(`${signal}: stopping after the current step (again to exit at once)...`);
      abort.abort(signal);
      return;
    }
    printer.close(true);
    ctx.err(
      `shardis: ${signal} again: exiting now. The job is saved as of its last step; once its lock expires (within ${DEFAULTS.lockMs / 1000} s), ` +
        `${RESUME} continues it`,
    );
    process.exit(EXIT_INTERRUPTED);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    const result = await run({ onProgress: (p) => printer.update(p), signal: abort.signal });
    printer.close(false);
    return result;
  } catch (error) {
    printer.close(true);
    if (!(error instanceof MigrationStoppedError) || !abort.signal.aborted) throw error;
    ctx.err(`shardis: ${stoppedMessage(error, printer.latest, abort.signal.reason, options.afterStop)}`);
    ctx.exitCode = EXIT_INTERRUPTED;
    return null;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

function stoppedMessage(error: MigrationStoppedError, latest: MigrationProgress | null, reason: unknown, afterStop = ""): string {
  const signal = typeof reason === "string" ? reason : "interrupted";
  if (error.phase === null || latest === null) return `${signal}: stopped before the migration started; nothing was changed`;
  const undo = error.phase === "pending" || error.phase === "preparing" ? `, or ${ABORT} puts the slots back on group ${latest.from}` : "";
  return (
    `${signal}: migration ${latest.id} stopped cleanly in phase ${error.phase} (${latest.moved} keys moved so far); ` +
    `the job is saved in the coordinator: ${RESUME} continues it${undo}${afterStop === "" ? "" : `. ${afterStop}`}`
  );
}
