// The world of one run and its scheduler: at each step, one enabled action is
// picked at random (weighted) — a tick of the clock, a message delivered on
// one link, a client or migrator step, or a fault. Everything in flight sits
// in a link until a step delivers it, so any interleaving can happen.
import { Rng } from './rng.js';
import { Link } from './net.js';
import { Conn, Server, describeReply, describeRequest, type ConnOwner } from './server.js';
import { Coordinator } from './coordinator.js';
import { SimClient } from './client.js';
import { SimMigrator, type Job } from './migrator.js';
import { Ledger } from './invariant.js';
import { Stats } from './stats.js';
import { ALL_FAULTS, TIMING, type Bug, type Fault, type SimOptions } from './config.js';
import { GROUPS, SLOTS, keysOfSlot, slotOf, type GroupId, type Op, type Write } from './model.js';

export interface Action {
  readonly weight: number;
  /** Does it, and says what it did (for the trace). */
  readonly run: () => string;
}

export function action(weight: number, run: () => string): Action {
  return { weight, run };
}

const INITIAL_CLIENTS = 3;
const NO_FAULTS: Readonly<Record<Fault, boolean>> = {
  LOST_EVENTS: false,
  DELAYS: false,
  FREEZE: false,
  CLIENT_CRASH: false,
  FAILOVER: false,
  MIGRATOR_CRASH: false,
  MIGRATE_ERRORS: false,
};
const OPS_PER_CLIENT = 30;

export class World {
  now = 0;
  readonly rng: Rng;
  readonly servers: Record<GroupId, Server>;
  readonly coordinator: Coordinator;
  readonly clients: SimClient[] = [];
  readonly migrators: SimMigrator[] = [];
  readonly ledger = new Ledger();
  readonly stats = new Stats();
  readonly plan: Job[];
  readonly violations: string[] = [];
  /** Steps describe themselves only when a trace is kept. */
  readonly tracing: boolean;
  /** Clients issue commands until the plan is done; then faults stop and the run settles. */
  issuing = true;
  readonly budget: { freezes: number; clientCrashes: number; clientStarts: number; failovers: number; migratorCrashes: number; stalls: number };
  private readonly bugs: ReadonlySet<Bug>;
  private readonly faults: Record<Fault, boolean>;
  private nextOp = 1;
  private nextClient = 1;

  constructor(options: SimOptions) {
    this.rng = new Rng(options.seed);
    this.tracing = (options.trace ?? 0) > 0;
    const rng = this.rng;
    this.bugs = new Set(options.bugs ?? []);
    const faults = options.faults ?? ALL_FAULTS;
    this.faults = { ...NO_FAULTS };
    for (const f of faults) this.faults[f] = true;
    const errorRate = this.faultOn('MIGRATE_ERRORS') ? rng.pick([0, 0.1, 0.3]) : 0;
    this.servers = { A: new Server('A', rng, errorRate, this.stats), B: new Server('B', rng, errorRate, this.stats) };
    const owner: GroupId[] = ['A', 'A', 'A', 'B'];
    this.coordinator = new Coordinator({ version: 1, owner, migration: null }, () => this.now, (v) => this.publish(v));
    this.plan = makePlan(rng, owner);
    // Fault intensities differ from seed to seed: some runs are calm, some stormy.
    this.budget = {
      freezes: rng.between(0, 4),
      clientCrashes: rng.between(0, 2),
      clientStarts: rng.between(1, 3),
      failovers: rng.between(0, 2),
      migratorCrashes: rng.between(0, 2),
      stalls: rng.pick([0, 3, 10, 30]),
    };
    for (let i = 0; i < INITIAL_CLIENTS; i++) this.startClient();
    this.migrators.push(new SimMigrator('migrator1', this, []));
  }

  bug(name: Bug): boolean {
    return this.bugs.has(name);
  }

  /** The fault was chosen for this run, and the plan is not done yet (the run then settles without faults). */
  faultOn(name: Fault): boolean {
    return this.issuing && this.faults[name];
  }

  violation(message: string): void {
    this.violations.push(message);
  }

  get migrator(): SimMigrator {
    return this.migrators[this.migrators.length - 1]!;
  }

