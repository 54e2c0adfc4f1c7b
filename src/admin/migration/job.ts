// The migration job stored under `…:migration` (DESIGN §2, §5): the plan, the
// phase reached, and the SCAN cursor and counters, so that any migrator can
// resume it. Pure: building, checking, advancing and (de)serializing jobs.
import { randomBytes } from "node:crypto";
import { MigrationStateError } from "../../errors.js";
import { SLOT_COUNT } from "../../slot.js";
import type { SlotRuns } from "./slot-set.js";

/** The job format this version of shardis reads and writes. */
export const JOB_FORMAT = 1;

/**
 * Where a migration job stands. The first three are also the table's
 * migration states; `verifying` and `done` keep the table at `migrating`.
 *
 * - pending: the table says pending; waiting for every client to ack it
 * - preparing: the table says preparing; waiting for acks, then fencing
 * - migrating: the table says migrating; moving keys (SCAN cursor saved)
 * - verifying: the move's pass ended; full passes until one finds no key of the slots
 * - done: verified; the table gives the slots to the target, then the job goes
 */
export type MigrationPhase = "pending" | "preparing" | "migrating" | "verifying" | "done";

export const PHASES: readonly MigrationPhase[] = ["pending", "preparing", "migrating", "verifying", "done"];

/** A migration job as stored (JSON) in the coordinator. */
export interface MigrationJob {
  readonly format: typeof JOB_FORMAT;
  /** Random id of this migration. */
  readonly id: string;
  /** The slots moving: inclusive ranges, ascending and merged. */
  readonly slots: SlotRuns;
  /** The group giving the slots. */
  readonly from: number;
  /** The group receiving them. */
  readonly to: number;
  readonly phase: MigrationPhase;
  /** SCAN cursor on the source from which the keys not yet moved can be found ("0": from the start). */
  readonly cursor: string;
  /** Keys SCAN returned from the source (all slots). */
  readonly scanned: number;
  /** Keys moved to the target. */
  readonly moved: number;
  /** Source copies deleted because the target had the key already (BUSYKEY: the target's copy is newer). */
  readonly busy: number;
  /** Migrator's clock (ms since the epoch) when the job was created. */
  readonly startedAt: number;
  /** Migrator's clock when the job was last saved. */
  readonly updatedAt: number;
  /** The table version written for the phase (the one clients must ack). */
  readonly tableVersion: number;
  /**
   * Clients whose lease ran out instead of acking: from preparing on, those
   * waited out in pending; from migrating on, every client fenced (its
   * connections on the source killed).
   */
  readonly waitedOut: readonly string[];
}

/** A new job in phase pending, created from a table at `tableVersion`. */
export function newJob(plan: { slots: SlotRuns; from: number; to: number }, tableVersion: number, now: number, id = randomBytes(8).toString("hex")): MigrationJob {
  return {
    format: JOB_FORMAT,
    id,
    slots: plan.slots.map(([a, b]) => [a, b] as const),
    from: plan.from,
    to: plan.to,
    phase: "pending",
    cursor: "0",
    scanned: 0,
    moved: 0,
    busy: 0,
    startedAt: now,
    updatedAt: now,
    tableVersion,
    waitedOut: [],
  };
}

/** The job moved on to `phase`, which must be the next one (or the same: a resumed step). */
export function advance(job: MigrationJob, phase: MigrationPhase, now: number, change: Partial<Pick<MigrationJob, "waitedOut" | "tableVersion">> = {}): MigrationJob {
  const from = PHASES.indexOf(job.phase);
  const to = PHASES.indexOf(phase);
  if (to !== from && to !== from + 1) {
    throw new MigrationStateError(`a migration job cannot go from phase ${job.phase} to ${phase}; phases go ${PHASES.join(" → ")}`);
  }
  // A pass over the source starts from the beginning in each phase.
  const cursor = to === from ? job.cursor : "0";
  return { ...job, ...change, phase, cursor, updatedAt: now };
}

