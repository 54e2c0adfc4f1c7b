import { randomBytes } from "node:crypto";
import { EventEmitter } from "eventemitter3";
import IORedis, { ScanStream, type Command, type Redis, type RedisOptions, type ChainableCommander, type ScanStreamOptions } from "ioredis";
import Commander from "ioredis/built/utils/Commander";
import createDebug from "debug";
import { ArgumentError, CommandNotAllowedError, TopologyError } from "../errors.js";
import { evenSlotRanges, parseAddress, validateTable, type GroupSpec, type SlotTable } from "../topology/table.js";
import { StaticTopology, type TopologySource } from "../topology/source.js";
import { GroupPool, type ConnectionSource, type PoolStatus } from "./pool.js";
import { WriteCoalescer } from "./write-coalescer.js";
import type { GroupConnection } from "./group-connection.js";
import { routeCommand, type RouterOptions } from "./router.js";
import { ShardedPipeline, ShardedMulti } from "./pipeline.js";
import { ShardedScanStream } from "./scan-stream.js";
import type { FromGroupsOptions, ShardedRedisOptions } from "./options.js";

const debug = createDebug("shardis:client");

/** Events of a ShardedRedis. */
export interface ShardedRedisEvents {
  /** Every group connection is ready. */
  ready: () => void;
  /** A group connection failed (a GroupUnavailableError naming the group). */
  error: (error: Error) => void;
  /** Every connection shardis owns has ended. */
  end: () => void;
  /** A new slot table was applied. */
  topology: (change: { from: number; to: number }) => void;
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
  private readonly topologySource: TopologySource;
  private readonly router: RouterOptions;
  private readonly events = new EventEmitter<ShardedRedisEvents>();
  private readonly stopFollowingTopology: () => void;
  private table: SlotTable;
  private readonly dispatch = (group: GroupConnection, command: Command) => group.send(command);

  constructor(options: ShardedRedisOptions) {
    super();
    const setup = (options as { [SETUP]?: ClientSetup } | undefined)?.[SETUP] ?? setupFromOptions(options);
    this.clientId = setup.clientId;
    this.options = { keyPrefix: setup.keyPrefix, showFriendlyErrorStack: setup.showFriendlyErrorStack };
    this.router = setup.router;
    this.pool = new GroupPool(setup.connections, setup.enableAutoPipelining ? new WriteCoalescer() : null);
    this.topologySource = new StaticTopology(setup.table);
    this.table = setup.table;
    this.pool.apply(setup.table);
    this.stopFollowingTopology = this.topologySource.subscribe((next) => this.applyTable(next));
    this.forwardPoolEvents();
    debug("client %s: %d groups", this.clientId, setup.table.groups.length);
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
    routeCommand(this.pool, this.router, command, this.dispatch);
    return command.promise as Promise<unknown>;
  }

