// The options of a migration run, their defaults, and what a run reports.
import { ArgumentError } from "../../errors.js";
import type { RebalanceOptions } from "../rebalance.js";
import type { MigrationPhase } from "./job.js";
import type { SlotRuns, SlotSpan } from "./slot-set.js";

/** Options of every migration run (migrate, rebalance, resumeMigration). */
export interface MigrationRunOptions {
  /**
   * Time one MIGRATE call (and one SCAN call) should take, in ms, as
   * measured by the migrator (round trip included; fractions allowed).
   * Both block the source while they run, so this trades migration speed
   * for the source's latency: batches and SCAN counts grow or shrink to fit
   * it. About 0.3 ms of it is the call's fixed cost.
   * @default 10
   */
  readonly batchMs?: number;
  /** At most this many keys in one MIGRATE (and SCAN's COUNT hint). @default 1000 */
  readonly maxBatchKeys?: number;
  /**
   * Rest after every batch, in ms, leaving the source to foreground commands:
   * with batchMs it sets the share of the source's time the move takes
   * (batchMs / (batchMs + pauseMs)). Trades speed for foreground latency.
   * @default 0
   */
  readonly pauseMs?: number;
  /** Keys whose MEMORY USAGE is above this many bytes are moved alone, with largeKeyTimeoutMs. @default 1048576 (1 MiB) */
  readonly largeKeyBytes?: number;
  /** MIGRATE's timeout (the longest the source waits on the target at any moment) for a large key, in ms. @default 60000 */
  readonly largeKeyTimeoutMs?: number;
  /** MIGRATE's timeout for a batch of ordinary keys, in ms. @default 5000 */
  readonly migrateTimeoutMs?: number;
  /**
   * How many replicas of the receiving group must have the moved keys
   * before the source's copies are deleted. With 1 or more, keys move with
   * `MIGRATE ... COPY`, then `WAIT` on the target confirms them, then the
   * source's copies are deleted: a target that fails over right after a
   * batch does not lose it (replication is asynchronous). With 0, a plain
   * `MIGRATE` (faster; it deletes the source's copies at once). While the
   * target has fewer replicas up, keys wait on the source (transient errors,
   * retried for retryMs).
   * @default "auto": 1 when the receiving group has a replica (listed in the table, known to its Sentinels, or connected to its master), else 0
   */
  readonly waitReplicas?: number | "auto";
  /**
   * Delete the keys the receiving group holds in the slots (left over from
   * earlier) instead of refusing with a TargetNotEmptyError.
   * @default false
   */
  readonly clearTarget?: boolean;
  /**
   * How long to wait for the clients to acknowledge a step (each has acked
   * or its lease ran out) before failing with an AckTimeoutError; the job is
   * kept for resumeMigration or abortMigration.
   * @default 60000
   */
  readonly ackTimeoutMs?: number;
  /** How long one step may keep failing with transient errors (reconnects, timeouts, LOADING) before the run stops; the job is kept. @default 30000 */
  readonly retryMs?: number;
  /**
   * Lease of the migration lock, in ms; renewed every third of it. A
   * migrator that dies holds the lock this long at most.
   * @default 15000
   */
  readonly lockMs?: number;
  /** Called at every phase change, while waiting for acks, and after every batch of keys. */
  readonly onProgress?: (progress: MigrationProgress) => void;
  /** Stops the run between batches (or while waiting), leaving the job for resumeMigration: a MigrationStoppedError. */
  readonly signal?: AbortSignal;
}

/** Options of admin.migrate(). */
export interface MigrateOptions extends MigrationRunOptions {
  /** The slots to move; one group must own them all, and none may be in a migration. */
  readonly slots: readonly SlotSpan[];
  /** The receiving group. */
  readonly to: number;
}

/** Options of admin.rebalance(): the plan's weights and groups, and the run's options for each move. */
export interface RebalanceRunOptions extends MigrationRunOptions, RebalanceOptions {}

/** Where a run stands, as told to onProgress. */
export interface MigrationProgress {
  readonly id: string;
  readonly phase: MigrationPhase;
  readonly slots: SlotRuns;
  readonly from: number;
  readonly to: number;
  /** Keys SCAN returned from the source so far (all slots; the job's total). */
  readonly scanned: number;
  /** Keys moved to the target so far (the job's total). */
  readonly moved: number;
  /** Source copies deleted because the target's was newer (BUSYKEY). */
  readonly busy: number;
  /** Moving speed of this run. */
  readonly keysPerSec: number;
  /**
   * Estimated time left moving keys, in ms, from DBSIZE of the source × the
   * share of its slots that move; null when there is no estimate yet (or
   * outside migrating).
   */
  readonly etaMs: number | null;
  /** The clients still to acknowledge the step (pending, preparing); empty otherwise. */
  readonly waitingFor: readonly string[];
}

