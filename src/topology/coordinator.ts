import { hostname } from "node:os";
import { performance } from "node:perf_hooks";
import type { Redis } from "ioredis";
import createDebug from "debug";
import { CoordinatorUnavailableError, TopologyError } from "../errors.js";
import { coordinatorKeys, type CoordinatorKeys } from "../coordinator/keys.js";
import { confirm, DEREGISTER, type Confirmation } from "../coordinator/scripts.js";
import type { CoordinatorConnection } from "../coordinator/connection.js";
import { parseTableJson, type ClusterTable } from "./format.js";

const debug = createDebug("shardis:coordinator");

export interface CoordinatorTopologyOptions {
  readonly connection: CoordinatorConnection;
  readonly cluster: string;
  readonly clientId: string;
  readonly leaseMs: number;
  readonly refreshMs: number;
  /**
   * Switches routing to `table` at once; the promise resolves when every
   * command routed under the older table to a changed slot has finished.
   */
  readonly apply: (table: ClusterTable) => Promise<void>;
  /** The lease was renewed: held commands may go. */
  readonly onLease: () => void;
  /** The lease ran out without renewal. */
  readonly onStale: () => void;
  /** A bad table, or the coordinator away (once per outage). */
  readonly onError: (error: Error) => void;
}

/**
 * Follows the slot table in the coordinator (DESIGN §4): confirms (register +
 * read in one script) at start, on every event and every `refreshMs`; keeps
 * the lease; acks each applied version once it has drained.
 *
 * Confirmations run one at a time, in order, on one connection, so the
 * registry never sees an older applied version after a newer one.
 */
export class CoordinatorTopology {
  /** The table routed by, once one was confirmed. */
  table: ClusterTable | null = null;
  /** Local monotonic time (performance.now) until which the table may be served. */
  leaseUntil = -Infinity;
  private readonly keys: CoordinatorKeys;
  private acked = 0;
  /** The newest version seen and refused (bad table): not asked for again. */
  private refused = 0;
  private requested = false;
  private running = false;
  private closed = false;
  private started = false;
  private coordinatorDown = false;
  private lastReported: number | null = null;
  /** Why the lease is not being renewed, for the StaleTopologyError of held commands. */
  problem: string | null = null;
  private pollTimer: NodeJS.Timeout | null = null;
  private staleTimer: NodeJS.Timeout | null = null;
  private subscriber: Redis | null = null;
  private readonly confirmTimeoutMs: number;
  /** Settles when the drains of every version applied so far are done. */
  private drained: Promise<void> = Promise.resolve();
  private readonly firstTableWaiters: { resolve: () => void }[] = [];

  constructor(private readonly options: CoordinatorTopologyOptions) {
    this.keys = coordinatorKeys(options.cluster);
    this.confirmTimeoutMs = Math.max(options.refreshMs, 1000);
  }

  /** True once start() ran (or a command or connect() started it). */
  get isStarted(): boolean {
    return this.started;
  }

  /** True while the lease holds. */
  fresh(): boolean {
    return performance.now() < this.leaseUntil;
  }

  /** Starts following: confirm now, subscribe to events, poll every refreshMs. */
  start(): void {
    if (this.started || this.closed) return;
    this.started = true;
    const subscriber = this.options.connection.subscriber();
    this.subscriber = subscriber;
    subscriber.on("message", (_channel: string, message: string) => this.onEvent(message));
    // After a reconnect ioredis subscribes again; events sent meanwhile are lost, so look now.
    subscriber.on("ready", () => this.refresh());
    subscriber.on("error", (error: Error) => debug("events connection: %s", error.message));
    subscriber.subscribe(this.keys.events).catch((error: Error) => debug("subscribe failed: %s", error.message));
    this.pollTimer = setInterval(() => this.refresh(), this.options.refreshMs);
    this.pollTimer.unref();
    this.refresh();
  }

  /** Asks for a confirmation soon (coalesced with one already running). */
  refresh(): void {
    if (this.closed) return;
    if (!this.started) return this.start();
    this.requested = true;
    if (!this.running) void this.loop();
  }

  /**
   * A message on the events channel: "<version> <table JSON>" as the
   * admin's write script publishes it, or just "<version>". A newer table in
   * the message is applied at once (it is what a confirmation sent now would
   * read); its ack, a confirmation, follows the drain. Anything else asks for
   * a confirmation.
   */
  private onEvent(message: string): void {
    if (this.closed) return;
    const space = message.indexOf(" ");
    const version = space > 0 ? Number(message.slice(0, space)) : NaN;
    // Before the first confirmation this client is not registered: it must confirm first.
    const newer = this.table !== null && Number.isSafeInteger(version) && version > this.table.version && version > this.refused;
    if (!newer || !this.installJson(version, message.slice(space + 1))) this.refresh();
  }

  /** Resolves once a first table is applied. */
  firstTable(): Promise<void> {
    if (this.table !== null) return Promise.resolve();
    return new Promise((resolve) => this.firstTableWaiters.push({ resolve }));
  }