  /** A pipeline over any mix of groups; exec() answers in your order, like ioredis. */
  pipeline(commands?: unknown[][]): ChainableCommander {
    const pipeline = new ShardedPipeline(this, this.pool, this.router);
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
    const multi = new ShardedMulti(this, this.pool, this.router);
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

  /** The slot table in use. */
  get slotTable(): SlotTable {
    return this.table;
  }

  /** "wait" (lazyConnect, nothing sent yet), "connecting", "ready" (all groups), or "end". */
  get status(): PoolStatus {
    return this.pool.status;
  }

  /** Connects every group; resolves when all are ready, rejects naming a group that failed. */
  connect(): Promise<void> {
    return this.pool.connect();
  }

  /** Sends QUIT to every connection shardis owns and waits for the replies. */
  override async quit(): Promise<"OK"> {
    this.stopFollowingTopology();
    await this.topologySource.close();
    await this.pool.quit();
    return "OK";
  }

  /** Closes every connection shardis owns at once; commands in flight fail. */
  disconnect(): void {
    this.stopFollowingTopology();
    void this.topologySource.close();
    this.pool.disconnect();
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

  removeAllListeners(event?: keyof ShardedRedisEvents): this {
    this.events.removeAllListeners(event);
    return this;
  }

  listenerCount(event: keyof ShardedRedisEvents): number {
    return this.events.listenerCount(event);
  }

  private applyTable(next: SlotTable): void {
    const from = this.table.version;
    this.pool.apply(next);
    this.table = next;
    this.events.emit("topology", { from, to: next.version });
  }

  private forwardPoolEvents(): void {
    this.pool.on("ready", () => this.events.emit("ready"));
    this.pool.on("end", () => this.events.emit("end"));
    this.pool.on("error", (error) => {
      if (this.events.listenerCount("error") > 0) this.events.emit("error", error);
      else debug("unhandled error event: %s", error.message);
    });
  }
}

// fromGroups hands the constructor a ready setup under this key.
const SETUP = Symbol("shardis.setup");

/** Everything a client needs, whichever way it was built. */
interface ClientSetup {
  table: SlotTable;
  connections: ConnectionSource;
  clientId: string;
  keyPrefix: string | undefined;
  showFriendlyErrorStack: boolean | undefined;
  enableAutoPipelining: boolean;
  router: RouterOptions;
}

function setupFromOptions(options: ShardedRedisOptions): ClientSetup {
  if (typeof options !== "object" || options === null) {
    throw new ArgumentError("new ShardedRedis(options) needs an options object with groups");
  }
  const groups: unknown = options.groups;
  if (!Array.isArray(groups)) throw new TopologyError("groups must be a non-empty array of { id, master, replicas? }");
  const table = validateTable({ groups, slots: options.slots ?? evenSlotRanges(groups.map((g: GroupSpec) => g?.id)) });
  const redisOptions: RedisOptions = { ...options.redisOptions };
  // A connectionName given in redisOptions becomes the client id (connections are always named shardis:<clientId>).
  const clientId = options.clientId ?? redisOptions.connectionName ?? randomClientId();
  return {
    table,
    connections: { connect: (group) => ({ redis: new IORedis(ownedConnectionOptions(group, redisOptions, clientId)), owned: true }) },
    clientId,
    keyPrefix: redisOptions.keyPrefix,
    showFriendlyErrorStack: redisOptions.showFriendlyErrorStack,
    enableAutoPipelining: redisOptions.enableAutoPipelining === true,
    router: routerOptions(options),
  };
}

function setupFromClients(clients: Record<number, Redis> | ReadonlyMap<number, Redis>, options: FromGroupsOptions): ClientSetup {
  const entries: [unknown, unknown][] = clients instanceof Map ? [...clients.entries()] : Object.entries(clients ?? {});
  if (entries.length === 0) throw new TopologyError("fromGroups needs at least one ioredis client, e.g. { 1: redisA, 2: redisB }");
  const byId = new Map<number, Redis>();
  for (const [key, redis] of entries) {
    const id = Number(key);
    if (!Number.isSafeInteger(id) || id < 1) throw new TopologyError(`group ids must be positive integers, got ${JSON.stringify(key)}`);
    if (!isIoredis(redis)) throw new TopologyError(`group ${id} must be an ioredis client (new Redis(...))`);
    byId.set(id, redis);
  }
  const ids = [...byId.keys()].sort((a, b) => a - b);
  const prefixes = new Set(ids.map((id) => byId.get(id)!.options.keyPrefix ?? ""));
  if (options.keyPrefix === undefined && prefixes.size > 1) {
    throw new TopologyError(
      `the wrapped clients have different keyPrefix options (${[...prefixes].map((p) => JSON.stringify(p)).join(", ")}); give one keyPrefix in the options`,
    );
  }
  const groups: GroupSpec[] = ids.map((id) => {
    const { host = "127.0.0.1", port = 6379 } = byId.get(id)!.options;
    return { id, master: `${host.includes(":") ? `[${host}]` : host}:${port}` };
  });
  const owned = options.closeWrappedClients === true;
  return {
    table: validateTable({ groups, slots: options.slots ?? evenSlotRanges(ids) }),
    connections: { connect: (group) => ({ redis: byId.get(group.id)!, owned }) },
    clientId: options.clientId ?? randomClientId(),
    keyPrefix: (options.keyPrefix ?? [...prefixes][0]) || undefined,
    showFriendlyErrorStack: options.showFriendlyErrorStack,
    enableAutoPipelining: options.enableAutoPipelining === true,
    router: routerOptions(options),
  };
}

function routerOptions(options: { allowKeys?: boolean; allowFlush?: boolean }): RouterOptions {
  return { allowKeys: options.allowKeys === true, allowFlush: options.allowFlush === true };
}

function randomClientId(): string {
  return randomBytes(6).toString("hex");
}

function ownedConnectionOptions(group: GroupSpec, redisOptions: RedisOptions, clientId: string): RedisOptions {
  const { host, port } = parseAddress(group.master, `group ${group.id}: master`);
  return {
    ...redisOptions,
    host,
    port,
    // The sharded client applies the prefix (slots are computed on prefixed keys).
    keyPrefix: undefined,
    // Batching is done by the sharded client across groups (WriteCoalescer).
    enableAutoPipelining: false,
    // A command is never resent behind the router's back (DESIGN §5).
    autoResendUnfulfilledCommands: false,
    // The migrator finds a client's connections by this name (DESIGN §5).
    connectionName: `shardis:${clientId}`,
  };
}

function isIoredis(value: unknown): value is Redis {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as Redis).sendCommand === "function" &&
    typeof (value as Redis).options === "object" &&
    !(value as { isCluster?: boolean }).isCluster
  );
}
