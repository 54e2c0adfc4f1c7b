import { EventEmitter } from "eventemitter3";
import type { Redis } from "ioredis";
import createDebug from "debug";
import { SLOT_COUNT } from "../slot.js";
import { GroupUnavailableError, TopologyError } from "../errors.js";
import { groupLabel, type GroupSpec, type SlotTable } from "../topology/table.js";
import { masterResolver } from "../topology/master-address.js";
import { DEFAULT_MAX_QUEUED_COMMANDS, GroupConnection } from "./group-connection.js";
import { MigrationRoute, type MigrationHooks, type Route } from "./migration-route.js";
import type { WriteCoalescer } from "./write-coalescer.js";

const debug = createDebug("shardis:pool");

/** Creates (or hands over) the ioredis connection of a group. */
export interface ConnectionSource {
  /** `sentinels`: the table's, for a group given by a Sentinel name. */
  connect(group: GroupSpec, sentinels: readonly string[]): { redis: Redis; owned: boolean };
}

export interface PoolEvents {
  ready: () => void;
  error: (error: Error) => void;
  end: () => void;
}

/** Aggregate status of all group connections, in ioredis' words. */
export type PoolStatus = "wait" | "connecting" | "ready" | "end";


/**
 * The group connections of one client, and the slot → connection routes of
 * the current table. A new table is applied whole: routes are rebuilt, new
 * groups connected; connections are reused by group id.
 */
export class GroupPool extends EventEmitter<PoolEvents> {
  /**
   * routes[slot]: the connection of the group that owns the slot, or, for a
   * slot being prepared or migrated, the route of its migration.
   */
  routes: Route[] = [];
  /** The migration routes of the current table (retired when it is replaced). */
  private migrationRoutes: MigrationRoute[] = [];
  /** Where keyless commands go: the first group of the table. */
  defaultGroup!: GroupConnection;
  /** The group owning every slot, when one does: split commands then go out whole. */
  soleOwner: GroupConnection | null = null;
  private readonly connections = new Map<number, GroupConnection>();
  private readyEmitted = false;
  /** Dense numbers for connections (never reused, so a retired one keeps its own). */
  private nextIndex = 0;
  private endEmitted = false;
  /** Set by quit()/disconnect(), cleared by connect(). */
  private closed = false;

  constructor(
    private readonly source: ConnectionSource,
    private readonly coalescer: WriteCoalescer | null,
    /** For tables with migrations in progress (clients that follow a coordinator). */
    private readonly migrationHooks: MigrationHooks | null = null,
    /** maxQueuedCommands: how many commands may wait for each group that is not connected. */
    private readonly maxQueued: number = DEFAULT_MAX_QUEUED_COMMANDS,
  ) {
    super();
  }

  /**
   * Routes by `table` from now on. Connections of groups the table no longer
   * has are taken out of the pool and returned: close them once drained.
   */
  apply(table: SlotTable): GroupConnection[] {
    for (const spec of table.groups) {
      if (!this.connections.has(spec.id)) this.connections.set(spec.id, this.open(spec, table.sentinels ?? []));
    }
    const kept = new Set(table.groups.map((g) => g.id));
    const removed = [...this.connections.values()].filter((c) => !kept.has(c.id));
    for (const connection of removed) this.connections.delete(connection.id);
    // Wrapped clients may all be ready already: say so once listeners are attached.
    process.nextTick(() => this.checkReady());
    const routes = new Array<Route>(SLOT_COUNT);
    for (let slot = 0; slot < SLOT_COUNT; slot++) routes[slot] = this.connections.get(table.owner[slot]!)!;
    const retiring = this.migrationRoutes;
    this.migrationRoutes = this.migrationRoutesOf(table);
    for (const route of this.migrationRoutes) {
      for (const [from, to] of route.migration.slots) for (let slot = from; slot <= to; slot++) routes[slot] = route;
    }
    this.routes = routes;
    // Held commands go back through the router, which routes by the new table now.
    for (const route of retiring) route.retire();
    this.defaultGroup = this.connections.get(table.groups[0]!.id)!;
    const first = routes[0];
    this.soleOwner = first instanceof GroupConnection && routes.every((c) => c === first) ? first : null;
    debug("routes: %d groups%s", table.groups.length, removed.length > 0 ? `, ${removed.length} removed` : "");
    return removed;
  }

  /** Pending migrations route as before; preparing and migrating ones get a route of their own. */
  private migrationRoutesOf(table: SlotTable): MigrationRoute[] {
    const active = table.migrations.filter((m) => m.state !== "pending");
    if (active.length === 0) return [];
    const hooks = this.migrationHooks;
    if (hooks === null) throw new TopologyError("a table with migrations in progress needs a client that follows a coordinator");
    return active.map((migration) => {
      const target = table.groups.find((g) => g.id === migration.to)!;
      return new MigrationRoute(
        migration,
        this.connections.get(migration.from)!,
        this.connections.get(migration.to)!,
        // A Sentinel-named target: its master now, as this client's connection to it sees it.
        masterResolver(target, table.sentinels, () => this.connections.get(migration.to)?.redis),
        hooks,
      );
    });
  }

  /** Closes a connection taken out of the pool (after its drain). */
  async retire(connection: GroupConnection): Promise<void> {
    connection.setClosedByClient(true);
    if (!connection.owned) return;
    if (connection.redis.status !== "ready") return connection.closeNow();
    await connection.redis.quit().catch(() => connection.redis.disconnect());
  }