  newOp(client: string): Op {
    const id = this.nextOp++;
    const slot = this.rng.pick(SLOTS);
    const [c, d, l] = keysOfSlot(slot) as [string, string, string];
    const incrC: Write = { kind: 'incr', key: c, item: '' };
    const incrD: Write = { kind: 'incr', key: d, item: '' };
    const push: Write = { kind: 'rpush', key: l, item: `${client}:${id}` };
    const writes = [[incrC], [push], [incrD, push], [incrC, incrD]][this.rng.int(4)]!;
    return { id, slot, writes };
  }

  private startClient(): string {
    const client = new SimClient(`c${this.nextClient++}`, this, OPS_PER_CLIENT);
    this.clients.push(client);
    return `${client.name} starts`;
  }

  private publish(version: number): void {
    for (const c of this.clients) if (c.status !== 'dead') c.events.push(version);
  }

  // Steps made once per world, client, connection and migrator: a step picks among these, no allocation per step.
  private readonly tick = [action(1, () => `tick ${++this.now}`), action(3, () => `tick ${++this.now}`)] as const;
  private readonly resume = action(0.2, () => this.resumeMigrator());
  private readonly migratorDies = action(0.02, () => this.killMigrator(this.migrator));
  /** Most likely in the middle of a call: what it sent is left in the network. */
  private readonly migratorDiesMidCall = action(0.1, () => this.killMigrator(this.migrator));
  private readonly clientStarts = action(0.03, () => (this.budget.clientStarts--, this.startClient()));
  private readonly stalls = action(0.1, () => this.stall());
  private readonly failover = action(0.1, () => this.failOver());
  private readonly catchUp = action(0.3, () => (this.servers[this.coordinator.table.migration!.from].unreplicated.clear(), `the source's replica catches up`));
  /** Each connection with its two delivery steps. */
  private readonly connSteps: { readonly conn: Conn; readonly request: Action; readonly reply: Action }[] = [];

  /** Opens a connection for a client or a migrator (CLIENT SETNAME = the owner's name). */
  connect(owner: ConnOwner, server: Server): Conn {
    const conn = new Conn(owner, server);
    const request = action(1, () => {
      const { request, reply } = server.deliver(conn);
      return this.tracing ? `${conn.requests.name} ${describeRequest(request)} -> ${describeReply(reply)}` : '';
    });
    this.connSteps.push({ conn, request, reply: action(1, () => this.deliverReply(conn)) });
    return conn;
  }

  /** Fault switches for this step, read by every client (worked out once per step). */
  readonly may = { loseEvents: false, freeze: false, crash: false };
  private readonly enabled: Action[] = [];

  /** Every action enabled now (the same array, refilled at each step). */
  actions(): readonly Action[] {
    const out = this.enabled;
    out.length = 0;
    const now = this.now;
    const may = this.may;
    const on = this.issuing ? this.faults : NO_FAULTS;
    may.loseEvents = on.LOST_EVENTS;
    may.freeze = on.FREEZE && this.budget.freezes > 0;
    may.crash = on.CLIENT_CRASH && this.budget.clientCrashes > 0;
    out.push(this.tick[this.issuing ? 1 : 0]);
    for (const { conn, request, reply } of this.connSteps) {
      if (conn.requests.ready(now)) out.push(request);
      if (conn.replies.ready(now) && conn.owner.status !== 'frozen') out.push(reply);
    }
    let alive = 0;
    for (const c of this.clients) {
      if (c.status !== 'dead') alive++;
      c.actions(out);
    }
    const migrator = this.migrator;
    migrator.actions(out);
    if (migrator.status === 'dead') out.push(this.resume);
    else if (on.MIGRATOR_CRASH && this.budget.migratorCrashes > 0 && !migrator.done) out.push(migrator.busy ? this.migratorDiesMidCall : this.migratorDies);
    if (this.issuing && this.budget.clientStarts > 0 && alive < INITIAL_CLIENTS + 1) out.push(this.clientStarts);
    if (on.DELAYS && this.budget.stalls > 0) out.push(this.stalls);
    if (on.FAILOVER && this.budget.failovers > 0 && this.resurrectable().length > 0) out.push(this.failover, this.catchUp);
    return out;
  }

