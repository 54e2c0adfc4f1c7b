// Moving the keys of the migrating slots from the source to the target
// (DESIGN §5, migrator column): SCAN the source, keep the keys whose slot
// moves, MIGRATE them in batches sized by a time budget (KEYS form, never
// REPLACE). Large keys move alone with a longer timeout. BUSYKEY
// means the key is on both sides and the target's copy is the newer one: the
// source's copy is deleted. A multi-key MIGRATE is not all-or-nothing, so
// what is left is checked again after a failure. When the target has
// replicas to wait for, keys move with MIGRATE ... COPY, are confirmed on the
// target (target-link.ts), and only then deleted from the source.
import type { HostPort, MasterResolver } from "../../topology/master-address.js";
import { performance } from "node:perf_hooks";
import type { Redis } from "ioredis";
import createDebug from "debug";
import { LuaScript } from "../../coordinator/scripts.js";
import { existsEach } from "../group-probe.js";
import { firstSizer, nextSizer, type BatchBudget, type BatchSizer } from "./batch-size.js";
import { backoffMs, isTransient, retrying, sleep, type RetryBudget } from "./retry.js";
import type { TargetLink } from "./target-link.js";
import { ScanQueue } from "./scan-queue.js";
import { dedupeKeys, keysInSlots } from "./slot-set.js";

const debug = createDebug("shardis:migrator");
const debugBatch = createDebug("shardis:migrator:batch");

/**
 * KEYS: the batch. ARGV: largeKeyBytes (-1: none is large). Returns the
 * 1-based indexes of the keys that are gone, and of those above the size.
 */
const SIZE_CHECK = new LuaScript(`
local limit = tonumber(ARGV[1])
local gone, large = {}, {}
for i, key in ipairs(KEYS) do
  if limit < 0 then
    if redis.call('EXISTS', key) == 0 then gone[#gone + 1] = i end
  else
    local bytes = redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '5')
    if not bytes then gone[#gone + 1] = i elseif bytes > limit then large[#large + 1] = i end
  end
end
return {gone, large}
`);

/** The smallest COUNT a SCAN is given (below it, round trips cost more than the source's time is worth). */
const MIN_SCAN_COUNT = 10;
/** SCAN calls without a batch before the cursor is saved anyway (slots with few keys among many). */
const SCANS_PER_STEP = 8;

export interface MoverSettings extends RetryBudget, BatchBudget {
  readonly source: Redis;
  /** Rest after every batch that moved keys, in ms (0: none). */
  readonly pauseMs: number;
  /** MIGRATE's destination, as the source reaches it: fixed, or resolved before each MIGRATE (a Sentinel-named target can fail over). */
  readonly target: HostPort | MasterResolver;
  /** AUTH / AUTH2 arguments for the target ([] without a password). */
  readonly auth: readonly string[];
  readonly db: number;
  /** A flag per slot: 1 for the slots that move. */
  readonly flags: Uint8Array;
  readonly largeKeyBytes: number;
  readonly largeKeyTimeoutMs: number;
  readonly migrateTimeoutMs: number;
  /** Rejects when this migrator may no longer change the source (its lock was lost); awaited right before each MIGRATE and UNLINK. */
  readonly checkLock: () => Promise<void>;
  /**
   * Replicas of the target that must have moved keys before the source's
   * copies are deleted, and the link that confirms it; 0 (or no link): a
   * plain MIGRATE, which deletes them at once.
   */
  readonly replicas: number;
  readonly link: TargetLink | null;
}

/** Counters of one pass. */
export interface PassCounts {
  /** Keys SCAN returned (all slots). */
  scanned: number;
  /** Keys of the moving slots SCAN returned (some may have been moved by clients before the migrator got to them). */
  found: number;
  moved: number;
  busy: number;
  /** Keys moved alone for their size. */
  large: number;
}

/** Told after every step of a pass: the cursor to resume from, and the pass's counters so far. */
export type StepHook = (cursor: string, counts: Readonly<PassCounts>) => Promise<void>;

export class KeyMover {
  private sizer: BatchSizer;
  /** SCAN blocks the source too (about 0.6 µs per key it visits): its COUNT follows the same time budget as a MIGRATE. */
  private scanSizer: BatchSizer;

  constructor(private readonly settings: MoverSettings) {
    this.sizer = firstSizer(settings);
    this.scanSizer = firstSizer(settings);
  }

