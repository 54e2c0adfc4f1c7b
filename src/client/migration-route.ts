import { performance } from "node:perf_hooks";
import { Command } from "ioredis";
import createDebug from "debug";
import { StaleTopologyError } from "../errors.js";
import type { Migration } from "../topology/table.js";
import type { Arg } from "../commands/split.js";
import type { GroupConnection } from "./group-connection.js";
import { keysOf } from "./router.js";
import { armTimeout, routeTimeoutError } from "./deadline.js";
import type { HostPort, MasterResolver } from "../topology/master-address.js";

const debug = createDebug("shardis:migration");

/** Where a routed command goes: a group, or the slots of a migration in progress. */
export interface Route {
  /** The group id reported for this route (a migration reports its target). */
  readonly id: number;
  send(command: Command): void;
}

/** What a migration route needs from its client. */
export interface MigrationHooks {
  /** Routes a command again, by the table current now (after this route was retired). */
  reroute(command: Command): void;
  /** True while the client's lease on its table holds (or it serves stale tables by choice). */
  leaseHolds(): boolean;
  /** How long a command may wait in preparing, or retry MIGRATE, before it fails. */
  readonly waitMs: number;
  /** MIGRATE's own timeout, in ms (the source waits this long for the target). */
  readonly migrateTimeoutMs: number;
  /** AUTH/AUTH2 arguments for MIGRATE to reach the target, and its db. */
  readonly auth: { username?: string; password?: string };
  readonly db: number;
}

interface Waiter {
  readonly deadline: number;
  readonly resolve: (group: GroupConnection | null) => void;
  readonly reject: (error: Error) => void;
}

const BACKOFF_MS = [10, 25, 50, 100, 200, 400];

/** Commands (or transactions) whose MIGRATE failed: when they give up, and how many tries so far. */
const retryDeadlines = new WeakMap<object, { deadline: number; attempt: number }>();

/**
 * The slots of one migration in state preparing or migrating, as one route
 * (DESIGN §5, client column):
 *
 * - preparing: commands are held in memory (the source is being drained);
 *   when the table moves on, they are routed again by the new table;
 * - migrating: the command's keys are first moved with `MIGRATE ... KEYS`
 *   (no REPLACE) from the source to the target, then the command runs on the
 *   target. BUSYKEY means the target's copy is the newer one: the source
 *   copy is deleted.
 *
 * A route belongs to one table version; applying a newer table retires it.
 */
export class MigrationRoute implements Route {
  private held: Waiter[] = [];
  private timer: NodeJS.Timeout | null = null;
  private retired = false;
  /** The target's master: fixed, or resolved before each MIGRATE (a Sentinel-named group can fail over). */
  private readonly target: HostPort | MasterResolver;

  constructor(
    readonly migration: Migration,
    readonly source: GroupConnection,
    readonly targetGroup: GroupConnection,
    targetAddress: HostPort | MasterResolver,
    private readonly hooks: MigrationHooks,
  ) {
    this.target = targetAddress;
  }

  get id(): number {
    return this.targetGroup.id;
  }

  /** The target's address (errors name it). */
  get address(): string {
    return this.targetGroup.address;
  }

  get state(): Migration["state"] {
    return this.migration.state;
  }

  send(command: Command): void {
    // commandTimeout covers the hold or the MIGRATE and the command on the target together.
    const timeoutMs = this.targetGroup.redis.options.commandTimeout;
    if (typeof timeoutMs === "number" && timeoutMs > 0) {
      armTimeout(command, timeoutMs, () =>
        routeTimeoutError(this, command.name, timeoutMs, `its slot was ${this.migration.state === "preparing" ? "being prepared to move" : "moving"} from group ${this.migration.from} to group ${this.migration.to}`),
      );
    }
    this.prepare(keysOf(command), command).then(
      (group) => (group === null ? this.hooks.reroute(command) : group.send(command)),
      (error: Error) => command.reject(error),
    );
  }

  /**
   * Readies `keys` for a command (`owner`: the command or transaction, for
   * its retry deadline): resolves with the group to send it to (the target,
   * once the keys are there), or null when it must go back through the
   * router — the table moved on, the lease ran out, or a MIGRATE failed and
   * is to be retried by the table current then (DESIGN §5).
   */
  async prepare(keys: readonly Arg[], owner: object): Promise<GroupConnection | null> {
    if (this.retired) return null;
    if (this.migration.state === "preparing") return this.hold();
    const moved = await this.moveKeys(keys, owner);
    // The next request (the command on the target) goes only under the table
    // it was routed by and a valid lease (test/sim's STALE_SECOND_LEG).
    if (!moved || !this.current()) return null;
    retryDeadlines.delete(owner);
    return this.targetGroup;
  }

  /** True while this route's table is the client's and its lease holds. */
  private current(): boolean {
    return !this.retired && this.hooks.leaseHolds();
  }

