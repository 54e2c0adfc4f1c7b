// The migrator's lease lock (`…:lock`, DESIGN §2): SET NX PX with a value of
// its own (a random token, and who holds it), renewed by a timer while held,
// released only by its holder. Two migrators never run at once; one that
// cannot renew in time stops (its job saves and table writes are fenced by
// the same value).
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { performance } from "node:perf_hooks";
import type { Redis } from "ioredis";
import createDebug from "debug";
import { MigrationLockedError, type LockHolder } from "../../errors.js";
import { LuaScript } from "../../coordinator/scripts.js";

const debug = createDebug("shardis:migrator");

/** KEYS: lock. ARGV: value, ms. 1 when renewed, 0 when the lock is not ours. */
const RENEW = new LuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`);

/** KEYS: lock. ARGV: value. */
const RELEASE = new LuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`);

/** The value a holder stores: its token and who it is. */
export function lockValue(holder: LockHolder, token = randomBytes(12).toString("hex")): string {
  return JSON.stringify({ token, host: holder.host, pid: holder.pid, since: holder.since });
}

/** The holder named by a stored lock value, or null when it names none. */
export function parseLockHolder(value: string | null): LockHolder | null {
  if (value === null) return null;
  try {
    const o = JSON.parse(value) as Partial<LockHolder> | null;
    if (o === null || typeof o !== "object" || typeof o.host !== "string" || typeof o.pid !== "number" || typeof o.since !== "number") return null;
    return { host: o.host, pid: o.pid, since: o.since };
  } catch {
    return null;
  }
}

export class MigrationLock {
  private timer: NodeJS.Timeout | null = null;
  private lost = false;
  private lastRenewed = performance.now();

  private constructor(
    private readonly redis: Redis,
    private readonly key: string,
    private readonly cluster: string,
    /** What this holder stored; job saves compare it too. */
    readonly value: string,
    private readonly lockMs: number,
  ) {}

  /** Takes the lock, or throws a MigrationLockedError naming the holder. */
  static async acquire(redis: Redis, key: string, cluster: string, lockMs: number): Promise<MigrationLock> {
    const value = lockValue({ host: hostname(), pid: process.pid, since: Date.now() });
    const taken = await redis.set(key, value, "PX", lockMs, "NX");
    if (taken !== "OK") {
      const [held, ttl] = await Promise.all([redis.get(key), redis.pttl(key)]);
      throw new MigrationLockedError(cluster, parseLockHolder(held), ttl);
    }
    const lock = new MigrationLock(redis, key, cluster, value, lockMs);
    lock.timer = setInterval(() => void lock.renew(), Math.max(10, Math.floor(lockMs / 3)));
    lock.timer.unref();
    return lock;
  }

  /** Extends the lock by lockMs; false (and the lock is lost) when it is no longer ours. */
  async renew(): Promise<boolean> {
    if (this.lost) return false;
    // The lock lasts lockMs from when the coordinator ran PEXPIRE, which is after this.
    const sent = performance.now();
    try {
      const renewed = Number(await RENEW.run(this.redis, [this.key], [this.value, this.lockMs]));
      if (renewed === 1) this.lastRenewed = Math.max(this.lastRenewed, sent);
      else this.markLost("it is no longer ours");
    } catch (error) {
      // Not renewed; the lock may still be ours until lockMs has passed since the last renewal.
      debug("lock renewal failed: %s", (error as Error).message);
      if (this.sinceRenewal() >= this.lockMs) this.markLost("it could not be renewed in time");
    }
    return !this.lost;
  }

  /**
   * Throws a MigrationLockedError when the lock was lost, or has surely
   * expired (lockMs since the last renewal was sent): between steps.
   */
  check(): void {
    if (this.lost || this.sinceRenewal() >= this.lockMs) this.fail("it was not renewed in time");
  }

  /**
   * Right before a command that changes the source (MIGRATE, UNLINK): when
   * the last renewal is older than half of lockMs (the timer ran late: a
   * busy or paused process), renews first; throws unless the lock is surely
   * still ours. A successful renewal proves it never lapsed, since only the
   * holder's own value is renewed and nobody else writes it.
   */
  async ensure(): Promise<void> {
    if (!this.lost && this.sinceRenewal() < this.lockMs / 2) return;
    await this.renew();
    if (this.lost || this.sinceRenewal() >= this.lockMs * 0.9) this.fail("it could not be renewed in time");
  }

  private sinceRenewal(): number {
    return performance.now() - this.lastRenewed;
  }

  private fail(why: string): never {
    this.markLost(why);
    throw new MigrationLockedError(this.cluster, null, -1, true);
  }

  /** Called when a fenced write found the lock not ours. */
  markLost(why: string): void {
    if (!this.lost) debug("lost the migration lock: %s", why);
    this.lost = true;
  }

  /** Stops renewing and deletes the lock if it is still ours. */
  async release(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.lost) return;
    this.lost = true;
    await RELEASE.run(this.redis, [this.key], [this.value]).catch((error: Error) => debug("lock release failed: %s", error.message));
  }
}