  /**
   * One SCAN pass over the source from `cursor` to its end, moving every key
   * of the slots it finds. Calls `onStep` after every batch (and after a
   * few SCAN calls that found nothing); checks for a stop before each.
   */
  async pass(cursor: string, onStep: StepHook): Promise<PassCounts> {
    const { source, flags, checkStopped } = this.settings;
    const counts: PassCounts = { scanned: 0, found: 0, moved: 0, busy: 0, large: 0 };
    const queue = new ScanQueue(cursor);
    while (!queue.done) {
      checkStopped();
      for (let calls = 0; calls < SCANS_PER_STEP && !queue.scanEnded && queue.length < this.sizer.size; calls++) {
        const before = queue.nextCursor;
        const count = Math.max(MIN_SCAN_COUNT, this.scanSizer.size);
        const started = performance.now();
        const [next, keys] = await retrying("SCAN", this.settings, () => source.scanBuffer(before, "COUNT", count));
        this.scanSizer = nextSizer(this.scanSizer, { keys: keys.length, ms: performance.now() - started }, this.settings);
        const kept = keysInSlots(keys, flags);
        counts.scanned += keys.length;
        counts.found += kept.length;
        queue.push(before, String(next), kept);
      }
      const batch = dedupeKeys(queue.take(this.sizer.size));
      if (batch.length > 0) {
        const { moved, busy, large } = await this.moveBatch(batch);
        counts.moved += moved;
        counts.busy += busy;
        counts.large += large;
        if (this.settings.pauseMs > 0) await sleep(this.settings.pauseMs);
      }
      await onStep(queue.resumeCursor, counts);
    }
    return counts;
  }

  /** Moves a batch: large keys alone, the rest in one MIGRATE (timed, for the next batch's size). */
  async moveBatch(keys: readonly Buffer[]): Promise<{ moved: number; busy: number; large: number }> {
    const { gone, large: largeAt } = await retrying("MEMORY USAGE", this.settings, () => this.sizeCheck(keys));
    const small: Buffer[] = [];
    const large: Buffer[] = [];
    keys.forEach((key, i) => {
      if (gone.has(i)) return; // moved already (by a client), or deleted
      (largeAt.has(i) ? large : small).push(key);
    });
    let moved = 0;
    let busy = 0;
    for (const key of large) {
      debug("large key %s: moved alone", key.toString());
      const result = await this.migrate([key], this.settings.largeKeyTimeoutMs, false);
      moved += result.moved;
      busy += result.busy;
    }
    if (small.length > 0) {
      const result = await this.migrate(small, this.settings.migrateTimeoutMs, true);
      moved += result.moved;
      busy += result.busy;
    }
    return { moved, busy, large: large.length };
  }

  private migrate(keys: readonly Buffer[], timeoutMs: number, timed: boolean): Promise<{ moved: number; busy: number }> {
    const { replicas, link } = this.settings;
    return replicas > 0 && link !== null ? this.migrateConfirmed(keys, timeoutMs, timed, link) : this.migrateDirect(keys, timeoutMs, timed);
  }

  /**
   * MIGRATE `keys`, retrying transient errors with what is left on the
   * source; BUSYKEY → key by key, the target's copy winning.
   */
  private async migrateDirect(keys: readonly Buffer[], timeoutMs: number, timed: boolean): Promise<{ moved: number; busy: number }> {
    const { checkStopped, retryMs } = this.settings;
    const deadline = performance.now() + retryMs;
    let left = keys;
    let moved = 0;
    for (let attempt = 0; ; attempt++) {
      const started = performance.now();
      try {
        const reply = await this.migrateCall(left, timeoutMs);
        const ms = performance.now() - started;
        if (timed && attempt === 0) this.sizer = nextSizer(this.sizer, { keys: left.length, ms }, this.settings);
        debugBatch("MIGRATE %d keys: %s in %s ms; next batch %d", left.length, reply, ms.toFixed(2), this.sizer.size);
        return { moved: moved + (reply === "NOKEY" ? 0 : left.length), busy: 0 };
      } catch (error) {
        const message = (error as Error).message;
        if (isBusyKey(error)) {
          const result = await this.resolveBusy(left, timeoutMs);
          return { moved: moved + result.moved, busy: result.busy };
        }
        if (!isTransient(error) || performance.now() + backoffMs(attempt) > deadline) throw error;
        debug("MIGRATE of %d keys: %s; retrying what is left", left.length, message);
        await sleep(backoffMs(attempt));
        checkStopped();
        // Keys the failed call did move are gone from the source.
        const still = await retrying("EXISTS", this.settings, () => this.onSource(left));
        moved += left.length - still.length;
        left = still;
        if (left.length === 0) return { moved, busy: 0 };
      }
    }
  }

