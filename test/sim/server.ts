// A Redis master of one group, reduced to what the protocol touches: INCR and
// RPUSH (alone or several in one MULTI), MIGRATE ... KEYS (with or without
// REPLACE), DEL, SCAN and CLIENT KILL. Commands run one at a time, when a
// scheduler step delivers them from a connection.
import { Link } from './net.js';
import type { Rng } from './rng.js';
import type { GroupId, Op } from './model.js';
import type { Stats } from './stats.js';

export type Value = number | string[];

export type Request =
  | { readonly t: 'write'; readonly op: Op }
  /** MIGRATE host port "" db timeout [REPLACE] KEYS ...: the keys must be distinct (callers de-duplicate). */
  | { readonly t: 'migrate'; readonly keys: readonly string[]; readonly to: Server; readonly replace: boolean }
  | { readonly t: 'del'; readonly keys: readonly string[] }
  /** SCAN in key order from after `cursor` (a key present throughout a pass is returned at least once). */
  | { readonly t: 'scan'; readonly cursor: string; readonly count: number }
  | { readonly t: 'kill'; readonly names: readonly string[] };

export interface Reply {
  /** IOERR: a MIGRATE timed out part way; KILLED: the connection was closed before the command ran. */
  readonly error: 'IOERR' | 'KILLED' | null;
  /** MIGRATE: the keys answered BUSYKEY (present on the target, left on the source). */
  readonly busy?: readonly string[];
  /** SCAN: the keys of this batch, and where the next one starts (null: the pass is over). */
  readonly keys?: readonly string[];
  readonly next?: string | null;
}

interface Sent {
  readonly request: Request;
  readonly then: (reply: Reply) => void;
}

interface Answer {
  readonly request: Request;
  readonly reply: Reply;
  readonly then: (reply: Reply) => void;
}

/** Who holds a connection: a client or a migrator. */
export interface ConnOwner {
  readonly name: string;
  readonly status: 'running' | 'frozen' | 'dead';
}

/** One connection to one server, named like `CLIENT SETNAME shardis:<clientId>`. */
export class Conn {
  readonly requests: Link<Sent>;
  readonly replies: Link<Answer>;
  readonly name: string;

  constructor(
    readonly owner: ConnOwner,
    readonly server: Server,
  ) {
    const name = (this.name = owner.name);
    this.requests = new Link(`${name}>${server.id}`);
    this.replies = new Link(`${server.id}>${name}`);
    server.conns.push(this);
  }

  send(request: Request, then: (reply: Reply) => void): void {
    this.requests.push({ request, then });
  }
}

export class Server {
  readonly data = new Map<string, Value>();
  readonly conns: Conn[] = [];
  /**
   * Copies removed by MIGRATE or DEL that the replica may not have yet: a
   * failover brings them back (asynchronous replication). Other writes are
   * taken as replicated: losing them is Redis's failover guarantee, not ours.
   */
  readonly unreplicated = new Map<string, Value>();

  constructor(
    readonly id: GroupId,
    private readonly rng: Rng,
    /** Probability that a MIGRATE times out part way (IOERR after moving some keys). */
    private readonly migrateErrorRate: number,
    private readonly stats: Stats,
  ) {}

  /** Runs the head of a connection's requests and queues its reply (a step of the scheduler). */
  deliver(conn: Conn): { request: Request; reply: Reply } {
    const { request, then } = conn.requests.shift();
    const reply = this.execute(request);
    conn.replies.push({ request, reply, then });
    return { request, reply };
  }

  private execute(request: Request): Reply {
    switch (request.t) {
      case 'write':
        for (const w of request.op.writes) {
          const value = this.data.get(w.key);
          if (w.kind === 'incr') this.data.set(w.key, (typeof value === 'number' ? value : 0) + 1);
          else this.data.set(w.key, [...(Array.isArray(value) ? value : []), w.item]);
        }
        return { error: null };
      case 'migrate':
        return this.migrate(request.keys, request.to, request.replace);
      case 'del':
        for (const key of request.keys) this.remove(key);
        return { error: null };
      case 'scan': {
        const keys = [...this.data.keys()].filter((k) => k > request.cursor).sort();
        const batch = keys.slice(0, request.count);
        return { error: null, keys: batch, next: keys.length > request.count ? batch[batch.length - 1]! : null };
      }
      case 'kill':
        for (const conn of this.conns) {
          if (!request.names.includes(conn.name)) continue;
          this.stats.fencedRequests += conn.requests.queue.length;
          while (conn.requests.queue.length > 0) conn.replies.push({ ...conn.requests.shift(), reply: { error: 'KILLED' } });
        }
        return { error: null };
    }
  }

  /**
   * MIGRATE without REPLACE moves each key the target does not have and
   * answers BUSYKEY for the others, which stay on the source; it is not
   * all-or-nothing. A timeout may stop it part way, the key it was on
   * possibly restored on the target but not yet deleted here (on both sides).
   */
  private migrate(keys: readonly string[], target: Server, replace: boolean): Reply {
    const stopAt = this.rng.chance(this.migrateErrorRate) ? this.rng.int(keys.length) : -1;
    const busy: string[] = [];
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      const value = this.data.get(key);
      if (value === undefined) continue;
      if (target.data.has(key) && !replace) {
        busy.push(key);
        continue;
      }
      if (i === stopAt) {
        if (this.rng.chance(0.5)) target.data.set(key, copy(value));
        this.stats.migrateErrors++;
        return { error: 'IOERR' };
      }
      target.data.set(key, copy(value));
      this.remove(key);
    }
    if (stopAt >= 0) this.stats.migrateErrors++;
    if (busy.length > 0) this.stats.busyKeys++;
    return stopAt >= 0 ? { error: 'IOERR' } : { error: null, busy };
  }

  private remove(key: string): void {
    const value = this.data.get(key);
    if (value === undefined) return;
    this.data.delete(key);
    this.unreplicated.set(key, value);
  }

  /** A failover to a replica that missed some deletes: those copies come back. */
  resurrect(keys: readonly string[]): void {
    for (const key of keys) {
      const value = this.unreplicated.get(key);
      if (value !== undefined && !this.data.has(key)) this.data.set(key, copy(value));
    }
    this.unreplicated.clear();
  }
}

function copy(value: Value): Value {
  return Array.isArray(value) ? [...value] : value;
}

export function describeRequest(request: Request): string {
  switch (request.t) {
    case 'write':
      return `op#${request.op.id} ${request.op.writes.map((w) => `${w.kind.toUpperCase()} ${w.key}${w.kind === 'rpush' ? ` ${w.item}` : ''}`).join('; ')}`;
    case 'migrate':
      return `MIGRATE>${request.to.id}${request.replace ? ' REPLACE' : ''} KEYS ${request.keys.join(' ')}`;
    case 'del':
      return `DEL ${request.keys.join(' ')}`;
    case 'scan':
      return `SCAN after '${request.cursor}'`;
    case 'kill':
      return `CLIENT KILL ${request.names.join(' ') || '(none)'}`;
  }
}

export function describeReply(reply: Reply): string {
  if (reply.error !== null) return reply.error;
  if (reply.busy !== undefined && reply.busy.length > 0) return `BUSYKEY ${reply.busy.join(' ')}`;
  if (reply.keys !== undefined) return `[${reply.keys.join(' ')}]${reply.next === null ? ' end' : ''}`;
  return 'OK';
}
