import { performance } from "node:perf_hooks";
import type { Command, Redis } from "ioredis";
import createDebug from "debug";
import { SLOT_COUNT, slotOf } from "../slot.js";
import { ArgumentError, GroupUnavailableError } from "../errors.js";
import { groupLabel, type GroupSpec, type SlotTable } from "../topology/table.js";
import { connectedPeer, formatHostPort, sentinelAskOptions } from "../topology/master-address.js";
import { planFor } from "../commands/plan.js";
import type { Arg } from "../commands/split.js";
import { GroupConnection } from "./group-connection.js";
import type { GroupPool } from "./pool.js";
import type { Route } from "./migration-route.js";
import type { WriteCoalescer } from "./write-coalescer.js";
import { keysOf } from "./router.js";
import {
  OffsetHistory,
  isReplicaReadable,
  judgeReplica,
  parseReplicationInfo,
  type ReadFromFunction,
  type ReadFromGroup,
  type ReplicaReadSettings,
} from "./read-from.js";
import { SentinelReplicaFinder, replicasToUse, type SentinelView } from "../topology/sentinel-replicas.js";

const debug = createDebug("shardis:replicas");

/** One replica (listed in the table, or reported by a Sentinel-named group's sentinels) as `client.replicas()` reports it. */
export interface ReplicaStatus {
  readonly group: number;
  readonly address: string;
  /** True when reads may go to it now: connected, replicating, within maxReplicaLagMs. */
  readonly healthy: boolean;
  /** Its lag at the last check, in ms (resolution: replicaCheckMs); null when unknown. */
  readonly lagMs: number | null;
  /** Why it is skipped; null when healthy. */
  readonly reason: string | null;
}

interface Replica {
  readonly address: string;
  readonly connection: GroupConnection;
  /** The last check's verdict (readiness is checked again on every read). */
  healthy: boolean;
  lagMs: number | null;
  reason: string | null;
  /** performance.now() when the check in flight was sent; -1 when none is. */
  checkSentAt: number;
}

interface GroupReads {
  /** The group as a readFrom function sees it. */
  spec: ReadFromGroup;
  master: GroupConnection;
  replicas: Replica[];
  /** The replicas whose last check passed, and their addresses (for a readFrom function). */
  healthy: GroupConnection[];
  healthyAddresses: readonly string[];
  /** Round robin over `healthy`. */
  next: number;
  history: OffsetHistory;
  masterCheckSentAt: number;
  /** For a group given by a Sentinel name: where finding its replicas stands; null for a group given by address. */
  sentinel: SentinelDiscovery | null;
}

/** The replicas of a Sentinel-named group are the ones its sentinels report, asked now and then. */
interface SentinelDiscovery {
  readonly name: string;
  /** "host:port" of the master the sentinels named last; null before they did. */
  master: string | null;
  inFlight: boolean;
  /** performance.now() when they were asked last (-Infinity: never). */
  askedAt: number;
  /** Something hinted at a change since: they are asked again at the next check, SENTINEL_HINT_GAP_MS after the last time. */
  hinted: boolean;
}

/**
 * How often the sentinels are asked for a group's replicas (at least every
 * replicaCheckMs), when nothing hints at a change sooner: a new replication
 * id on the master (a failover), a replica found unhealthy, new sentinels.
 */
const SENTINEL_REFRESH_MS = 5_000;
/** After a hint, at most this soon after the last time (a replica that keeps failing does not flood the sentinels). */
const SENTINEL_HINT_GAP_MS = 1_000;
/** Connect and command timeout per sentinel. */
const SENTINEL_TIMEOUT_MS = 2_000;

/** Opens the connection to one replica of a group (owned by shardis, like the masters'). */
export type ReplicaConnector = (group: ReadFromGroup, address: string) => Redis;

/**
 * Reads from replicas (DESIGN §3.6): one connection per replica of every
 * group, a periodic health check (`INFO replication` on masters and
 * replicas), and `choose`, which turns a command's route into a replica's
 * connection when the command is read-only, keyed, on stable slots, and a
 * healthy replica exists. Built only when `readFrom` is not `'master'`.
 */