/** What a finished migration did. */
export interface MigrationReport {
  readonly id: string;
  readonly slots: SlotRuns;
  readonly from: number;
  readonly to: number;
  /**
   * Keys moved (the job's total, over every run). A batch moved by a
   * migrator that died before recording it is counted by nobody.
   */
  readonly moved: number;
  /** Source copies deleted because the target had the key (the target's copy is the newer one). */
  readonly busy: number;
  /** Keys SCAN returned from the source (the job's total). */
  readonly scanned: number;
  /** Keys deleted on the target before the move (clearTarget), in this run. */
  readonly cleared: number;
  /** Clients whose lease ran out instead of acking; their connections on the source were killed. */
  readonly waitedOut: readonly string[];
  /** Connections killed on the source, in this run. */
  readonly fencedConnections: number;
  /** Verification passes over the source (the last one found no key of the slots). */
  readonly verifyPasses: number;
  /** Keys moved alone for their size (largeKeyBytes), in this run. */
  readonly largeKeys: number;
  /** Replicas of the target that confirmed every batch before the source's copies were deleted, in this run (0: a plain MIGRATE, or this run moved no key). */
  readonly waitReplicas?: number;
  /** The table version that gave the slots to the target. */
  readonly tableVersion: number;
  /** Duration of this run, in ms. */
  readonly ms: number;
  /** Moving speed of this run (keys moved in this run / time spent moving). */
  readonly keysPerSec: number;
  /** This run resumed a job left by an earlier one. */
  readonly resumed: boolean;
}

/** Run options with their defaults. */
export interface RunSettings {
  readonly batchMs: number;
  readonly pauseMs: number;
  readonly maxBatchKeys: number;
  readonly largeKeyBytes: number;
  readonly largeKeyTimeoutMs: number;
  readonly migrateTimeoutMs: number;
  readonly clearTarget: boolean;
  readonly waitReplicas: number | "auto";
  readonly ackTimeoutMs: number;
  readonly retryMs: number;
  readonly lockMs: number;
  readonly onProgress: ((progress: MigrationProgress) => void) | null;
  readonly signal: AbortSignal | null;
}

export const DEFAULTS = {
  batchMs: 10,
  maxBatchKeys: 1000,
  largeKeyBytes: 1024 * 1024,
  largeKeyTimeoutMs: 60_000,
  migrateTimeoutMs: 5000,
  ackTimeoutMs: 60_000,
  retryMs: 30_000,
  lockMs: 15_000,
} as const;

/** Checks the options and fills in the defaults; an ArgumentError naming a bad one. */
export function runSettings(options: MigrationRunOptions = {}): RunSettings {
  if (typeof options !== "object" || options === null) throw new ArgumentError("migration options must be an object");
  const positive = (name: keyof typeof DEFAULTS, integer = false): number => {
    const value = options[name] ?? DEFAULTS[name];
    if (typeof value !== "number" || !Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
      throw new ArgumentError(`${name} must be a positive ${integer ? "integer" : "number"}, got ${JSON.stringify(options[name])}`);
    }
    return value;
  };
  if (options.onProgress !== undefined && typeof options.onProgress !== "function") throw new ArgumentError("onProgress must be a function");
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) throw new ArgumentError("signal must be an AbortSignal");
  const largeKeyBytes = options.largeKeyBytes ?? DEFAULTS.largeKeyBytes;
  if (typeof largeKeyBytes !== "number" || !(largeKeyBytes > 0)) {
    throw new ArgumentError(`largeKeyBytes must be a positive number (Infinity: no key is large), got ${JSON.stringify(options.largeKeyBytes)}`);
  }
  const pauseMs = options.pauseMs ?? 0;
  if (typeof pauseMs !== "number" || !Number.isFinite(pauseMs) || pauseMs < 0) {
    throw new ArgumentError(`pauseMs must be a number of ms ≥ 0, got ${JSON.stringify(options.pauseMs)}`);
  }
  const waitReplicas = options.waitReplicas ?? "auto";
  if (waitReplicas !== "auto" && !(Number.isSafeInteger(waitReplicas) && waitReplicas >= 0)) {
    throw new ArgumentError(`waitReplicas must be "auto" or an integer ≥ 0, got ${JSON.stringify(options.waitReplicas)}`);
  }
  const settings: RunSettings = {
    batchMs: positive("batchMs"),
    pauseMs,
    maxBatchKeys: positive("maxBatchKeys", true),
    largeKeyBytes,
    largeKeyTimeoutMs: positive("largeKeyTimeoutMs", true),
    migrateTimeoutMs: positive("migrateTimeoutMs", true),
    clearTarget: options.clearTarget === true,
    waitReplicas,
    ackTimeoutMs: positive("ackTimeoutMs"),
    retryMs: positive("retryMs"),
    lockMs: positive("lockMs", true),
    onProgress: options.onProgress ?? null,
    signal: options.signal ?? null,
  };
  if (settings.lockMs < 300) throw new ArgumentError(`lockMs must be at least 300 (it is renewed every third of it), got ${settings.lockMs}`);
  return settings;
}