/** The job with the move's counters and cursor after a batch. */
export function withProgress(job: MigrationJob, progress: { cursor: string; scanned: number; moved: number; busy: number }, now: number): MigrationJob {
  return { ...job, ...progress, updatedAt: now };
}

export function jobToJson(job: MigrationJob): string {
  return JSON.stringify({
    format: job.format,
    id: job.id,
    slots: job.slots,
    from: job.from,
    to: job.to,
    phase: job.phase,
    cursor: job.cursor,
    scanned: job.scanned,
    moved: job.moved,
    busy: job.busy,
    startedAt: job.startedAt,
    updatedAt: job.updatedAt,
    tableVersion: job.tableVersion,
    waitedOut: job.waitedOut,
  });
}

/** Parses a stored job, or throws a MigrationStateError saying what is wrong with it. */
export function parseJob(text: string, key: string): MigrationJob {
  const bad = (why: string): MigrationStateError =>
    new MigrationStateError(
      `the migration job stored under ${key} is unreadable (${why}); look at it and at the slot table, ` +
        `finish or undo the migration by hand, then delete ${key}`,
    );
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw bad(`not JSON: ${(error as Error).message}`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw bad("not a JSON object");
  const o = raw as Record<string, unknown>;
  if (o.format !== JOB_FORMAT) {
    throw bad(typeof o.format === "number" && o.format > JOB_FORMAT ? `format ${o.format} is newer than this shardis reads; upgrade shardis` : `format ${JSON.stringify(o.format)}`);
  }
  if (typeof o.id !== "string" || o.id === "") throw bad("id must be a non-empty string");
  const slots = parseRuns(o.slots);
  if (slots === null) throw bad(`slots must be ascending, non-overlapping [from, to] slot ranges, got ${JSON.stringify(o.slots)}`);
  for (const field of ["from", "to"] as const) {
    if (!Number.isSafeInteger(o[field]) || (o[field] as number) < 1) throw bad(`${field} must be a group id, got ${JSON.stringify(o[field])}`);
  }
  if (o.from === o.to) throw bad("from and to are the same group");
  if (!PHASES.includes(o.phase as MigrationPhase)) throw bad(`phase must be one of ${PHASES.join(", ")}, got ${JSON.stringify(o.phase)}`);
  if (typeof o.cursor !== "string" || !/^\d+$/.test(o.cursor)) throw bad(`cursor must be a SCAN cursor (digits), got ${JSON.stringify(o.cursor)}`);
  for (const field of ["scanned", "moved", "busy", "startedAt", "updatedAt", "tableVersion"] as const) {
    if (!Number.isSafeInteger(o[field]) || (o[field] as number) < 0) throw bad(`${field} must be a non-negative integer, got ${JSON.stringify(o[field])}`);
  }
  if (!Array.isArray(o.waitedOut) || o.waitedOut.some((id) => typeof id !== "string")) throw bad("waitedOut must be an array of client ids");
  return {
    format: JOB_FORMAT,
    id: o.id,
    slots,
    from: o.from as number,
    to: o.to as number,
    phase: o.phase as MigrationPhase,
    cursor: o.cursor,
    scanned: o.scanned as number,
    moved: o.moved as number,
    busy: o.busy as number,
    startedAt: o.startedAt as number,
    updatedAt: o.updatedAt as number,
    tableVersion: o.tableVersion as number,
    waitedOut: [...(o.waitedOut as string[])],
  };
}

function parseRuns(value: unknown): [number, number][] | null {
  if (!Array.isArray(value) || value.length === 0) return null;
  const runs: [number, number][] = [];
  let last = -1;
  for (const run of value) {
    if (!Array.isArray(run) || run.length !== 2) return null;
    const [a, b] = run as unknown[];
    if (!Number.isInteger(a) || !Number.isInteger(b)) return null;
    const from = a as number;
    const to = b as number;
    if (from <= last || from > to || to >= SLOT_COUNT) return null;
    runs.push([from, to]);
    last = to;
  }
  return runs;
}
