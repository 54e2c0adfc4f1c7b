// The migrator (DESIGN §5, migrator column), one job at a time: pending →
// preparing → (CLIENT KILL of the clients it waited out) → migrating (SCAN
// the source, MIGRATE the slots' keys in batches) → verify → stable. Its
// progress lives in the coordinator, so a migrator that dies is resumed by
// another. The sim's version of the migrator in src/admin/migration/.
import { slotOf, describeTable, type GroupId, type Table } from './model.js';
import type { Conn, Reply, Request } from './server.js';
import { TIMING } from './config.js';
import { action, type Action, type World } from './world.js';

/** One move of the plan. */
export interface Job {
  readonly slots: readonly number[];
  readonly from: GroupId;
  readonly to: GroupId;
}

type Phase =
  | { readonly t: 'fence-predecessors'; readonly names: readonly string[] }
  | { readonly t: 'begin' }
  | { readonly t: 'wait'; readonly state: 'pending' | 'preparing' }
  | { readonly t: 'scan'; readonly cursor: string }
  | { readonly t: 'batch'; readonly keys: readonly string[]; readonly next: string | null }
  | { readonly t: 'verify' }
  | { readonly t: 'done' };

const SCAN_COUNT = 3;

export class SimMigrator {
  status: 'running' | 'dead' = 'running';
  phase: Phase;
  /** Requests whose replies it is waiting for. */
  private outstanding = 0;
  readonly conns: Record<GroupId, Conn>;

  constructor(
    readonly name: string,
    private readonly world: World,
    /** Connection names of migrators that died before this one (fenced first, unless NO_MIGRATOR_FENCE). */
    predecessors: readonly string[],
  ) {
    this.conns = { A: world.connect(this, world.servers.A), B: world.connect(this, world.servers.B) };
    this.phase = predecessors.length > 0 && !world.bug('NO_MIGRATOR_FENCE') ? { t: 'fence-predecessors', names: predecessors } : resumePhase(world);
  }

  /** Waiting for replies. */
  get busy(): boolean {
    return this.outstanding > 0;
  }

  get done(): boolean {
    return this.phase.t === 'done';
  }

  private readonly stepAction = action(1, () => this.step());

  actions(out: Action[]): void {
    if (this.status !== 'running' || this.outstanding > 0 || this.phase.t === 'done') return;
    out.push(this.stepAction);
  }

  private get job(): Job | undefined {
    return this.world.plan[this.world.coordinator.progress.job];
  }

  private step(): string {
    const w = this.world;
    const coordinator = w.coordinator;
    const phase = this.phase;
    switch (phase.t) {
      case 'fence-predecessors':
        this.call(['A', 'B'], { t: 'kill', names: phase.names }, () => (this.phase = resumePhase(w)));
        return `${this.name} kills the connections of ${phase.names.join(' ')} on A and B`;
      case 'begin': {
        const job = this.job;
        if (job === undefined) {
          this.phase = { t: 'done' };
          return `${this.name}: plan done`;
        }
        // Before preparing, the target must hold no key of S (a stray one would be taken for the newer copy).
        const stray = [...w.servers[job.to].data.keys()].filter((k) => job.slots.includes(slotOf(k)));
        if (stray.length > 0) w.violation(`before moving slots ${job.slots.join(',')} from ${job.from} to ${job.to}, the target already holds ${stray.join(' ')}`);
        const t = coordinator.write({ owner: coordinator.table.owner, migration: { ...job, state: 'pending' } });
        this.phase = { t: 'wait', state: 'pending' };
        return `${this.name} writes ${describeTable(t)}`;
      }
      case 'wait':
        return this.wait(phase.state);
      case 'scan': {
        const job = this.job!;
        this.call([job.from], { t: 'scan', cursor: phase.cursor, count: SCAN_COUNT }, (r) => {
          const keys = [...new Set(r.keys!.filter((k) => job.slots.includes(slotOf(k))))];
          this.phase = keys.length > 0 ? { t: 'batch', keys, next: r.next! } : this.after(r.next!);
        });
        return `${this.name} SCANs ${job.from}`;
      }
      case 'batch': {
        const job = this.job!;
        const request: Request = { t: 'migrate', keys: phase.keys, to: w.servers[job.to], replace: w.bug('REPLACE') };
        this.call([job.from], request, (r) => {
          if (r.error === 'IOERR') return; // the same batch again: moved keys answer NOKEY, the rest move
          const busy = r.busy ?? [];
          // BUSYKEY: the target's copy is the newer one; delete the source's.
          if (busy.length > 0) this.call([job.from], { t: 'del', keys: busy }, () => (this.phase = this.after(phase.next)));
          else this.phase = this.after(phase.next);
        });
        return `${this.name} MIGRATEs ${phase.keys.join(' ')} from ${job.from} to ${job.to}`;
      }
      case 'verify': {
        const job = this.job!;
        this.call([job.from], { t: 'scan', cursor: '', count: Infinity }, (r) => {
          const left = r.keys!.filter((k) => job.slots.includes(slotOf(k)));
          if (left.length > 0) {
            this.phase = { t: 'scan', cursor: '' };
            return;
          }
          const owner = coordinator.table.owner.map((g, slot) => (job.slots.includes(slot) ? job.to : g));
          coordinator.write({ owner, migration: null });
          coordinator.progress.job++;
          w.stats.jobs++;
          if (w.plan.slice(0, coordinator.progress.job - 1).some((j) => j.to === job.from && j.slots.some((s) => job.slots.includes(s)))) w.stats.movesBack++;
          coordinator.progress.cursor = '';
          w.servers[job.from].unreplicated.clear();
          this.phase = { t: 'begin' };
        });
        return `${this.name} verifies that ${job.from} holds no key of slots ${job.slots.join(',')}`;
      }
      case 'done':
        return `${this.name}: nothing left to do`;
    }
  }