  /** A newer table was applied: held commands go back through the router. */
  retire(): void {
    this.retired = true;
    const held = this.held;
    this.held = [];
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    for (const waiter of held) waiter.resolve(null);
  }

  private hold(): Promise<GroupConnection | null> {
    return new Promise((resolve, reject) => {
      this.held.push({ deadline: performance.now() + this.hooks.waitMs, resolve, reject });
      if (this.timer === null) this.armTimer();
    });
  }

  private armTimer(): void {
    const first = this.held[0];
    if (first === undefined) return;
    this.timer = setTimeout(() => this.expireHeld(), Math.max(0, first.deadline - performance.now()) + 1);
    this.timer.unref();
  }

  private expireHeld(): void {
    this.timer = null;
    const now = performance.now();
    while (this.held.length > 0 && this.held[0]!.deadline <= now) {
      this.held.shift()!.reject(
        new StaleTopologyError(
          `slots ${describeSlots(this.migration)} are being prepared to move from group ${this.migration.from} to group ${this.migration.to}, ` +
            `and the table did not move on within ${this.hooks.waitMs} ms (is the migrator alive?); nothing was sent`,
          0,
        ),
      );
    }
    this.armTimer();
  }

  /**
   * MIGRATE the keys to the target. True when they are there; false when
   * the command must go back through the router: after a transient error
   * (retried by the table current then, until its deadline), or when the
   * route stopped being current before a BUSYKEY clean-up.
   */
  private async moveKeys(keys: readonly Arg[], owner: object): Promise<boolean> {
    if (keys.length === 0) return true;
    // The same key twice in one MIGRATE ... KEYS fails the whole call with BUSYKEY.
    const args = dedupe(keys);
    try {
      await this.migrateOnce(args);
      return true;
    } catch (error) {
      const message = (error as Error).message;
      if (isBusyKey(message)) return this.resolveBusy(args);
      let retry = retryDeadlines.get(owner);
      if (retry === undefined) retryDeadlines.set(owner, (retry = { deadline: performance.now() + this.hooks.waitMs, attempt: 0 }));
      const wait = backoff(retry.attempt++);
      if (!isTransient(error as Error) || performance.now() + wait > retry.deadline) {
        retryDeadlines.delete(owner);
        throw error;
      }
      debug("MIGRATE failed (%s); routing again in %d ms", message, wait);
      await sleep(wait);
      return false;
    }
  }

  /** BUSYKEY: some key is on both sides. Move the keys one by one; where the target has one, it wins. */
  private async resolveBusy(keys: readonly Arg[]): Promise<boolean> {
    for (const key of keys) {
      try {
        await this.migrateOnce([key]);
      } catch (error) {
        if (!isBusyKey((error as Error).message)) throw error;
        // The DEL is a request of its own: only under this route's table and a valid lease.
        if (!this.current()) return false;
        debug("BUSYKEY %s: the target's copy wins; deleting the source's", String(key));
        await this.run(this.source, "del", [key]);
      }
    }
    return true;
  }

  private async migrateOnce(keys: readonly Arg[]): Promise<unknown> {
    const target = typeof this.target === "function" ? await this.target() : this.target;
    const { username, password } = this.hooks.auth;
    const auth = password === undefined ? [] : username === undefined ? ["AUTH", password] : ["AUTH2", username, password];
    return this.run(this.source, "migrate", [
      target.host,
      String(target.port),
      "",
      String(this.hooks.db),
      String(this.hooks.migrateTimeoutMs),
      ...auth,
      "KEYS",
      ...keys,
    ]);
  }

  private run(group: GroupConnection, name: string, args: Arg[]): Promise<unknown> {
    const command = new Command(name, args, { replyEncoding: "utf8" });
    group.send(command);
    return command.promise as Promise<unknown>;
  }
}

function dedupe(keys: readonly Arg[]): Arg[] {
  const seen = new Set<string>();
  return keys.filter((key) => {
    const id = typeof key === "string" ? `s${key}` : `b${key.toString("latin1")}`;
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

/** Errors worth another try: the target unreachable for a moment, a timeout, a reconnect, a loading server. */
function isTransient(error: Error): boolean {
  return /^(IOERR|LOADING|TRYAGAIN|MASTERDOWN)|replied with error: (READONLY|LOADING|MASTERDOWN)|timed? ?out|ECONNRESET|ECONNREFUSED|Connection is closed|unavailable/i.test(error.message);
}

function backoff(attempt: number): number {
  return BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)]!;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

function describeSlots(migration: Migration): string {
  return migration.slots.map(([a, b]) => (a === b ? `${a}` : `${a}..${b}`)).join(", ");
}

/** MIGRATE without REPLACE found the key on the target ("ERR Target instance replied with error: BUSYKEY ..."). */
function isBusyKey(message: string): boolean {
  return /\bBUSYKEY\b/.test(message);
}