export class ReplicaReads {
  private readonly groups = new Map<number, GroupReads>();
  /** By the master connection's index: the groups that have replicas. */
  private byMaster: (GroupReads | undefined)[] = [];
  /** moving[slot] is 1 for a slot in any migration state (those read masters); null when none moves. */
  private moving: Uint8Array | null = null;
  /** Reads that failed on a replica and were sent again: they go to the master. */
  private readonly masterOnly = new WeakSet<Command>();
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  /** The table's sentinels, and the connection that asks them (opened once a Sentinel-named group is in use). */
  private sentinels: readonly string[] = [];
  private finder: SentinelReplicaFinder | null = null;

  constructor(
    private readonly settings: ReplicaReadSettings,
    private readonly pool: GroupPool,
    private readonly open: ReplicaConnector,
    /** Routes a command again from the top (lease gate included). */
    private readonly reroute: (command: Command) => void,
    private readonly coalescer: WriteCoalescer | null,
  ) {}

  /**
   * Follows a new table (after the pool applied it): replicas added are
   * connected, and the connections of replicas removed are returned (close
   * them once drained). The replicas of a Sentinel-named group are found
   * through its sentinels, after this returns.
   */
  apply(table: SlotTable): GroupConnection[] {
    this.moving = movingSlots(table);
    const removed: GroupConnection[] = [];
    const sentinels = table.sentinels ?? [];
    const sentinelsChanged = sentinels.join(",") !== this.sentinels.join(",");
    this.sentinels = sentinels;
    const kept = new Set<number>();
    for (const groupSpec of table.groups) {
      kept.add(groupSpec.id);
      const name = groupSpec.sentinel?.name ?? null;
      let group = this.groups.get(groupSpec.id);
      if (group !== undefined && (group.sentinel?.name ?? null) !== name) {
        // Given by address before and by a Sentinel name now (or the reverse): started over.
        for (const replica of group.replicas) removed.push(replica.connection);
        group = undefined;
      }
      if (group === undefined) {
        group = this.newGroup(groupSpec);
        this.groups.set(groupSpec.id, group);
      }
      group.master = this.pool.get(groupSpec.id);
      if (groupSpec.sentinel === undefined) {
        group.spec = readFromGroup(groupSpec.id, groupSpec.master, groupSpec.replicas ?? []);
        removed.push(...this.setReplicas(group, group.spec.replicas));
      } else if (sentinelsChanged && group.sentinel !== null) {
        group.sentinel.hinted = true;
      }
    }
    for (const [id, group] of this.groups) {
      if (kept.has(id)) continue;
      for (const replica of group.replicas) removed.push(replica.connection);
      this.groups.delete(id);
    }
    if (![...this.groups.values()].some((g) => g.sentinel !== null)) {
      this.finder?.close();
      this.finder = null;
    }
    this.index();
    if (!this.closed) this.startTimer();
    return removed;
  }

  /**
   * Where a routed command goes: `route` (the master's connection, or a
   * migration's route), or the connection of a replica of the same group.
   */
  readonly choose = (route: Route, command: Command): Route => {
    if (!(route instanceof GroupConnection)) return route; // slots on the move: the migration's route
    const group = this.byMaster[route.index];
    if (group === undefined || group.master !== route) return route;
    const args = command.args as Arg[];
    const plan = planFor(command.name, args[0]);
    if (plan === null || (plan.kind !== "keyed" && plan.kind !== "split") || !isReplicaReadable(command.name, args[0])) return route;
    if (this.masterOnly.has(command)) return route;
    if (plan.kind === "keyed" && plan.keyAt >= 0) {
      const key = args[plan.keyAt];
      if (key === undefined || (this.moving !== null && this.moving[slotOf(key)] === 1)) return route;
    } else if (!this.allStable(keysOf(command))) {
      return route;
    }
    const chosen = typeof this.settings.readFrom === "function" ? this.pickWith(this.settings.readFrom, group) : this.pickNext(group);
    if (chosen !== route && chosen instanceof GroupConnection) this.fallBackOnFailure(command);
    return chosen;
  };

  /**
   * The replica connections of a group that may have reads in flight (drained
   * with its master when its slots change). One that is not ready has none:
   * reads go only to ready replicas, and those in flight fail when it closes.
   */
  connectionsOf(id: number): GroupConnection[] {
    return this.groups.get(id)?.replicas.filter((r) => r.connection.redis.status === "ready").map((r) => r.connection) ?? [];
  }

