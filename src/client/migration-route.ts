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
import { isTransientMessage } from "../transient.js";

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

/** WAIT's timeout when confirming keys a command moved (it holds up the target connection meanwhile). */
const CONFIRM_WAIT_MS = 100;
/** After a confirmation failed, copied keys stay on the source without asking again for this long. */
const CONFIRM_PAUSE_MS = 1000;
/** A target seen without replicas is asked again after this long. */
const REPLICA_RECHECK_MS = 5000;
/** What the confirming PUBLISH goes to (nobody needs to listen; the migrator's too). */
const CONFIRM_CHANNEL = "shardis:migrate-confirm";

/**
 * The connection to the target was not the same one before the MIGRATE and
 * after it (it reconnects, maybe to a promoted replica that lacks the keys):
 * the keys are moved again before the command goes on. Transient.
 */
class TargetSwitchedError extends Error {
  override readonly name = "TargetSwitchedError";
}

/** At most this many keys remembered per route as gone from the source (beyond it, they are MIGRATEd each time). */
const MAX_GONE_KEYS = 100_000;

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
 *   copy is deleted. When the target's master has a replica, the keys move
 *   with `MIGRATE ... COPY` instead, and the source's copies are deleted
 *   only once a replica of the target confirmed them (replication is
 *   asynchronous: a target that fails over right after a plain MIGRATE
 *   could lose keys it had just taken, acknowledged writes among them).
 *
 * A route belongs to one table version; applying a newer table retires it.
 */
