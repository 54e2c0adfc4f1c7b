// One ShardedRedis instance following the coordinator (DESIGN §4) and routing
// through migrations (DESIGN §5, client column): the sim's version of
// src/topology/coordinator.ts (confirm, lease, ack after drain),
// src/client/lease-gate.ts (hold past the lease) and
// src/client/migration-route.ts (hold in preparing, MIGRATE then run on the target).
import { Link } from './net.js';
import { keysOfOp, routeOf, slotChanged, describeTable, type GroupId, type Op, type Route, type Table } from './model.js';
import type { Conn, Reply } from './server.js';
import type { ConfirmReply, ConfirmRequest } from './coordinator.js';
import { TIMING } from './config.js';
import { action, type Action, type World } from './world.js';

const { leaseMs: LEASE_MS, refreshMs: REFRESH_MS, waitMs: WAIT_MS } = TIMING;

/** A command routed under `table` and not finished yet (its requests may be anywhere in the network). */
interface Cmd {
  readonly op: Op;
  readonly table: Table;
  readonly route: Route;
  readonly deadline: number;
}

/** A command waiting for a lease (gated) or for the table to leave preparing (held). */
interface Waiting {
  readonly op: Op;
  readonly deadline: number;
}

export class SimClient {
  status: 'running' | 'frozen' | 'dead' = 'running';
  frozenUntil = 0;
  /** The table routed by, once one was confirmed. */
  table: Table | null = null;
  /** The version reported to the coordinator as applied (and drained). */
  acked = 0;
  leaseUntil = -Infinity;
  private confirming = false;
  private wantConfirm = true;
  private lastConfirmAt = -Infinity;
  private readonly gated: Waiting[] = [];
  private readonly held: Waiting[] = [];
  private readonly inflight = new Set<Cmd>();
  private readonly retrying: Cmd[] = [];
  /** Per applied version, the commands it waits for before it may be acked. */
  private readonly drains: { version: number; cmds: Set<Cmd> }[] = [];
  readonly conns: Record<GroupId, Conn>;
  readonly toCoordinator: Link<ConfirmRequest>;
  readonly fromCoordinator: Link<ConfirmReply>;
  readonly events: Link<number>;

  constructor(
    readonly name: string,
    private readonly world: World,
    private opsLeft: number,
  ) {
    this.conns = { A: world.connect(this, world.servers.A), B: world.connect(this, world.servers.B) };
    this.toCoordinator = new Link(`${name}>coordinator`);
    this.fromCoordinator = new Link(`coordinator>${name}`);
    this.events = new Link(`events>${name}`);
  }

  /** Nothing is running, held or in flight: the run may end. */
  get settled(): boolean {
    return this.status === 'dead' || (this.status === 'running' && this.gated.length + this.held.length + this.inflight.size + this.retrying.length === 0);
  }

  // The client's steps, made once (a step picks among these, no allocation per step).
  private readonly steps = {
    thaw: action(1, () => this.thaw()),
    confirmReply: action(1, () => this.onConfirmReply(this.fromCoordinator.shift())),
    event: action(1, () => (this.events.shift(), this.refresh(), `${this.name} gets an event: confirm soon`)),
    confirm: action(1, () => this.sendConfirm()),
    issue: action(0.6, () => this.issue()),
    retry: action(0.5, () => this.retry()),
    expire: action(1, () => this.expire()),
    freeze: action(0.02, () => this.freeze()),
    crash: action(0.01, () => this.crash()),
    // Network steps of its links to the coordinator (they go on whatever the client does).
    deliverConfirm: action(1, () => this.deliverConfirm()),
    dropReply: action(1, () => (this.fromCoordinator.shift(), `reply to dead ${this.name} dropped`)),
    loseEvent: action(0.3, () => (this.world.stats.lostEvents++, `event v${this.events.shift()} to ${this.name} LOST`)),
  };

  actions(out: Action[]): void {
    const w = this.world;
    const now = w.now;
    const steps = this.steps;
    if (this.toCoordinator.ready(now)) out.push(steps.deliverConfirm);
    if (this.events.queue.length > 0 && (w.may.loseEvents || this.status === 'dead')) out.push(steps.loseEvent);
    if (this.status === 'dead' && this.fromCoordinator.ready(now)) out.push(steps.dropReply);
    if (this.status === 'frozen') {
      if (now >= this.frozenUntil) out.push(steps.thaw);
      return;
    }
    if (this.status !== 'running') return;
    if (this.fromCoordinator.ready(now)) out.push(steps.confirmReply);
    if (this.events.ready(now)) out.push(steps.event);
    if (!this.confirming && (this.wantConfirm || now >= this.lastConfirmAt + REFRESH_MS)) out.push(steps.confirm);
    if (this.opsLeft > 0 && w.issuing) out.push(steps.issue);
    if (this.retrying.length > 0) out.push(steps.retry);
    if (expired(this.gated, now) || expired(this.held, now)) out.push(steps.expire);
    if (w.may.freeze) out.push(steps.freeze);
    if (w.may.crash) out.push(steps.crash);
  }

