// How often each fault and each protocol path happened in a run: the proof
// that a sweep which holds did go through what it claims to survive.

export class Stats {
  /** Clients that stopped answering for a while / were cut off from the network / died for good. */
  freezes = 0;
  partitions = 0;
  clientCrashes = 0;
  /** Pub/sub events lost, and links stalled. */
  lostEvents = 0;
  stalls = 0;
  /** Failovers of a source that brought old copies back; migrator deaths and resumptions. */
  failovers = 0;
  migratorCrashes = 0;
  /** Requests dropped by CLIENT KILL before they ran (a fence that mattered). */
  fencedRequests = 0;
  /** MIGRATE answers: BUSYKEY (key on both sides), IOERR (timed out part way). */
  busyKeys = 0;
  migrateErrors = 0;
  /** Commands held in preparing, or waiting for a lease, and second legs routed again because the table moved on. */
  held = 0;
  gated = 0;
  rerouted = 0;
  /** Jobs of the plan done, and of those, moves back to where the slots came from. */
  jobs = 0;
  movesBack = 0;

  add(other: Stats): void {
    for (const key of Object.keys(this) as (keyof Stats)[]) {
      if (typeof this[key] === 'number') (this[key] as number) += other[key] as number;
    }
  }
}