export class MigrationRoute implements Route {
  private held: Waiter[] = [];
  private timer: NodeJS.Timeout | null = null;
  private retired = false;
  /** Replicas of the target to wait for (0 or 1) as last asked, and when; see replicasToWait(). */
  private replicas: { readonly count: number; readonly at: number } | null = null;
  private asking: Promise<number> | null = null;
  /**
   * Keys this route saw leave the source (moved, or not there at all). While
   * the slots are migrating nothing writes a key back on the source (clients
   * send it MIGRATE and DEL only; older tables were drained or fenced), so
   * their next commands go straight to the target, without a MIGRATE each.
   * Buffer keys by their latin1 text, in a set of their own.
   */
  private readonly gone = new Set<string>();
  private readonly goneBuffers = new Set<string>();
  /** The keys of the next move, still open to more, and its outcome (see moveSoon). */
  private batch: { readonly keys: Arg[]; readonly done: Promise<boolean> } | null = null;
  /** Settles when the last move asked for is over. */
  private tail: Promise<void> = Promise.resolve();
  /** Until then, copied keys are not confirmed (the last confirmation failed). */
  private confirmPausedUntil = 0;
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
    const args = this.onSource(keys);
    try {
      if (args.length > 0) return await this.moveSoon(args);
      // Nothing to move, but behind every move already asked for: the route keeps its commands in order.
      await this.tail;
      return true;
    } catch (error) {
      const message = (error as Error).message;
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

  /**
   * Moves `keys` together with the keys of the other commands readied while
   * the move before is under way or in the same turn of the event loop (the
   * commands a hold releases at once, a pipeline's): one MIGRATE for all.
   * Moves run one after the other, so commands leave in the order they came.
   */
  private moveSoon(keys: readonly Arg[]): Promise<boolean> {
    let batch = this.batch;
    if (batch === null) {
      const collected: Arg[] = [];
      const done = this.tail
        // process.nextTick: after the promise reactions queued now (which may add keys).
        .then(() => new Promise<void>((resolve) => process.nextTick(resolve)))
        .then(() => {
          if (this.batch?.keys === collected) this.batch = null;
          return this.moveNow(collected);
        });
      batch = this.batch = { keys: collected, done };
      this.tail = done.then(noop, noop);
    }
    for (const key of keys) batch.keys.push(key);
    return batch.done;
  }

  /** One MIGRATE (or COPY and confirm) of `keys`; BUSYKEY is resolved key by key. */
  private async moveNow(keys: readonly Arg[]): Promise<boolean> {
    // The same key twice in one MIGRATE ... KEYS fails the whole call with BUSYKEY.
    const args = this.onSource(keys.length === 1 ? keys : dedupe(keys));
    if (args.length === 0) return true;
    if ((await this.replicasToWait()) > 0) return this.copyKeys(args);
    try {
      await this.migrateOnce(args);
    } catch (error) {
      if (!isBusyKey((error as Error).message)) throw error;
      return this.resolveBusy(args);
    }
    this.markGone(args);
    return true;
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
    this.markGone(keys);
    return true;
  }

  /** The keys not known to be gone from the source. */
  private onSource(keys: readonly Arg[]): readonly Arg[] {
    if (this.gone.size === 0 && this.goneBuffers.size === 0) return keys;
    return keys.filter((key) => (typeof key === "string" ? !this.gone.has(key) : !this.goneBuffers.has(key.toString("latin1"))));
  }

  private markGone(keys: readonly Arg[]): void {
    for (const key of keys) {
      if (this.gone.size + this.goneBuffers.size >= MAX_GONE_KEYS) return;
      if (typeof key === "string") this.gone.add(key);
      else this.goneBuffers.add(key.toString("latin1"));
    }
  }

  /**
   * 1 when the target's master has a replica (ROLE on this client's
   * connection to it), else 0. Seen with one, it stays 1 for the route's
   * life (after a failover the new master has none for a while: keys keep
   * waiting for one); seen without, it is asked again after
   * REPLICA_RECHECK_MS. A refused ROLE (ACL) counts as none.
   */
  private async replicasToWait(): Promise<number> {
    const known = this.replicas;
    if (known !== null && (known.count > 0 || performance.now() - known.at < REPLICA_RECHECK_MS)) return known.count;
    this.asking ??= this.askReplicas().finally(() => (this.asking = null));
    return this.asking;
  }

  private async askReplicas(): Promise<number> {
    let count = 0;
    try {
      const role = await this.run(this.targetGroup, "role", []);
      count = Array.isArray(role) && role[0] === "master" && Array.isArray(role[2]) && role[2].length > 0 ? 1 : 0;
    } catch (error) {
      if (!/NOPERM|unknown command/i.test((error as Error).message)) throw error;
      debug("ROLE refused on group %d (%s): MIGRATE without waiting for replicas", this.migration.to, (error as Error).message);
    }
    this.replicas = { count, at: performance.now() };
    return count;
  }

  /**
   * MIGRATE ... COPY (the source keeps its copies); then, when a replica of
   * the target confirms them (PUBLISH + WAIT 1 on this client's connection
   * to it, which must be the one up before the MIGRATE: the same server),
   * the source's copies are deleted. Unconfirmed, they stay: the target's
   * copy is the live one (a later MIGRATE answers BUSYKEY), and whoever
   * confirms it later (a command, the migrator) deletes the source's. A
   * source copy is never deleted before the target's is on a replica.
   */
  private async copyKeys(keys: readonly Arg[]): Promise<boolean> {
    const redis = this.targetGroup.redis;
    // The command goes on to the target over this connection: it must be up
    // before the MIGRATE and the same one after (checked last, with nothing
    // asynchronous until the command is sent). Queued for a reconnect, the
    // command could run on a promoted replica that lacks the keys, create
    // them afresh, and that new copy would then win over the source's.
    if (redis.status !== "ready") await this.run(this.targetGroup, "ping", []);
    const stream = redis.stream;
    const same = () => redis.status === "ready" && redis.stream === stream;
    const switched = () => new TargetSwitchedError(`group ${this.migration.to}'s connection reconnected (a failover?) around MIGRATE; moving the keys again`);
    if (!same()) throw switched();
    const target = await this.resolveTarget();
    const onTarget = await this.copy(keys, target);
    if (onTarget.length > 0 && same() && performance.now() >= this.confirmPausedUntil && (await this.confirm(same))) {
      // The DEL is a request of its own: only under this route's table and a valid lease.
      if (!this.current()) return false;
      await this.run(this.source, "del", onTarget);
      this.markGone(keys);
    } else if (onTarget.length === 0) this.markGone(keys); // none was on the source
    if (!same()) throw switched();
    return true;
  }

  /** MIGRATE ... COPY: the keys now on the target, copied or there already (BUSYKEY: its copy is the newer one). */
  private async copy(keys: readonly Arg[], target: HostPort): Promise<Arg[]> {
    try {
      return (await this.migrateOnce(keys, target, true)) === "NOKEY" ? [] : [...keys];
    } catch (error) {
      if (!isBusyKey((error as Error).message)) throw error;
    }
    const onTarget: Arg[] = [];
    for (const key of keys) {
      try {
        if ((await this.migrateOnce([key], target, true)) !== "NOKEY") onTarget.push(key);
      } catch (error) {
        if (!isBusyKey((error as Error).message)) throw error;
        onTarget.push(key);
      }
    }
    return onTarget;
  }

  /** True when a replica of the target has everything written to it so far; a failure pauses confirmations for CONFIRM_PAUSE_MS. */
  private async confirm(same: () => boolean): Promise<boolean> {
    let confirmed = false;
    try {
      const published = this.run(this.targetGroup, "publish", [CONFIRM_CHANNEL, ""]);
      const waited = this.run(this.targetGroup, "wait", ["1", String(CONFIRM_WAIT_MS)]);
      const [, acked] = await Promise.all([published, waited]);
      confirmed = Number(acked) >= 1 && same();
    } catch (error) {
      debug("confirming moved keys on group %d: %s", this.migration.to, (error as Error).message);
    }
    if (!confirmed) this.confirmPausedUntil = performance.now() + CONFIRM_PAUSE_MS;
    return confirmed;
  }

  private resolveTarget(): Promise<HostPort> {
    return typeof this.target === "function" ? this.target() : Promise.resolve(this.target);
  }

  /** MIGRATE to `target` (default: the target's master now); with `copy`, the source keeps its copies. */
  private async migrateOnce(keys: readonly Arg[], target?: HostPort, copy = false): Promise<unknown> {
    const to = target ?? (await this.resolveTarget());
    const { username, password } = this.hooks.auth;
    const auth = password === undefined ? [] : username === undefined ? ["AUTH", password] : ["AUTH2", username, password];
    return this.run(this.source, "migrate", [
      to.host,
      String(to.port),
      "",
      String(this.hooks.db),
      String(this.hooks.migrateTimeoutMs),
      ...(copy ? ["COPY"] : []),
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
  if (error instanceof TargetSwitchedError) return true;
  return isTransientMessage(error.message);
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

function noop(): void {}
