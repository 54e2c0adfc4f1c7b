import { performance } from "node:perf_hooks";
import { EventEmitter } from "eventemitter3";
import { ScanStream, type Command, type Redis, type ChainableCommander, type ScanStreamOptions } from "ioredis";
import Commander from "ioredis/built/utils/Commander";
import createDebug from "debug";
import { ArgumentError, CommandNotAllowedError, StaleTopologyError, TopologyError } from "../errors.js";
import type { SlotTable } from "../topology/table.js";
import { changedSlots, groupsToDrain } from "../topology/diff.js";
import { CoordinatorTopology } from "../topology/coordinator.js";
import { LeaseGate } from "./lease-gate.js";
import { GroupPool, type PoolStatus } from "./pool.js";
import { WriteCoalescer } from "./write-coalescer.js";
import type { Route } from "./migration-route.js";
import { GroupConnection } from "./group-connection.js";
import { BlockingCommands } from "./blocking.js";
import { routeCommand, type RouterOptions } from "./router.js";
import { ShardedPipeline, ShardedMulti } from "./pipeline.js";
import { ShardedScanStream } from "./scan-stream.js";
import { ReplicaReads, type ReplicaStatus } from "./replica-reads.js";
import { armUntil } from "./deadline.js";
import type { FromGroupsOptions, ShardedRedisOptions } from "./options.js";
import { SETUP, setupFromClients, setupFromOptions, type ClientSetup } from "./setup.js";

const debug = createDebug("shardis:client");

/** Events of a ShardedRedis. */
export interface ShardedRedisEvents {
  /** Every group connection is ready. */
  ready: () => void;
  /** A group connection failed (a GroupUnavailableError naming the group). */
  error: (error: Error) => void;
  /** Every connection shardis owns has ended. */
  end: () => void;
  /** A new slot table was applied (versions: 0 before the first). */
  topology: (change: { from: number; to: number }) => void;
  /** The lease on the slot table ran out; commands wait for a fresh confirmation (or are served, with onStaleTopology: 'serve'). */
  stale: () => void;
}

/** One group as `groups()` lists it. */
export interface GroupHandle {
  readonly id: number;
  readonly address: string;
  readonly redis: Redis;
}

/**
 * A client for many Redis servers ("groups") that behaves like one ioredis
 * client: every command is routed by its keys' slot to the group that owns
 * it; MGET/MSET/DEL/EXISTS/TOUCH/UNLINK are split over groups and merged;
 * atomic multi-key commands must keep their keys in one slot.
 */
export class ShardedRedis extends Commander<{ type: "default" }> {
  /** This client's id, used to name its connections on every server. */
  readonly clientId: string;
  private readonly pool: GroupPool;
  private readonly router: RouterOptions;
  private readonly events = new EventEmitter<ShardedRedisEvents>();
  private table: SlotTable | null;
  /** Set when following a coordinator: the table's source, and the gate that enforces its lease. */
  private readonly topology: CoordinatorTopology | null = null;
  private readonly gate: LeaseGate | null = null;
  private readonly staleWaitMs: number = 0;
  /** redisOptions.commandTimeout (0: none): a command held by the lease gate keeps the time it has left. */
  private readonly commandTimeout: number = 0;
  /** With a coordinator: blocking commands in flight, unblocked when their slot starts to move. */
  private readonly blocking: BlockingCommands | null = null;
  private readonly dispatch: (group: Route, command: Command) => void = (group, command) => group.send(command);
  /** With readFrom other than 'master': the replica connections and where reads go. */
  private readonly replicaReads: ReplicaReads | null = null;
  private readonly route = (command: Command) => routeCommand(this.pool, this.router, command, this.dispatch);