  /** Keys of the slots being migrated that the source deleted and its replica may not have seen deleted. */
  private resurrectable(): string[] {
    const m = this.coordinator.table.migration;
    if (m === null || m.state !== 'migrating' || this.migrator.phase.t === 'verify') return [];
    const source = this.servers[m.from];
    if (source.unreplicated.size === 0) return [];
    return [...source.unreplicated.keys()].filter((k) => m.slots.includes(slotOf(k)) && !source.data.has(k));
  }

  private failOver(): string {
    this.budget.failovers--;
    this.stats.failovers++;
    const source = this.servers[this.coordinator.table.migration!.from];
    const keys = this.rng.subset(this.resurrectable());
    source.resurrect(keys);
    return `FAILOVER of ${source.id}: its new master missed the deletes of ${keys.join(' ')}, which come back`;
  }

  private deliverReply(conn: Conn): string {
    const { request, reply, then } = conn.replies.shift();
    const dead = conn.owner.status === 'dead';
    if (!dead) then(reply);
    return this.tracing ? `${conn.replies.name}: ${describeReply(reply)} to ${describeRequest(request)}${dead ? ` dropped (${conn.name} is dead)` : ''}` : '';
  }

  /** The migrator dies, or is cut off and loses its lock: what it sent may still land much later. */
  private killMigrator(migrator: SimMigrator): string {
    this.budget.migratorCrashes--;
    this.stats.migratorCrashes++;
    migrator.status = 'dead';
    const until = this.now + this.rng.between(0, 8 * TIMING.leaseMs);
    for (const g of GROUPS) migrator.conns[g].requests.stalledUntil = until;
    return `${migrator.name} DIES in phase ${migrator.phase.t}; what it sent may land until ${until}`;
  }

  private resumeMigrator(): string {
    const names = this.migrators.map((m) => m.name);
    const next = new SimMigrator(`migrator${this.migrators.length + 1}`, this, names);
    this.migrators.push(next);
    return `${next.name} takes the lock and resumes in phase ${next.phase.t}`;
  }

  private stall(): string {
    this.budget.stalls--;
    this.stats.stalls++;
    const links: Link<unknown>[] = [];
    for (const server of Object.values(this.servers)) for (const conn of server.conns) links.push(conn.requests, conn.replies);
    for (const c of this.clients) links.push(c.toCoordinator, c.fromCoordinator, c.events);
    const busy = links.filter((l) => l.queue.length > 0);
    const link = this.rng.pick(busy.length > 0 ? busy : links);
    link.stalledUntil = this.now + this.rng.between(1, 2 * TIMING.leaseMs);
    return `link ${link.name} STALLS until ${link.stalledUntil} (${link.queue.length} queued)`;
  }

  /** The plan is done: no more commands or faults; stalled links and frozen clients come back. */
  windDown(): void {
    this.issuing = false;
    for (const server of Object.values(this.servers)) {
      for (const conn of server.conns) conn.requests.stalledUntil = conn.replies.stalledUntil = 0;
    }
    for (const c of this.clients) {
      c.toCoordinator.stalledUntil = c.fromCoordinator.stalledUntil = c.events.stalledUntil = 0;
      c.frozenUntil = 0;
    }
  }

  /** Nothing is left in flight or held anywhere. */
  settled(): boolean {
    for (const server of Object.values(this.servers)) {
      for (const conn of server.conns) if (conn.requests.queue.length + conn.replies.queue.length > 0) return false;
    }
    return this.clients.every((c) => c.settled);
  }
}

/** Two to four moves, often back and forth (A→B then part of it B→A). */
function makePlan(rng: Rng, initial: readonly GroupId[]): Job[] {
  const owner = [...initial];
  const jobs: Job[] = [];
  const count = rng.between(2, 4);
  for (let i = 0; i < count; i++) {
    const last = jobs[jobs.length - 1];
    let job: Job;
    if (last !== undefined && rng.chance(0.6)) {
      job = { slots: rng.subset(last.slots), from: last.to, to: last.from };
    } else {
      const from = rng.pick(GROUPS.filter((g) => owner.includes(g)));
      job = { slots: rng.subset(SLOTS.filter((s) => owner[s] === from)), from, to: from === 'A' ? 'B' : 'A' };
    }
    for (const s of job.slots) owner[s] = job.to;
    jobs.push(job);
  }
  return jobs;
}