  status(): ReplicaStatus[] {
    const all: ReplicaStatus[] = [];
    for (const group of [...this.groups.values()].sort((a, b) => a.spec.id - b.spec.id)) {
      for (const r of group.replicas) {
        const ready = r.connection.redis.status === "ready";
        all.push({
          group: group.spec.id,
          address: r.address,
          healthy: ready && r.healthy,
          lagMs: r.lagMs,
          reason: ready ? r.reason : `it is not connected (${r.connection.redis.status})`,
        });
      }
    }
    return all;
  }

  /** Connects replicas waiting (lazyConnect) or closed; does not wait for them. */
  connect(): void {
    this.closed = false;
    for (const replica of this.allReplicas()) {
      replica.connection.setClosedByClient(false);
      const status = replica.connection.redis.status;
      if (status === "wait" || status === "end") replica.connection.redis.connect().catch(() => {});
    }
    this.startTimer();
  }

  /** QUIT on every replica connection that is up; the others are closed at once. */
  async quit(): Promise<void> {
    this.stop();
    await Promise.all(this.allReplicas().map((r) => retire(r.connection)));
  }

  disconnect(): void {
    this.stop();
    for (const replica of this.allReplicas()) {
      replica.connection.setClosedByClient(true);
      if (replica.connection.redis.status === "ready") replica.connection.redis.disconnect();
      else void replica.connection.closeNow();
    }
  }

  private stop(): void {
    this.closed = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.finder?.close();
  }

  private newGroup(spec: GroupSpec): GroupReads {
    const sentinel = spec.sentinel === undefined ? null : { name: spec.sentinel.name, master: null, inFlight: false, askedAt: -Infinity, hinted: false };
    return {
      spec: readFromGroup(spec.id, spec.master ?? groupLabel(spec), spec.replicas ?? []),
      master: this.pool.get(spec.id),
      replicas: [],
      healthy: [],
      healthyAddresses: [],
      next: 0,
      history: new OffsetHistory(this.settings.maxLagMs + 2 * this.settings.checkMs),
      masterCheckSentAt: -1,
      sentinel,
    };
  }

  /** Makes `addresses` the group's replicas: new ones are connected; the connections of the others are returned. */
  private setReplicas(group: GroupReads, addresses: readonly string[]): GroupConnection[] {
    const wanted = new Set(addresses);
    const removed = group.replicas.filter((r) => !wanted.has(r.address)).map((r) => r.connection);
    const have = new Map(group.replicas.map((r) => [r.address, r]));
    group.replicas = [...wanted].map((address) => have.get(address) ?? this.openReplica(group, address));
    this.refresh(group);
    return removed;
  }

  /** Rebuilds the look-up of `choose`: by master connection, the groups that have replicas. */
  private index(): void {
    const byMaster: (GroupReads | undefined)[] = [];
    for (const group of this.groups.values()) if (group.replicas.length > 0) byMaster[group.master.index] = group;
    this.byMaster = byMaster;
  }

  /** Asks the sentinels of a Sentinel-named group for its replicas, when due (not while lazyConnect waits). */
  private discover(group: GroupReads, discovery: SentinelDiscovery, now: number): void {
    if (discovery.inFlight || this.closed || group.master.redis.status === "wait") return;
    const since = now - discovery.askedAt;
    if (since < Math.max(this.settings.checkMs, SENTINEL_REFRESH_MS) && !(discovery.hinted && since >= SENTINEL_HINT_GAP_MS)) return;
    discovery.inFlight = true;
    discovery.askedAt = now;
    discovery.hinted = false;
    // Credentials and TLS for the sentinels: those the group's master connection asks them with.
    this.finder ??= new SentinelReplicaFinder(sentinelAskOptions(group.master.redis.options), SENTINEL_TIMEOUT_MS);
    this.finder.setSentinels(this.sentinels);
    this.finder.find(discovery.name).then(
      (view) => {
        discovery.inFlight = false;
        if (!this.closed && this.groups.get(group.spec.id) === group) this.follow(group, discovery, view);
      },
      (error: Error) => {
        discovery.inFlight = false;
        // The replicas known so far stay: their health checks go on.
        debug("group %d (sentinel %s): %s", group.spec.id, discovery.name, error.message);
      },
    );
  }