  // --- following the coordinator (DESIGN §4) ---

  private leaseValid(): boolean {
    return this.table !== null && this.world.now < this.leaseUntil;
  }

  private refresh(): void {
    this.wantConfirm = true;
  }

  /** The coordinator runs this client's next confirm (its script is one atomic step). */
  private deliverConfirm(): string {
    const request = this.toCoordinator.shift();
    const coordinator = this.world.coordinator;
    const reply = coordinator.handle(request);
    if (reply !== null) this.fromCoordinator.push(reply);
    return `coordinator runs ${request.kind} of ${this.name} (applied v${request.applied}, sent at ${request.sentAt}): table v${coordinator.table.version}`;
  }

  private sendConfirm(): string {
    const now = this.world.now;
    this.confirming = true;
    this.wantConfirm = false;
    this.lastConfirmAt = now;
    // The confirm script registers and reads in one step; BUG_REGISTER reads now and registers once answered.
    const kind = this.world.bug('BUG_REGISTER') ? 'read' : 'confirm';
    this.toCoordinator.push({ kind, client: this.name, applied: this.acked, sentAt: now });
    return `${this.name} sends ${kind} (applied v${this.acked})`;
  }

  private onConfirmReply(reply: ConfirmReply): string {
    const w = this.world;
    this.confirming = false;
    const installed = reply.table.version > (this.table?.version ?? 0);
    if (installed) this.install(reply.table);
    if (w.bug('BUG_REGISTER')) this.toCoordinator.push({ kind: 'register', client: this.name, applied: this.acked, sentAt: w.now });
    // The lease counts from when the confirm was sent: the coordinator stamped `at` later than that.
    const from = w.bug('BUG_LEASE_FROM_ANSWER') ? w.now : reply.sentAt;
    this.leaseUntil = Math.max(this.leaseUntil, from + LEASE_MS);
    // The gate opens only if this confirmation renewed the lease (an old answer may come too late).
    const released = this.leaseValid() ? this.gated.splice(0) : [];
    for (const x of released) this.route(x.op, x.deadline);
    return `${this.name} confirmed ${installed ? `and applied ${describeTable(reply.table)}` : `v${reply.table.version}`}, lease until ${this.leaseUntil}${released.length > 0 ? `, releases ${released.length} held` : ''}`;
  }

  /** Routes by `table` from now; its ack waits until commands routed earlier to a changed slot have finished. */
  private install(table: Table): void {
    const previous = this.table;
    this.table = table;
    const drain = { version: table.version, cmds: new Set<Cmd>() };
    this.drains.push(drain);
    if (previous !== null && !this.world.bug('BUG_NODRAIN')) {
      for (const c of this.inflight) if (slotChanged(previous, table, c.op.slot)) drain.cmds.add(c);
    }
    // Commands held in preparing go back through the router, which routes by the new table.
    for (const x of this.held.splice(0)) this.submit(x.op, x.deadline);
    this.checkAck();
  }

  /** Acks the newest applied version whose drain, and every older one's, is done. */
  private checkAck(): void {
    let acked = this.acked;
    while (this.drains.length > 0 && this.drains[0]!.cmds.size === 0) acked = Math.max(acked, this.drains.shift()!.version);
    if (acked > this.acked) {
      this.acked = acked;
      this.refresh();
    }
  }

  // --- commands ---

  private issue(): string {
    const op = this.world.newOp(this.name);
    this.opsLeft--;
    this.world.ledger.issue(op);
    this.submit(op, this.world.now + WAIT_MS);
    return `${this.name} issues op#${op.id} on slot ${op.slot} (${op.writes.map((x) => `${x.kind} ${x.key}`).join(', ')})`;
  }

  /** The lease gate: past the lease a command waits for a fresh confirmation. */
  private submit(op: Op, deadline: number): void {
    if (!this.leaseValid()) {
      this.world.stats.gated++;
      this.gated.push({ op, deadline });
      this.refresh();
      return;
    }
    this.route(op, deadline);
  }

  private route(op: Op, deadline: number): void {
    const table = this.table!;
    const route = routeOf(table, op.slot, this.world.bug('BUG_NOHOLD'));
    if (route.kind === 'hold') {
      this.world.stats.held++;
      this.held.push({ op, deadline });
      return;
    }
    const cmd: Cmd = { op, table, route, deadline };
    this.inflight.add(cmd);
    if (route.kind === 'direct') this.sendWrite(cmd, route.group);
    else this.sendMigrate(cmd);
  }

  private sendWrite(cmd: Cmd, group: GroupId): void {
    this.conns[group].send({ t: 'write', op: cmd.op }, (reply) => {
      this.finish(cmd);
      if (reply.error === null) this.world.ledger.ack(cmd.op);
      else this.world.ledger.fail();
    });
  }