  constructor(options: ShardedRedisOptions) {
    super();
    const setup = (options as { [SETUP]?: ClientSetup } | undefined)?.[SETUP] ?? setupFromOptions(options);
    this.clientId = setup.clientId;
    this.options = { keyPrefix: setup.keyPrefix, showFriendlyErrorStack: setup.showFriendlyErrorStack };
    this.router = setup.router;
    const migration = setup.follow && {
      ...setup.follow.migration,
      reroute: (command: Command) => void this.sendCommand(command),
      leaseHolds: () => this.gate?.open() ?? true,
    };
    const coalescer = setup.enableAutoPipelining ? new WriteCoalescer() : null;
    this.pool = new GroupPool(setup.connections, coalescer, migration ?? null, setup.maxQueuedCommands);
    this.commandTimeout = setup.commandTimeout ?? 0;
    this.table = setup.table;
    if (setup.reads) {
      this.replicaReads = new ReplicaReads(setup.reads.settings, this.pool, setup.reads.open, (command) => void this.sendCommand(command), coalescer);
    }
    if (setup.table !== null) {
      this.pool.apply(setup.table);
      this.replicaReads?.apply(setup.table);
    }
    this.forwardPoolEvents();
    if (setup.follow) {
      const follow = setup.follow;
      const topology = new CoordinatorTopology({
        connection: follow.connection(),
        cluster: follow.cluster,
        clientId: this.clientId,
        leaseMs: follow.leaseMs,
        refreshMs: follow.refreshMs,
        apply: (table) => this.applyTable(table),
        onLease: () => this.gate?.release(),
        onStale: () => this.leaseRanOut(),
        onError: (error) => this.emitError(error),
      });
      this.topology = topology;
      const blocking = new BlockingCommands(this.clientId, (command) => void this.sendCommand(command));
      this.blocking = blocking;
      this.dispatch = (group, command) => {
        if (group instanceof GroupConnection && BlockingCommands.blocks(command)) blocking.send(group, command);
        else group.send(command);
      };
      // commandTimeout is honoured while held, too: a command waits at most the shorter of the two.
      this.gate = new LeaseGate(topology, follow.policy, Math.min(follow.staleWaitMs, this.commandTimeout || Infinity));
      this.staleWaitMs = follow.staleWaitMs;
      if (!setup.lazyConnect) topology.start();
      debug("client %s: following cluster %s", this.clientId, follow.cluster);
    } else {
      debug("client %s: %d groups", this.clientId, setup.table!.groups.length);
    }
    if (this.replicaReads !== null) {
      // Only with readFrom: with 'master' (the default) nothing is added to a command's way.
      const reads = this.replicaReads;
      const toGroup = this.dispatch;
      this.dispatch = (group, command) => toGroup(reads.choose(group, command), command);
      this.router = { ...this.router, readRoute: reads.choose };
    }
  }

  /**
   * Wraps ioredis clients you already have, one per group: `{ 1: redisA, 2: redisB }`.
   * They are not closed by quit() unless `closeWrappedClients` is set.
   */
  static fromGroups(clients: Record<number, Redis> | ReadonlyMap<number, Redis>, options: FromGroupsOptions = {}): ShardedRedis {
    return new ShardedRedis({ [SETUP]: setupFromClients(clients, options) } as unknown as ShardedRedisOptions);
  }

  /** @ignore Routes an ioredis Command; every command method ends here. */
  override sendCommand(command: Command): Promise<unknown> {
    const gate = this.gate;
    if (gate === null || gate.open()) routeCommand(this.pool, this.router, command, this.dispatch);
    else if (this.commandTimeout > 0) {
      // Released with the time it has left: its commandTimeout counts from now, not from the release.
      const deadline = performance.now() + this.commandTimeout;
      gate.hold(() => {
        armUntil(command, deadline, this.commandTimeout, this.pool);
        this.route(command);
      }, (error) => command.reject(error));
    } else gate.hold(() => this.route(command), (error) => command.reject(error));
    return command.promise as Promise<unknown>;
  }

  /** A pipeline over any mix of groups; exec() answers in your order, like ioredis. */
  pipeline(commands?: unknown[][]): ChainableCommander {
    const pipeline = new ShardedPipeline(this, this.pool, this.router, this.gate);
    if (commands) pipeline.addBatch(commands);
    return pipeline as unknown as ChainableCommander;
  }

  /**
   * A MULTI/EXEC transaction. All its keys must share one slot (use a hash
   * tag); otherwise exec() rejects with a CrossSlotError and nothing is sent.
   */
  multi(options: { pipeline: false }): Promise<"OK">;
  multi(): ChainableCommander;
  multi(options: { pipeline: true }): ChainableCommander;
  multi(commands?: unknown[][]): ChainableCommander;
  multi(arg?: unknown[][] | { pipeline: boolean }): ChainableCommander | Promise<"OK"> {
    if (arg && !Array.isArray(arg) && arg.pipeline === false) {
      return Promise.reject(new ArgumentError("multi({ pipeline: false }) is not supported on a sharded client: its commands could reach several groups. Use multi() and exec()"));
    }
    const multi = new ShardedMulti(this, this.pool, this.router, this.gate);
    if (Array.isArray(arg)) multi.addBatch(arg);
    return multi as unknown as ChainableCommander;
  }