  /**
   * MIGRATE ... COPY `keys`, confirm them on the target (WAIT for its
   * replicas), then delete the source's copies: the source keeps a copy until
   * the target's is safe from a failover. After a transient error, what is
   * still on the source is copied again (BUSYKEY then: the target has it).
   */
  private async migrateConfirmed(keys: readonly Buffer[], timeoutMs: number, timed: boolean, link: TargetLink): Promise<{ moved: number; busy: number }> {
    const { checkStopped, retryMs, replicas } = this.settings;
    const deadline = performance.now() + retryMs;
    let left = keys;
    for (let attempt = 0; ; attempt++) {
      try {
        const target = await this.resolveTarget();
        // Taken before the MIGRATE: the confirmation must come from the server the keys went to.
        const hold = await link.hold(target);
        // Keys the target has already (BUSYKEY, found in one go: after a failover of the source, thousands of old copies come back).
        const there = await hold.has(left);
        const busy = left.filter((_, i) => there[i]);
        const absent = left.filter((_, i) => !there[i]);
        const started = performance.now();
        const copy = absent.length > 0 ? await this.copy(absent, target, timeoutMs) : { copied: [], busy: [], whole: false };
        const ms = performance.now() - started;
        if (timed && attempt === 0 && copy.whole) this.sizer = nextSizer(this.sizer, { keys: absent.length, ms }, this.settings);
        const copied = copy.copied;
        busy.push(...copy.busy);
        const onTarget = [...copied, ...busy];
        if (onTarget.length > 0) {
          await hold.confirm(replicas);
          await retrying("UNLINK", this.settings, async () => {
            await this.settings.checkLock();
            return this.settings.source.unlink(...onTarget);
          });
        }
        debugBatch("MIGRATE COPY %d keys (%d on the target already) in %s ms, confirmed by %d replicas; next batch %d", absent.length, busy.length, ms.toFixed(2), replicas, this.sizer.size);
        return { moved: copied.length, busy: busy.length };
      } catch (error) {
        if (!isTransient(error) || performance.now() + backoffMs(attempt) > deadline) throw error;
        debug("MIGRATE COPY of %d keys: %s; again with what is left", left.length, (error as Error).message);
        await sleep(backoffMs(attempt));
        checkStopped();
        left = await retrying("EXISTS", this.settings, () => this.onSource(left));
        if (left.length === 0) return { moved: 0, busy: 0 };
      }
    }
  }

  /** MIGRATE ... COPY: the keys the target got, and those it had already (BUSYKEY: its copy is the newer one). `whole`: one call did it. */
  private async copy(keys: readonly Buffer[], target: HostPort, timeoutMs: number): Promise<{ copied: Buffer[]; busy: Buffer[]; whole: boolean }> {
    try {
      const reply = await this.migrateCall(keys, timeoutMs, target, true);
      return { copied: reply === "NOKEY" ? [] : [...keys], busy: [], whole: true };
    } catch (error) {
      if (!isBusyKey(error)) throw error;
    }
    const copied: Buffer[] = [];
    const busy: Buffer[] = [];
    for (const key of keys) {
      try {
        if ((await this.migrateCall([key], timeoutMs, target, true)) !== "NOKEY") copied.push(key);
      } catch (error) {
        if (!isBusyKey(error)) throw error;
        debug("BUSYKEY %s: the target's copy wins; the source's goes once confirmed", key.toString());
        busy.push(key);
      }
    }
    return { copied, busy, whole: false };
  }

  /** Some keys are on both sides: those still on the source move one by one; where the target has one, the source's copy is deleted. */
  private async resolveBusy(keys: readonly Buffer[], timeoutMs: number): Promise<{ moved: number; busy: number }> {
    const left = await retrying("EXISTS", this.settings, () => this.onSource(keys));
    let moved = keys.length - left.length;
    let busy = 0;
    for (const key of left) {
      try {
        const reply = await retrying("MIGRATE", this.settings, () => this.migrateCall([key], timeoutMs));
        if (reply !== "NOKEY") moved++;
      } catch (error) {
        if (!isBusyKey(error)) throw error;
        debug("BUSYKEY %s: the target's copy wins; deleting the source's", key.toString());
        await retrying("UNLINK", this.settings, async () => {
          await this.settings.checkLock();
          return this.settings.source.unlink(key);
        });
        busy++;
      }
    }
    return { moved, busy };
  }

  /** MIGRATE (with COPY: the source keeps its copies) to `target`, or to the target's master now. */
  private async migrateCall(keys: readonly Buffer[], timeoutMs: number, target?: HostPort, copy = false): Promise<string> {
    const { source, auth, db, checkLock } = this.settings;
    await checkLock();
    const to = target ?? (await this.resolveTarget());
    const reply = await source.call("MIGRATE", to.host, String(to.port), "", String(db), String(timeoutMs), ...(copy ? ["COPY"] : []), ...auth, "KEYS", ...keys);
    return String(reply);
  }

  private resolveTarget(): Promise<HostPort> {
    const target = this.settings.target;
    return typeof target === "function" ? target() : Promise.resolve(target);
  }

  /**
   * Which of `keys` are gone from the source, and which are large (MEMORY
   * USAGE above largeKeyBytes): one script call answering indexes only,
   * far cheaper than a reply per key.
   */
  private async sizeCheck(keys: readonly Buffer[]): Promise<{ gone: Set<number>; large: Set<number> }> {
    const limit = Number.isFinite(this.settings.largeKeyBytes) ? String(Math.floor(this.settings.largeKeyBytes)) : "-1";
    const [gone, large] = (await SIZE_CHECK.run(this.settings.source, keys, [limit])) as [number[], number[]];
    return { gone: new Set(gone.map((i) => Number(i) - 1)), large: new Set(large.map((i) => Number(i) - 1)) };
  }

  /** The keys among `keys` that the source still has. */
  private async onSource(keys: readonly Buffer[]): Promise<Buffer[]> {
    const there = await existsEach(this.settings.source, keys);
    return keys.filter((_, i) => there[i]);
  }
}

function isBusyKey(error: unknown): boolean {
  return error instanceof Error && /\bBUSYKEY\b/.test(error.message);
}
