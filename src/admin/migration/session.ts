// What the migrator needs from its admin, and one locked session: the lock,
// the run's settings, and the acks subscription, shared by the migrations of
// a session (a rebalance runs several under one lock).
import type { Redis } from "ioredis";
import { MigrationStoppedError } from "../../errors.js";
import { closeQuietly } from "../../coordinator/connection.js";
import type { CoordinatorKeys } from "../../coordinator/keys.js";
import type { ClusterTable } from "../../topology/format.js";
import type { ProbeOptions } from "../group-probe.js";
import type { JobWithTable, TableChange } from "../table-write.js";
import { AckWaker } from "./acks.js";
import { MigrationLock } from "./lock.js";
import type { RunSettings } from "./options.js";

/** The admin's side of things, handed to the migrator. */
export interface MigratorContext {
  readonly cluster: string;
  readonly keys: CoordinatorKeys;
  /** The coordinator connection for scripts and reads. */
  readonly coordinator: Redis;
  /** A new coordinator connection for SUBSCRIBE. */
  readonly subscriber: () => Redis;
  readonly readTable: () => Promise<ClusterTable | null>;
  /**
   * The admin's one way to write a table: validated, compare-and-set on
   * `expected`, published; with `job`, fenced by the lock and saving the job
   * in the same step (a MigrationLockedError when the lock is not ours).
   */
  readonly writeTable: (change: TableChange, expected: number, job?: JobWithTable) => Promise<ClusterTable>;
  /** redisOptions (credentials, TLS, db) and timeouts for group masters. */
  readonly probe: ProbeOptions;
}

export interface Session {
  readonly ctx: MigratorContext;
  readonly lock: MigrationLock;
  readonly settings: RunSettings;
  /** The acks channel subscription, opened on first use. */
  waker(): Promise<AckWaker>;
}

/** Takes the lock, runs `use`, then closes what it opened and releases the lock. */
export async function withSession<T>(ctx: MigratorContext, settings: RunSettings, use: (session: Session) => Promise<T>): Promise<T> {
  if (settings.signal?.aborted) throw new MigrationStoppedError(null, { cause: settings.signal.reason });
  const lock = await MigrationLock.acquire(ctx.coordinator, ctx.keys.lock, ctx.cluster, settings.lockMs);
  const opened: { subscriber: Redis | null; waker: Promise<AckWaker> | null } = { subscriber: null, waker: null };
  const session: Session = {
    ctx,
    lock,
    settings,
    waker() {
      if (opened.waker === null) {
        const subscriber = (opened.subscriber = ctx.subscriber());
        const waker = new AckWaker(subscriber, ctx.keys.acks);
        opened.waker = waker.start().then(() => waker);
      }
      return opened.waker;
    },
  };
  try {
    return await use(session);
  } finally {
    if (opened.waker !== null) (await opened.waker).stop();
    if (opened.subscriber !== null) await closeQuietly(opened.subscriber);
    await lock.release();
  }
}