  /**
   * Stops following. With `deregister`, removes this client's registry entry
   * first (after a clean quit nothing of it is in flight any more).
   */
  async close(deregister: boolean): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.pollTimer) clearInterval(this.pollTimer);
    if (this.staleTimer) clearTimeout(this.staleTimer);
    this.subscriber?.removeAllListeners("ready");
    if (deregister && this.started && this.options.connection.redis.status === "ready") {
      await withTimeout(DEREGISTER.run(this.options.connection.redis, [this.keys.clients, this.keys.acks], [this.options.clientId]), 1000).catch(
        (error: Error) => debug("deregister failed: %s", error.message),
      );
    }
    if (this.subscriber) {
      this.subscriber.disconnect();
      this.subscriber = null;
    }
    await this.options.connection.close();
  }

  private async loop(): Promise<void> {
    this.running = true;
    try {
      while (this.requested && !this.closed) {
        this.requested = false;
        await this.confirmOnce();
      }
    } finally {
      this.running = false;
    }
  }

  private async confirmOnce(): Promise<void> {
    const sentWith = this.table?.version ?? 0;
    // The lease counts from when the confirmation was sent, not answered.
    const sentAt = performance.now();
    let reply: Confirmation;
    try {
      reply = await withTimeout(
        confirm(this.options.connection.redis, this.keys, {
          clientId: this.options.clientId,
          applied: this.acked,
          known: Math.max(sentWith, this.refused),
          host: hostname(),
          pid: process.pid,
          name: `shardis:${this.options.clientId}`,
          leaseMs: this.options.leaseMs,
        }),
        this.confirmTimeoutMs,
      );
    } catch (error) {
      if (this.closed) return;
      this.problem = `the coordinator did not answer: ${(error as Error).message}`;
      if (!this.coordinatorDown) {
        this.coordinatorDown = true;
        this.options.onError(
          new CoordinatorUnavailableError(`cannot confirm the slot table with the coordinator: ${(error as Error).message}`, { cause: error }),
        );
      }
      return;
    }
    if (this.closed) return;
    this.coordinatorDown = false;
    if (reply.version === 0) {
      return this.reportOnce(0, new TopologyError(`cluster "${this.options.cluster}" has no slot table in the coordinator; create it with \`shardis init\``));
    }
    // An event may have brought a newer table while the confirmation was under way.
    const current = this.table?.version ?? 0;
    if (reply.version < 0 || (reply.version > current && reply.tableJson !== null)) {
      if (!this.installJson(reply.version, reply.tableJson ?? "")) return;
    } else if (reply.version < sentWith) {
      return this.reportOnce(
        reply.version,
        new TopologyError(`the coordinator's slot table went back from version ${sentWith} to ${reply.version}; keeping version ${current} and refusing to renew the lease`),
      );
    } else if (reply.version > current) {
      return; // a version refused before: no lease until a good one comes
    }
    this.renewLease(sentAt);
  }

  /**
   * Installs the table `json`, said to be at `version`; a bad one is
   * refused: reported once, not asked for again, the last good table kept.
   * True when installed.
   */
  private installJson(version: number, json: string): boolean {
    let table: ClusterTable;
    try {
      table = parseTableJson(json, this.options.cluster);
      if (table.version !== version) {
        throw new TopologyError(`the slot table's "version" field is ${table.version}, but the coordinator read version ${version} from it`);
      }
    } catch (error) {
      if (version > 0) this.refused = Math.max(this.refused, version);
      this.reportOnce(version, error as Error);
      return false;
    }
    this.install(table);
    return true;
  }

  private install(table: ClusterTable): void {
    const version = table.version;
    debug("applying version %d", version);
    this.table = table;
    // An ack of this version also vouches for every older one: wait for their drains too.
    const drained = Promise.all([this.drained, this.options.apply(table)]);
    this.drained = drained.then(noop, noop);
    drained.then(
      () => {
        if (version <= this.acked) return;
        this.acked = version;
        this.refresh(); // the ack
      },
      (error: Error) => debug("drain of version %d failed: %s", version, error.message),
    );
    for (const waiter of this.firstTableWaiters.splice(0)) waiter.resolve();
  }

  private renewLease(sentAt: number): void {
    const until = sentAt + this.options.leaseMs;
    if (until <= this.leaseUntil) return;
    this.leaseUntil = until;
    this.lastReported = null;
    this.problem = null;
    this.armStaleTimer();
    this.options.onLease();
  }

  private armStaleTimer(): void {
    if (this.staleTimer) clearTimeout(this.staleTimer);
    // +1: timers may fire a fraction of a millisecond before performance.now() gets there.
    this.staleTimer = setTimeout(() => this.leaseRanOut(), Math.max(0, this.leaseUntil - performance.now()) + 1);
    this.staleTimer.unref();
  }

  private leaseRanOut(): void {
    if (this.closed) return;
    if (this.fresh()) return this.armStaleTimer();
    debug("lease ran out");
    this.options.onStale();
    this.refresh();
  }

  /** Reports a table problem once per version, not on every poll. */
  private reportOnce(version: number, error: Error): void {
    this.problem = error.message;
    if (this.lastReported === version) return;
    this.lastReported = version;
    debug("%s", error.message);
    this.options.onError(error);
  }
}

function noop(): void {}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    timer.unref();
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}
