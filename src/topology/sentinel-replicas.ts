// The replicas of a Sentinel-named group, as its sentinels report them
// (`SENTINEL REPLICAS <name>`), for reads from replicas (DESIGN §3.6). The
// sentinels only say which servers to connect to: whether a replica may serve
// reads is judged by replica-reads.ts from the replica itself (INFO
// replication, the same checks as for the replicas a table lists).
import type { Redis } from "ioredis";
import { formatHostPort, oneShotSentinelConnection, type HostPort, type SentinelAskOptions } from "./master-address.js";
import { parseAddress } from "./table.js";

/** One replica in a sentinel's `SENTINEL REPLICAS` reply. */
export interface SentinelReplica {
  /** "host:port" (IPv6 in brackets). */
  readonly address: string;
  /** The sentinel sees it down (`s_down`, `o_down`) or has no link to it (`disconnected`). */
  readonly down: boolean;
}

/** What one sentinel says of a master name. */
export interface SentinelView {
  /** "host:port" of the master, or null when the sentinel names none. */
  readonly master: string | null;
  readonly replicas: readonly SentinelReplica[];
}

const DOWN_FLAGS = /(^|,)(s_down|o_down|disconnected)(,|$)/;

/** Parses a `SENTINEL REPLICAS` reply (an array of flat field/value arrays); entries without ip and port are left out. */
export function parseSentinelReplicas(reply: unknown): SentinelReplica[] {
  if (!Array.isArray(reply)) return [];
  const replicas: SentinelReplica[] = [];
  for (const entry of reply) {
    if (!Array.isArray(entry)) continue;
    const fields = new Map<string, string>();
    for (let i = 0; i + 1 < entry.length; i += 2) fields.set(String(entry[i]), String(entry[i + 1]));
    const ip = fields.get("ip");
    const port = Number(fields.get("port"));
    if (ip === undefined || ip === "" || !Number.isInteger(port) || port < 1 || port > 65535) continue;
    replicas.push({ address: formatHostPort({ host: ip, port }), down: DOWN_FLAGS.test(fields.get("flags") ?? "") });
  }
  return replicas;
}

/**
 * The replica addresses to keep connections to, sorted: every replica the
 * sentinel lists, except the group's master (by any of the `masters`
 * addresses: a sentinel may list a promoted replica for a moment) and except
 * one it sees down, unless `connected(address)` (a connection that works is
 * not dropped on a sentinel's word: the health checks decide about it).
 */
export function replicasToUse(view: SentinelView, masters: readonly (string | null)[], connected: (address: string) => boolean): string[] {
  const excluded = new Set(masters.filter((m): m is string => m !== null));
  const kept = new Set<string>();
  for (const replica of view.replicas) {
    if (excluded.has(replica.address)) continue;
    if (replica.down && !connected(replica.address)) continue;
    kept.add(replica.address);
  }
  return [...kept].sort();
}

/**
 * Asks the sentinels of a table about master names, over one connection to
 * one sentinel at a time (kept while it works; on a failure, the next
 * sentinel is tried, each at most once per question).
 */
export class SentinelReplicaFinder {
  private sentinels: HostPort[] = [];
  private key = "";
  /** Index in `sentinels` of the one asked next. */
  private current = 0;
  private connection: { redis: Redis; ready: Promise<void> } | null = null;
  /** Grows with every close(): a question asked before gives up instead of opening a new connection. */
  private generation = 0;

  constructor(
    private readonly options: SentinelAskOptions,
    private readonly timeoutMs: number,
  ) {}

  /** Follows the table's sentinels; returns true when they changed (the connection is then closed). */
  setSentinels(addresses: readonly string[]): boolean {
    const key = addresses.join(",");
    if (key === this.key) return false;
    this.close();
    this.key = key;
    this.sentinels = addresses.map((s, i) => parseAddress(s, `sentinels[${i}]`));
    this.current = 0;
    return true;
  }

  /** The master and replicas of `name`, from the first sentinel that answers; rejects when none does. */
  async find(name: string): Promise<SentinelView> {
    const reasons: string[] = [];
    const generation = this.generation;
    for (let tries = 0; tries < this.sentinels.length; tries++) {
      if (this.generation !== generation) throw new Error(`closed while asking the sentinels about "${name}"`);
      const sentinel = this.sentinels[this.current % this.sentinels.length]!;
      try {
        const redis = await this.connect(sentinel);
        const [master, replicas] = await Promise.all([redis.call("SENTINEL", "GET-MASTER-ADDR-BY-NAME", name), redis.call("SENTINEL", "REPLICAS", name)]);
        return { master: masterOf(master), replicas: parseSentinelReplicas(replicas) };
      } catch (error) {
        reasons.push(`${formatHostPort(sentinel)}: ${(error as Error).message}`);
        this.next(sentinel);
      }
    }
    throw new Error(`no sentinel answered about "${name}" (${reasons.join("; ") || "no sentinels"})`);
  }

  /** Closes the connection; questions in flight fail (a later one opens a new connection). */
  close(): void {
    this.generation++;
    this.drop();
  }

  private drop(): void {
    this.connection?.redis.disconnect();
    this.connection = null;
  }

  private connect(sentinel: HostPort): Promise<Redis> {
    const open = this.connection;
    if (open !== null && open.redis.status !== "end" && open.redis.status !== "close") return open.ready.then(() => open.redis);
    const redis = oneShotSentinelConnection(sentinel, this.options, this.timeoutMs);
    const connection = { redis, ready: redis.connect() };
    this.connection = connection;
    return connection.ready.then(() => redis);
  }

  /** Drops the connection to `failed` (unless another question already moved on) and turns to the next sentinel. */
  private next(failed: HostPort): void {
    if (this.sentinels[this.current % this.sentinels.length] !== failed) return;
    this.drop();
    this.current = (this.current + 1) % this.sentinels.length;
  }
}

function masterOf(reply: unknown): string | null {
  if (!Array.isArray(reply) || reply.length !== 2) return null;
  const port = Number(reply[1]);
  return Number.isInteger(port) && port > 0 ? formatHostPort({ host: String(reply[0]), port }) : null;
}