  /** pending and preparing: wait until every registered client acked this version or is waited out by its lease. */
  private wait(state: 'pending' | 'preparing'): string {
    const w = this.world;
    const coordinator = w.coordinator;
    const version = coordinator.table.version;
    const silent: string[] = [];
    const waitingFor: string[] = [];
    for (const [id, entry] of coordinator.registry) {
      if (entry.applied >= version) continue;
      if (w.now - entry.at >= TIMING.leaseMs + TIMING.marginMs) silent.push(id);
      else waitingFor.push(id);
    }
    if (waitingFor.length > 0) return `${this.name} (${state}) waits for ${waitingFor.join(' ')}`;
    const job = this.job!;
    if (state === 'pending') {
      const t = coordinator.write({ owner: coordinator.table.owner, migration: { ...job, state: 'preparing' } });
      this.phase = { t: 'wait', state: 'preparing' };
      return `${this.name} writes ${describeTable(t)}${silent.length > 0 ? ` (waited out ${silent.join(' ')})` : ''}`;
    }
    // Before keys move: fence the clients it waited out instead of hearing from.
    const on: GroupId[] = w.bug('BUG_NOKILL') || silent.length === 0 ? [] : w.bug('KILL_SOURCE_ONLY') ? [job.from] : [job.from, job.to];
    const migrating = () => {
      coordinator.write({ owner: coordinator.table.owner, migration: { ...job, state: 'migrating' } });
      coordinator.progress.cursor = '';
      this.phase = { t: 'scan', cursor: '' };
    };
    if (on.length === 0) {
      migrating();
      return `${this.name} writes ${describeTable(coordinator.table)}${silent.length > 0 ? ` without fencing ${silent.join(' ')}` : ''}`;
    }
    this.call(on, { t: 'kill', names: silent }, migrating);
    return `${this.name} kills ${silent.join(' ')} on ${on.join(' and ')} before migrating`;
  }

  /** After a batch: save the cursor; the end of a pass goes to verify. */
  private after(next: string | null): Phase {
    this.world.coordinator.progress.cursor = next ?? '';
    return next === null ? { t: 'verify' } : { t: 'scan', cursor: next };
  }

  /** Sends `request` to each group; `then` runs once all have answered (with the last reply). */
  private call(groups: readonly GroupId[], request: Request, then: (reply: Reply) => void): void {
    this.outstanding += groups.length;
    for (const g of groups) {
      this.conns[g].send(request, (reply) => {
        this.outstanding--;
        if (this.outstanding === 0) then(reply);
      });
    }
  }
}

/** Where a migrator starts: from the table's migration state and the saved progress. */
function resumePhase(world: World): Phase {
  const m: Table['migration'] = world.coordinator.table.migration;
  if (m === null) return { t: 'begin' };
  if (m.state === 'migrating') return { t: 'scan', cursor: world.coordinator.progress.cursor };
  return { t: 'wait', state: m.state };
}
