// What a simulated run may do wrong (bugs) and what the world may do to it (faults).

/**
 * Known mistakes the simulation must catch. The first five mirror the
 * Promela model's variants (../shared/model/migration.pml); the others are
 * gaps this simulation found between DESIGN §4-5 as written, the code in
 * src/, and a network that may delay a message without bound.
 */
export type Bug =
  /** Read the table, register later: two coordinator steps instead of one confirm script (pml: BUG_REGISTER). */
  | 'BUG_REGISTER'
  /** Ack a version while commands routed under an older one to a changed slot are still in flight (pml: BUG_NODRAIN). */
  | 'BUG_NODRAIN'
  /** No hold in preparing: keep sending to the source (pml: BUG_NOHOLD). */
  | 'BUG_NOHOLD'
  /** MIGRATE ... REPLACE: a copy brought back on the source by a failover overwrites the target's newer one (pml: REPLACE). */
  | 'REPLACE'
  /** No CLIENT KILL of the clients the migrator waited out (pml: BUG_NOKILL). */
  | 'BUG_NOKILL'
  /** The lease counts from when the confirm was answered, not sent. */
  | 'BUG_LEASE_FROM_ANSWER'
  /** DESIGN §5 as written: kill waited-out clients on the source only (not on the target). */
  | 'KILL_SOURCE_ONLY'
  /**
   * After its MIGRATE, a command goes on (DEL of the BUSYKEY copies on the
   * source, then the command on the target) without a fresh look at the
   * lease and the table, however long the MIGRATE's reply took.
   */
  | 'STALE_SECOND_LEG'
  /** A MIGRATE that failed with a transient error is retried on the same route, not routed again by the current table. */
  | 'STALE_RETRY'
  /** A migrator that resumes a job does not fence (CLIENT KILL) the connections of the one that died. */
  | 'NO_MIGRATOR_FENCE';

export type Fault =
  /** Pub/sub events are lost (clients still poll every refreshMs). */
  | 'LOST_EVENTS'
  /** Any connection may stall for up to a few leases (delivery order across connections is arbitrary anyway). */
  | 'DELAYS'
  /** A client stops answering for up to a few leases (its commands already sent may still land), then comes back. */
  | 'FREEZE'
  /** A client dies for good and a new one (a new clientId) starts later. */
  | 'CLIENT_CRASH'
  /** The source's master fails over to a replica that missed deletes made by MIGRATE: old copies come back. */
  | 'FAILOVER'
  /** The migrator dies; another one resumes the job from the coordinator. */
  | 'MIGRATOR_CRASH'
  /** MIGRATE times out part way: some keys moved, maybe one on both sides, the reply is IOERR. */
  | 'MIGRATE_ERRORS';

export const ALL_FAULTS: readonly Fault[] = ['LOST_EVENTS', 'DELAYS', 'FREEZE', 'CLIENT_CRASH', 'FAILOVER', 'MIGRATOR_CRASH', 'MIGRATE_ERRORS'];

/** Times in ticks of the simulated clock (one clock: the coordinator's and every client's run at the same rate). */
export const TIMING = {
  leaseMs: 30,
  refreshMs: 8,
  /** The migrator counts a client dead when its entry is older than leaseMs + marginMs. */
  marginMs: 3,
  /** How long a command may wait for a lease or in preparing before it fails. */
  waitMs: 60,
} as const;

export interface SimOptions {
  readonly seed: number;
  readonly bugs?: readonly Bug[];
  /** @default ALL_FAULTS */
  readonly faults?: readonly Fault[];
  /** Keep the last `trace` steps for the report. @default 0 */
  readonly trace?: number;
  /** A run that has not settled after this many steps fails. @default 60000 */
  readonly maxSteps?: number;
}