  /** Every key of every group, once each (SCAN, group after group). */
  scanStream(options?: ScanStreamOptions & { dedupe?: boolean }): ShardedScanStream {
    return new ShardedScanStream((cursor, args) => this.scan(cursor, ...(args as [])), () => this.pool.all().length, options);
  }

  /** As scanStream, with keys as Buffers. */
  scanBufferStream(options?: ScanStreamOptions & { dedupe?: boolean }): ShardedScanStream {
    return new ShardedScanStream((cursor, args) => this.scanBuffer(cursor, ...(args as [])), () => this.pool.all().length, options);
  }

  sscanStream(key: string, options?: ScanStreamOptions): ScanStream {
    return this.keyScanStream("sscan", key, options);
  }
  sscanBufferStream(key: string, options?: ScanStreamOptions): ScanStream {
    return this.keyScanStream("sscanBuffer", key, options);
  }
  hscanStream(key: string, options?: ScanStreamOptions): ScanStream {
    return this.keyScanStream("hscan", key, options);
  }
  hscanBufferStream(key: string, options?: ScanStreamOptions): ScanStream {
    return this.keyScanStream("hscanBuffer", key, options);
  }
  zscanStream(key: string, options?: ScanStreamOptions): ScanStream {
    return this.keyScanStream("zscan", key, options);
  }
  zscanBufferStream(key: string, options?: ScanStreamOptions): ScanStream {
    return this.keyScanStream("zscanBuffer", key, options);
  }

  private keyScanStream(command: string, key: string, options: ScanStreamOptions = {}): ScanStream {
    return new ScanStream({ objectMode: true, key, redis: this, command, ...options });
  }

  /** Refused: MONITOR takes over a connection. Monitor one group with client.group(id).monitor(). */
  monitor(): Promise<never> {
    return Promise.reject(new CommandNotAllowedError("monitor", "it takes over the connection; use client.group(id).monitor() on the group to watch"));
  }

  /** The raw ioredis connection of one group (for commands shardis does not route). */
  group(id: number): Redis {
    return this.pool.get(id).redis;
  }

  /** Every group with its raw ioredis connection, in ascending id order. */
  groups(): GroupHandle[] {
    return this.pool
      .all()
      .sort((a, b) => a.id - b.id)
      .map((c) => ({ id: c.id, address: c.address, redis: c.redis }));
  }

  /**
   * Every replica listed in the table (or found through a Sentinel-named
   * group's Sentinels), with whether reads may go to it now
   * and why not (empty unless readFrom is other than 'master').
   */
  replicas(): ReplicaStatus[] {
    return this.replicaReads?.status() ?? [];
  }

  /**
   * The slot table in use. With a coordinator, there is none until the first
   * confirmation: await connect() first (this throws a TopologyError before).
   */
  get slotTable(): SlotTable {
    if (this.table === null) throw new TopologyError("no slot table yet: the coordinator has not confirmed one; await client.connect() first");
    return this.table;
  }

  /** "wait" (lazyConnect, nothing sent yet), "connecting", "ready" (all groups), or "end". */
  get status(): PoolStatus {
    if (this.table === null && !this.pool.isClosed) return this.topology!.isStarted ? "connecting" : "wait";
    return this.pool.status;
  }

  /**
   * Connects every group (with a coordinator, after the first table is
   * confirmed); resolves when all are ready, rejects naming what failed.
   */
  async connect(): Promise<void> {
    if (this.topology !== null) {
      this.topology.refresh();
      await this.firstTable();
    }
    this.replicaReads?.connect(); // not waited for: reads use the master until a replica is healthy
    return this.pool.connect();
  }

  /**
   * Sends QUIT to every connection shardis owns and waits for the replies;
   * with a coordinator, then removes this client from its registry.
   */
  override async quit(): Promise<"OK"> {
    this.gate?.close(closedError());
    await Promise.all([this.pool.quit(), this.replicaReads?.quit()]);
    await this.topology?.close(true);
    return "OK";
  }