  /** Takes the replicas a sentinel reported for a Sentinel-named group (never its master). */
  private follow(group: GroupReads, discovery: SentinelDiscovery, view: SentinelView): void {
    const peer = connectedPeer(group.master.redis);
    const connected = (address: string): boolean => group.replicas.some((r) => r.address === address && r.connection.redis.status === "ready");
    const addresses = replicasToUse(view, [view.master, peer === null ? null : formatHostPort(peer)], connected);
    discovery.master = view.master ?? discovery.master;
    const master = discovery.master ?? group.spec.master;
    if (master === group.spec.master && addresses.join(",") === group.spec.replicas.join(",")) return;
    debug("group %d (sentinel %s): master %s, replicas %s", group.spec.id, discovery.name, master, addresses.join(", ") || "none");
    group.spec = readFromGroup(group.spec.id, master, addresses);
    const removed = this.setReplicas(group, addresses);
    this.index();
    this.startTimer();
    // A read sent to a removed replica before gets its reply before the QUIT's.
    for (const connection of removed) void retire(connection);
  }

  private allReplicas(): Replica[] {
    return [...this.groups.values()].flatMap((g) => g.replicas);
  }

  private allStable(keys: readonly Arg[]): boolean {
    if (keys.length === 0) return false; // keyless: the master of the default group answers
    const moving = this.moving;
    if (moving === null) return true;
    for (const key of keys) if (moving[slotOf(key)] === 1) return false;
    return true;
  }

  private pickNext(group: GroupReads): GroupConnection {
    const healthy = group.healthy;
    for (let tries = 0; tries < healthy.length; tries++) {
      const connection = healthy[group.next++ % healthy.length]!;
      if (connection.redis.status === "ready") return connection;
    }
    return group.master;
  }

  private pickWith(readFrom: ReadFromFunction, group: GroupReads): Route {
    let address: unknown;
    try {
      address = readFrom(group.spec, group.healthyAddresses);
    } catch (error) {
      return refusal(group.spec.id, new ArgumentError(`the readFrom function threw for group ${group.spec.id}: ${(error as Error)?.message ?? String(error)}`));
    }
    if (address === group.spec.master) return group.master;
    const replica = group.replicas.find((r) => r.address === address);
    if (replica === undefined) {
      const known = [group.spec.master, ...group.replicas.map((r) => r.address)].join(", ");
      return refusal(group.spec.id, new ArgumentError(`readFrom returned ${JSON.stringify(address)} for group ${group.spec.id}, which is neither its master nor one of its replicas (${known})`));
    }
    // A replica that is not healthy (down, lagging) is skipped, as with the named policies.
    return replica.healthy && replica.connection.redis.status === "ready" ? replica.connection : group.master;
  }

  /**
   * A read sent to a replica that fails because the replica went away (or
   * cannot answer yet: LOADING, MASTERDOWN, ...) is routed again, to the master.
   * Reads are safe to send twice. A timeout is not retried: its time is up.
   */
  private fallBackOnFailure(command: Command): void {
    const reject = command.reject;
    command.reject = (error: Error) => {
      command.reject = reject;
      if (!(error instanceof GroupUnavailableError) && !RETRY_ON_MASTER.test(error.message)) return reject(error);
      debug("read %s failed on a replica (%s); sending it to the master", command.name, error.message);
      this.masterOnly.add(command);
      this.reroute(command);
    };
  }

  private openReplica(group: GroupReads, address: string): Replica {
    const redis = this.open(group.spec, address);
    const connection = new GroupConnection(group.spec.id, address, redis, true, this.coalescer, this.pool.nextConnectionIndex());
    const replica: Replica = { address, connection, healthy: false, lagMs: null, reason: "not checked yet", checkSentAt: -1 };
    redis.on("error", (error: Error) => debug("group %d replica %s: %s", group.spec.id, address, error.message));
    redis.on("ready", () => {
      this.checkMaster(this.groups.get(group.spec.id) ?? group);
      this.checkReplica(this.groups.get(group.spec.id) ?? group, replica);
    });
    redis.on("close", () => {
      replica.checkSentAt = -1;
      this.setVerdict(this.groups.get(group.spec.id) ?? group, replica, false, null, "its connection closed");
    });
    debug("group %d: replica %s", group.spec.id, address);
    return replica;
  }

  private startTimer(): void {
    if (this.timer !== null || ![...this.groups.values()].some((g) => g.replicas.length > 0 || g.sentinel !== null)) return;
    this.timer = setInterval(() => this.checkAll(), this.settings.checkMs);
    this.timer.unref();
    this.checkAll();
  }