  /** A fresh dense index, for connections outside the pool that share its look-up arrays (replicas). */
  nextConnectionIndex(): number {
    return this.nextIndex++;
  }

  get(id: number): GroupConnection {
    const connection = this.connections.get(id);
    if (!connection) {
      throw new TopologyError(`unknown group ${id}; known groups: ${[...this.connections.keys()].join(", ")}`);
    }
    return connection;
  }

  all(): GroupConnection[] {
    return [...this.connections.values()];
  }

  /** True after quit()/disconnect(), until connect(). */
  get isClosed(): boolean {
    return this.closed;
  }

  get status(): PoolStatus {
    if (this.closed) return "end";
    const statuses = this.all().map((c) => c.redis.status);
    if (statuses.every((s) => s === "ready")) return "ready";
    if (statuses.every((s) => s === "end")) return "end";
    if (statuses.every((s) => s === "wait")) return "wait";
    return "connecting";
  }

  /** Connects every group still waiting (lazyConnect); resolves when all are ready. */
  async connect(): Promise<void> {
    this.closed = false;
    this.endEmitted = false;
    for (const c of this.all()) c.setClosedByClient(false);
    const results = await Promise.allSettled(
      this.all().map(async (c) => {
        if (c.redis.status === "wait" || c.redis.status === "end") await c.redis.connect();
        else if (c.redis.status !== "ready") await waitReady(c);
      }),
    );
    const failed = results.flatMap((r, i) => (r.status === "rejected" ? [{ group: this.all()[i]!, reason: r.reason as Error }] : []));
    if (failed.length > 0) {
      const { group, reason } = failed[0]!;
      const more = failed.length > 1 ? ` (and ${failed.length - 1} more groups)` : "";
      throw group.unavailable(`could not connect${more}: ${group.reasonOf(reason)}`, reason);
    }
  }

  /**
   * QUIT on every owned connection that is up (its pending replies still
   * arrive); one that is down or reconnecting is closed at once, failing its
   * queued commands, rather than waiting for a server that may not return.
   * Wrapped connections are left open, but this client stops using them.
   */
  async quit(): Promise<void> {
    this.markClosed();
    await Promise.all(
      this.all()
        .filter((c) => c.owned)
        .map(async (c) => {
          if (c.redis.status !== "ready") return c.closeNow();
          const ended = new Promise<void>((resolve) => c.redis.once("end", () => resolve()));
          await c.redis.quit().catch(() => c.redis.disconnect());
          await ended;
        }),
    );
    this.checkEnd();
  }

  /** Closes every owned connection at once; commands in flight fail. */
  disconnect(): void {
    this.markClosed();
    for (const c of this.all()) {
      if (c.owned && c.redis.status === "ready") c.redis.disconnect();
      else if (c.owned) void c.closeNow();
    }
    this.checkEnd();
  }

  private markClosed(): void {
    this.closed = true;
    for (const c of this.all()) c.setClosedByClient(true);
  }

  private open(spec: GroupSpec, sentinels: readonly string[]): GroupConnection {
    const { redis, owned } = this.source.connect(spec, sentinels);
    const connection = new GroupConnection(spec.id, groupLabel(spec), redis, owned, this.coalescer, this.nextIndex++, this.maxQueued);
    redis.on("ready", () => this.checkReady());
    // Like ioredis, "ready" is emitted again once every group is back after a drop.
    redis.on("close", () => (this.readyEmitted = false));
    redis.on("end", () => this.checkEnd());
    redis.on("error", (error: Error) => this.onGroupError(connection, error));
    debug("group %d: %s (%s)", spec.id, groupLabel(spec), owned ? "owned" : "wrapped");
    return connection;
  }

  private onGroupError(connection: GroupConnection, error: Error): void {
    debug("group %d error: %s", connection.id, error.message);
    const translated = connection.translate(error);
    const groupError = translated instanceof GroupUnavailableError ? translated : connection.unavailable(error.message, error);
    if (this.listenerCount("error") > 0) this.emit("error", groupError);
  }

  private checkReady(): void {
    if (this.status === "ready" && !this.readyEmitted) {
      this.readyEmitted = true;
      this.emit("ready");
    }
  }

  private checkEnd(): void {
    // Ended: closed by this client, or every owned connection gave up on its own.
    const owned = this.all().filter((c) => c.owned);
    if (this.closed || (owned.length > 0 && owned.every((c) => c.redis.status === "end"))) {
      this.readyEmitted = false;
      if (!this.endEmitted) {
        this.endEmitted = true;
        this.emit("end");
      }
    }
  }
}

function waitReady(connection: GroupConnection): Promise<void> {
  return new Promise((resolve, reject) => {
    const redis = connection.redis;
    const onReady = () => {
      cleanup();
      resolve();
    };
    const onEnd = () => {
      cleanup();
      reject(new GroupUnavailableError(connection.id, connection.address, "the connection ended before it was ready"));
    };
    const onError = (error: Error) => {
      cleanup();
      reject(error);
    };
    const cleanup = () => {
      redis.off("ready", onReady);
      redis.off("end", onEnd);
      redis.off("error", onError);
    };
    redis.once("ready", onReady);
    redis.once("end", onEnd);
    redis.once("error", onError);
  });
}