  /** migrating: MIGRATE the command's keys (deduplicated, KEYS form) from the source to the target first. */
  private sendMigrate(cmd: Cmd): void {
    if (cmd.route.kind !== 'migrate') throw new Error('not a migrating route');
    const { from, to } = cmd.route;
    const replace = this.world.bug('REPLACE');
    this.conns[from].send({ t: 'migrate', keys: keysOfOp(cmd.op), to: this.world.servers[to], replace }, (reply) => this.onMigrated(cmd, reply));
  }

  private onMigrated(cmd: Cmd, reply: Reply): void {
    if (cmd.route.kind !== 'migrate') throw new Error('not a migrating route');
    if (reply.error === 'KILLED') return this.failed(cmd);
    if (reply.error === 'IOERR') {
      // Transient: retried after a backoff (during which it is on no connection), if its time allows.
      if (this.world.now >= cmd.deadline) return this.failed(cmd);
      this.finish(cmd);
      this.retrying.push(cmd);
      return;
    }
    if (!this.mayGoOn(cmd)) return this.reroute(cmd);
    const busy = reply.busy ?? [];
    if (busy.length === 0) return this.sendWrite(cmd, cmd.route.to);
    // BUSYKEY: the target's copy is the newer one; delete the source's.
    this.conns[cmd.route.from].send({ t: 'del', keys: busy }, (r) => {
      if (cmd.route.kind !== 'migrate') throw new Error('not a migrating route');
      if (r.error !== null) return this.failed(cmd);
      if (!this.mayGoOn(cmd)) return this.reroute(cmd);
      this.sendWrite(cmd, cmd.route.to);
    });
  }

  /**
   * Each further request of a command on a migrating slot (the DEL of the
   * BUSYKEY copies, then the command on the target) goes out only under a
   * valid lease and the very table it was routed by: a client away for a
   * while may have been waited out and fenced, and the slot may have moved
   * on, or away and back (the same state in a newer table does not vouch
   * for a MIGRATE done under the old one).
   */
  private mayGoOn(cmd: Cmd): boolean {
    return this.world.bug('STALE_SECOND_LEG') || (this.leaseValid() && cmd.table === this.table);
  }

  /** The command goes back through the gate and the router (its MIGRATE left the keys where they may be). */
  private reroute(cmd: Cmd): void {
    this.world.stats.rerouted++;
    this.finish(cmd);
    this.submit(cmd.op, cmd.deadline);
  }

  private retry(): string {
    const cmd = this.retrying.shift()!;
    if (this.world.bug('STALE_RETRY')) {
      this.inflight.add(cmd);
      this.sendMigrate(cmd);
      return `${this.name} retries op#${cmd.op.id}'s MIGRATE on its old route`;
    }
    this.submit(cmd.op, cmd.deadline);
    return `${this.name} routes op#${cmd.op.id} again after a MIGRATE error`;
  }

  private expire(): string {
    const now = this.world.now;
    let n = 0;
    for (const list of [this.gated, this.held]) {
      for (let i = list.length - 1; i >= 0; i--) {
        if (list[i]!.deadline > now) continue;
        list.splice(i, 1);
        this.world.ledger.fail();
        n++;
      }
    }
    return `${this.name}: ${n} held commands time out (StaleTopologyError, nothing sent)`;
  }

  private failed(cmd: Cmd): void {
    this.finish(cmd);
    this.world.ledger.fail();
  }

  private finish(cmd: Cmd): void {
    this.inflight.delete(cmd);
    for (const d of this.drains) d.cmds.delete(cmd);
    this.checkAck();
  }

  // --- faults ---

  private freeze(): string {
    this.world.budget.freezes--;
    this.world.stats.freezes++;
    this.status = 'frozen';
    const rng = this.world.rng;
    this.frozenUntil = this.world.now + rng.between(1, 3 * LEASE_MS);
    // Half the time it is cut off from the network instead: what it sent arrives when the partition heals (TCP retransmits).
    if (rng.chance(0.5)) {
      this.world.stats.partitions++;
      const until = this.frozenUntil + rng.between(0, 2 * LEASE_MS);
      for (const link of [this.conns.A.requests, this.conns.B.requests, this.toCoordinator]) link.stalledUntil = Math.max(link.stalledUntil, until);
      return `${this.name} is PARTITIONED until ${until}, frozen until ${this.frozenUntil} (${this.inflight.size} commands in flight)`;
    }
    return `${this.name} FREEZES until ${this.frozenUntil} (${this.inflight.size} commands in flight)`;
  }

  private thaw(): string {
    this.status = 'running';
    return `${this.name} thaws (lease ${this.leaseValid() ? 'still valid' : 'ran out'})`;
  }

  private crash(): string {
    this.world.budget.clientCrashes--;
    this.world.stats.clientCrashes++;
    this.status = 'dead';
    return `${this.name} DIES (${this.inflight.size} commands in flight)`;
  }
}

function expired(list: readonly Waiting[], now: number): boolean {
  for (const x of list) if (x.deadline <= now) return true;
  return false;
}