  private checkAll(): void {
    const now = performance.now();
    for (const group of this.groups.values()) {
      if (group.sentinel !== null) this.discover(group, group.sentinel, now);
      if (group.replicas.length === 0) continue;
      this.checkMaster(group);
      for (const replica of group.replicas) this.checkReplica(group, replica);
    }
  }

  /** Samples the master's replication offset (the yardstick of its replicas' lag). */
  private checkMaster(group: GroupReads): void {
    const redis = group.master.redis;
    if (redis.status !== "ready" || group.masterCheckSentAt >= 0) return;
    const sentAt = performance.now();
    group.masterCheckSentAt = sentAt;
    redis.info("replication").then(
      (text) => {
        group.masterCheckSentAt = -1;
        const before = group.history.replicationId;
        group.history.record(sentAt, parseReplicationInfo(text));
        // A new replication id: the master was replaced (a failover?); its sentinels are asked again.
        if (group.sentinel !== null && before !== null && group.history.replicationId !== before) group.sentinel.hinted = true;
      },
      () => (group.masterCheckSentAt = -1),
    );
  }

  private checkReplica(group: GroupReads, replica: Replica): void {
    const redis = replica.connection.redis;
    if (redis.status !== "ready") {
      // lazyConnect: replicas connect once their group's master is in use.
      if (redis.status === "wait" && group.master.redis.status !== "wait" && !this.closed) redis.connect().catch(() => {});
      return;
    }
    const now = performance.now();
    if (replica.checkSentAt >= 0) {
      if (now - replica.checkSentAt >= this.settings.checkMs) {
        this.setVerdict(group, replica, false, null, `it did not answer INFO within ${Math.round(now - replica.checkSentAt)} ms`);
      }
      return;
    }
    replica.checkSentAt = now;
    redis.info("replication").then(
      (text) => {
        if (replica.checkSentAt !== now) return; // a reconnect started over
        replica.checkSentAt = -1;
        const verdict = judgeReplica(parseReplicationInfo(text), group.history, performance.now(), this.settings.maxLagMs);
        this.setVerdict(group, replica, verdict.healthy, verdict.lagMs, verdict.reason);
      },
      (error: Error) => {
        if (replica.checkSentAt !== now) return;
        replica.checkSentAt = -1;
        this.setVerdict(group, replica, false, null, `INFO failed: ${error.message}`);
      },
    );
  }

  private setVerdict(group: GroupReads, replica: Replica, healthy: boolean, lagMs: number | null, reason: string | null): void {
    const changed = replica.healthy !== healthy;
    replica.healthy = healthy;
    replica.lagMs = lagMs;
    replica.reason = reason;
    if (changed) {
      debug("group %d replica %s: %s", group.spec.id, replica.address, healthy ? "healthy" : `skipped (${reason})`);
      this.refresh(group);
      // A Sentinel-named group's replica gone bad: its sentinels may know better (a failover, a replica removed).
      if (!healthy && group.sentinel !== null) group.sentinel.hinted = true;
    }
  }

  private refresh(group: GroupReads): void {
    const healthy = group.replicas.filter((r) => r.healthy);
    group.healthy = healthy.map((r) => r.connection);
    group.healthyAddresses = Object.freeze(healthy.map((r) => r.address));
  }
}

/** Replies after which a read is sent again to the master. */
const RETRY_ON_MASTER = /^(LOADING|MASTERDOWN|NOSCRIPT|READONLY)\b/;

function readFromGroup(id: number, master: string, replicas: readonly string[]): ReadFromGroup {
  return Object.freeze({ id, master, replicas: Object.freeze([...replicas]) });
}

function movingSlots(table: SlotTable): Uint8Array | null {
  if (table.migrations.length === 0) return null;
  const moving = new Uint8Array(SLOT_COUNT);
  for (const migration of table.migrations) {
    for (const [from, to] of migration.slots) moving.fill(1, from, to + 1);
  }
  return moving;
}

/** A route that rejects: the readFrom function gave no usable answer. */
function refusal(id: number, error: Error): Route {
  return { id, send: (command: Command) => command.reject(error) };
}

/** Closes a replica connection: QUIT when up (its replies still arrive), at once otherwise. */
export async function retire(connection: GroupConnection): Promise<void> {
  connection.setClosedByClient(true);
  const redis = connection.redis;
  if (redis.status !== "ready") return connection.closeNow();
  await redis.quit().catch(() => redis.disconnect());
}