  /** Closes every connection shardis owns at once; commands in flight fail. */
  disconnect(): void {
    this.gate?.close(closedError());
    // Commands in flight may still land: the registry entry stays until its lease runs out.
    void this.topology?.close(false);
    this.pool.disconnect();
    this.replicaReads?.disconnect();
  }

  on<E extends keyof ShardedRedisEvents>(event: E, listener: ShardedRedisEvents[E]): this {
    this.events.on(event, listener as (...args: unknown[]) => void);
    return this;
  }

  once<E extends keyof ShardedRedisEvents>(event: E, listener: ShardedRedisEvents[E]): this {
    this.events.once(event, listener as (...args: unknown[]) => void);
    return this;
  }

  off<E extends keyof ShardedRedisEvents>(event: E, listener?: ShardedRedisEvents[E]): this {
    this.events.off(event, listener as ((...args: unknown[]) => void) | undefined);
    return this;
  }

  /** Same as on() (Node EventEmitter name, used by events.once and friends). */
  addListener<E extends keyof ShardedRedisEvents>(event: E, listener: ShardedRedisEvents[E]): this {
    return this.on(event, listener);
  }

  /** Same as off(). */
  removeListener<E extends keyof ShardedRedisEvents>(event: E, listener?: ShardedRedisEvents[E]): this {
    return this.off(event, listener);
  }

  removeAllListeners(event?: keyof ShardedRedisEvents): this {
    this.events.removeAllListeners(event);
    return this;
  }

  listenerCount(event: keyof ShardedRedisEvents): number {
    return this.events.listenerCount(event);
  }

  /**
   * Routes by `next` from now on; resolves once every command routed under
   * the previous table to a slot that changed has finished (the drain that
   * must come before the ack, DESIGN §4). Removed groups are closed then.
   */
  private async applyTable(next: SlotTable): Promise<void> {
    const previous = this.table;
    const connections = new Map(this.pool.all().map((c) => [c.id, c]));
    const removed = this.pool.apply(next);
    const removedReplicas = this.replicaReads?.apply(next) ?? [];
    this.table = next;
    this.events.emit("topology", { from: previous?.version ?? 0, to: next.version });
    if (previous === null) return;
    const changed = changedSlots(previous, next);
    // A BLPOP blocked on a slot that moves would hold up the drain until its timeout: unblock it (it is sent again).
    void this.blocking?.unblock(changed);
    // A group's replicas too: a read routed there under the old table has finished before the ack.
    const draining = groupsToDrain(previous, next, changed).flatMap((id) => [connections.get(id), ...(this.replicaReads?.connectionsOf(id) ?? [])]);
    await Promise.all(draining.map((c) => c?.drain()));
    await Promise.all([...removed, ...removedReplicas].map((c) => this.pool.retire(c)));
  }

  /**
   * The lease ran out: commands routed while a group was down and still
   * waiting in its offline queue are failed, not sent after a reconnect
   * (the migrator may by then have moved their slots; DESIGN §5).
   */
  private leaseRanOut(): void {
    if (this.gate?.open() === true) {
      this.events.emit("stale"); // 'serve': keep going, queued commands included
      return;
    }
    const version = this.table?.version ?? 0;
    for (const group of this.pool.all()) {
      const failed = group.failQueued(
        new StaleTopologyError(
          `group ${group.id} was unreachable when the lease on slot table version ${version} ran out; the command was not sent (it may be retried)`,
          version,
        ),
      );
      if (failed > 0) debug("lease ran out: %d queued commands for group %d failed", failed, group.id);
    }
    this.events.emit("stale");
  }

  private firstTable(): Promise<void> {
    const topology = this.topology!;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new StaleTopologyError(`no slot table confirmed by the coordinator within ${this.staleWaitMs} ms (${topology.problem ?? "no answer"})`, 0));
      }, this.staleWaitMs);
      timer.unref();
      void topology.firstTable().then(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private forwardPoolEvents(): void {
    this.pool.on("ready", () => this.events.emit("ready"));
    this.pool.on("end", () => this.events.emit("end"));
    this.pool.on("error", (error) => this.emitError(error));
  }

  private emitError(error: Error): void {
    if (this.events.listenerCount("error") > 0) this.events.emit("error", error);
    else debug("unhandled error event: %s", error.message);
  }
}

function closedError(): Error {
  // ioredis' words for a command on a client that was closed.
  return new Error("Connection is closed.");
}
