/**
 * Every error shardis raises is a ShardisError with a stable `code`; callers
 * match on the class or the code, never on the message.
 */
export class ShardisError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** The slot table or group list is invalid; nothing was changed. */
export class TopologyError extends ShardisError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("ERR_TOPOLOGY", message, options);
  }
}

/** A command that must run on one server names keys in different slots. */
export class CrossSlotError extends ShardisError {
  readonly command: string;
  readonly keys: readonly (string | Buffer)[];
  readonly slots: readonly number[];

  constructor(command: string, keys: readonly (string | Buffer)[], slots: readonly number[]) {
    const shown = keys
      .slice(0, 8)
      .map((key, i) => `${String(key)} (slot ${slots[i]})`)
      .join(", ");
    super(
      "ERR_CROSS_SLOT",
      `${command.toUpperCase()} is atomic, so all its keys must share one slot, but they don't: ${shown}` +
        `${keys.length > 8 ? ", ..." : ""}. Give related keys one hash tag, e.g. {user42}:a and {user42}:b. Nothing was sent.`,
    );
    this.command = command;
    this.keys = keys;
    this.slots = slots;
  }
}

/** The group that owns a command's slot cannot take commands (down, closed, or not authenticated). */
export class GroupUnavailableError extends ShardisError {
  readonly group: number;
  readonly address: string;
  /** Why, in words (the message without the group). */
  readonly reason: string;

  constructor(group: number, address: string, reason: string, options?: { cause?: unknown }) {
    super("ERR_GROUP_UNAVAILABLE", `group ${group} (${address}) is unavailable: ${reason}`, options);
    this.group = group;
    this.address = address;
    this.reason = reason;
  }
}

/** One part of a command split over several groups. */
export interface GroupOutcome {
  readonly group: number;
  /** Set when this group's part failed. */
  readonly error?: Error;
  /** This group's raw reply when its part succeeded. */
  readonly result?: unknown;
}

/**
 * A command split over several groups (MGET, MSET, DEL, ...) or fanned out to
 * all of them (PING, DBSIZE, ...) failed on some groups. `failed` and
 * `succeeded` say which parts were applied: MSET and DEL are not atomic across
 * groups.
 */
export class PartialFailureError extends ShardisError {
  readonly command: string;
  readonly failed: readonly GroupOutcome[];
  readonly succeeded: readonly GroupOutcome[];

  constructor(command: string, outcomes: readonly GroupOutcome[]) {
    const failed = outcomes.filter((o) => o.error !== undefined);
    const succeeded = outcomes.filter((o) => o.error === undefined);
    const reasons = failed.map((o) => `group ${o.group}: ${o.error?.message}`).join("; ");
    super(
      "ERR_PARTIAL_FAILURE",
      `${command.toUpperCase()} failed on ${failed.length} of ${outcomes.length} groups (${reasons}); ` +
        `it succeeded on ${succeeded.length ? `groups ${succeeded.map((o) => o.group).join(", ")}` : "none"}.`,
      { cause: failed[0]?.error },
    );
    this.command = command;
    this.failed = failed;
    this.succeeded = succeeded;
  }
}

/** A command shardis will not run on a sharded client, with the reason and what to do instead. */
export class CommandNotAllowedError extends ShardisError {
  readonly command: string;

  constructor(command: string, reason: string) {
    super("ERR_COMMAND_NOT_ALLOWED", `${command.toUpperCase()} is not allowed on a sharded client: ${reason}`);
    this.command = command;
  }
}

/** A command that @ioredis/commands does not know: its keys cannot be found, so it cannot be routed. */
export class UnknownCommandError extends ShardisError {
  readonly command: string;

  constructor(command: string) {
    super(
      "ERR_UNKNOWN_COMMAND",
      `unknown command '${command}': shardis routes by the keys that @ioredis/commands knows for each command, ` +
        `and it does not know this one. Send it to one group with client.group(id).call(...)`,
    );
    this.command = command;
  }
}

/** Wrong argument passed to a shardis API (not to a Redis command, whose errors come from Redis). */
export class ArgumentError extends ShardisError {
  constructor(message: string) {
    super("ERR_ARGUMENT", message);
  }
}

/**
 * The client cannot vouch for its slot table: its lease from the coordinator
 * ran out and no fresh confirmation came in time (DESIGN §4). Nothing was sent.
 * Set `onStaleTopology: 'serve'` to keep serving from the last table instead
 * (for caches, where a lost write is acceptable).
 */
export class StaleTopologyError extends ShardisError {
  /** The version of the last table the client applied (0: none yet). */
  readonly version: number;

  constructor(message: string, version: number, options?: { cause?: unknown }) {
    super("ERR_STALE_TOPOLOGY", message, options);
    this.version = version;
  }
}

/** A table write lost a race: the table was not at the version the writer read. Read it again and retry. */
export class VersionConflictError extends ShardisError {
  /** The version the writer expected to replace. */
  readonly expected: number;
  /** The version found (-1: unreadable, 0: none). */
  readonly actual: number;

  constructor(expected: number, actual: number) {
    super(
      "ERR_VERSION_CONFLICT",
      `the slot table changed while this change was prepared: expected version ${expected}, found ${actual}. Nothing was written; read the table again and retry`,
    );
    this.expected = expected;
    this.actual = actual;
  }
}

/** The cluster already has a slot table, so it was not initialized again. Pass `force` to overwrite it. */
export class ClusterExistsError extends ShardisError {
  readonly cluster: string;
  /** The version of the table found (-1: unreadable). */
  readonly version: number;

  constructor(cluster: string, version: number) {
    super(
      "ERR_CLUSTER_EXISTS",
      `cluster "${cluster}" already has ${version < 0 ? "an unreadable slot table" : `a slot table (version ${version})`}; ` +
        `nothing was written. Initializing again would replace it: pass force to do that on purpose`,
    );
    this.cluster = cluster;
    this.version = version;
  }
}

/** A key found in a slot whose owner was about to change. */
export interface SlotKey {
  /** The key, as text (SCAN's bytes decoded as UTF-8). */
  readonly key: string;
  readonly slot: number;
  /** The group holding it. */
  readonly group: number;
}

/**
 * Slots were to be given to another group without moving keys, but a group
 * holds keys in them. Moving slots that hold keys is a live migration.
 * Nothing was changed.
 */
export class SlotsNotEmptyError extends ShardisError {
  /** The group the slots were to be given to. */
  readonly to: number;
  /** Some of the keys found (up to 10), each with its slot and the group holding it. */
  readonly keys: readonly SlotKey[];
  /** The distinct slots of `keys`, ascending. */
  readonly slots: readonly number[];

  constructor(to: number, keys: readonly SlotKey[]) {
    const shown = keys.map((k) => `${k.key} (slot ${k.slot}, group ${k.group})`).join(", ");
    const onOwners = keys.some((k) => k.group !== to);
    const onTarget = keys.some((k) => k.group === to);
    super(
      "ERR_SLOTS_NOT_EMPTY",
      `cannot give these slots to group ${to}: they hold keys, e.g. ${shown}. ` +
        (onOwners
          ? "Assigning slots only re-labels empty slots; moving slots that hold keys is a live migration " +
            "(`shardis migrate`, coming with live migration). "
          : "") +
        (onTarget ? `Group ${to} holds keys in slots it does not own yet (left over from earlier?); delete them first. ` : "") +
        "Nothing was changed.",
    );
    this.to = to;
    this.keys = keys;
    this.slots = [...new Set(keys.map((k) => k.slot))].sort((a, b) => a - b);
  }
}

/** The coordinator could not be reached, or did not answer in time. The client retries on its own. */
export class CoordinatorUnavailableError extends ShardisError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("ERR_COORDINATOR_UNAVAILABLE", message, options);
  }
}

/** Who holds the migrator's lock (`…:lock`), as it wrote itself there. */
export interface LockHolder {
  readonly host: string;
  readonly pid: number;
  /** Local clock (ms since the epoch) of the holder when it took the lock. */
  readonly since: number;
}

/**
 * Another migrator holds the cluster's migration lock (two never run at
 * once), or this one lost it while running. Nothing more was changed by this
 * call; a job it left behind stays for resumeMigration.
 */
export class MigrationLockedError extends ShardisError {
  readonly cluster: string;
  /** The holder, when the lock holds a readable holder; null when it was lost or is unreadable. */
  readonly holder: LockHolder | null;
  /** How long the lock lasts unless renewed (ms; -1 unknown). */
  readonly ttlMs: number;
  /** True when this migrator had the lock and lost it (it was not renewed in time). */
  readonly lost: boolean;

  constructor(cluster: string, holder: LockHolder | null, ttlMs: number, lost = false) {
    const who = holder === null ? "another migrator" : `a migrator on ${holder.host} (pid ${holder.pid}, since ${new Date(holder.since).toISOString()})`;
    super(
      "ERR_MIGRATION_LOCKED",
      lost
        ? `this migrator lost the migration lock of cluster "${cluster}" (it could not renew it in time), so it stopped; ` +
            `the job is kept: run resumeMigration (\`shardis migration resume\`) once no other migrator runs`
        : `the migration lock of cluster "${cluster}" is held by ${who}; two migrators never run at once. ` +
            `Wait for it to finish${ttlMs >= 0 ? `, or, if it died, for the lock to expire (in ${ttlMs} ms)` : ""}, then retry (or resumeMigration). Nothing was changed`,
    );
    this.cluster = cluster;
    this.holder = holder;
    this.ttlMs = ttlMs;
    this.lost = lost;
  }
}

/**
 * A migration is already in progress in the cluster (a job in `…:migration`,
 * or a migration in the slot table), so another one was not started.
 */
export class MigrationInProgressError extends ShardisError {
  readonly cluster: string;

  constructor(cluster: string, what: string) {
    super(
      "ERR_MIGRATION_IN_PROGRESS",
      `cluster "${cluster}" already has a migration in progress (${what}); one migration runs at a time. ` +
        `Finish it with resumeMigration (\`shardis migration resume\`), or abortMigration while it is pending or preparing. Nothing was changed`,
    );
    this.cluster = cluster;
  }
}

/**
 * The receiving group already holds keys in the slots to migrate. They would
 * be taken for the newer copies (a moved key never overwrites one there), so
 * the migration was refused. Nothing was changed.
 */
export class TargetNotEmptyError extends ShardisError {
  /** The receiving group. */
  readonly group: number;
  /** Some of the keys found there (up to 10), with their slots. */
  readonly keys: readonly SlotKey[];

  constructor(group: number, keys: readonly SlotKey[]) {
    const shown = keys.map((k) => `${k.key} (slot ${k.slot})`).join(", ");
    super(
      "ERR_TARGET_NOT_EMPTY",
      `group ${group} already holds keys in slots it is to receive, e.g. ${shown}; a key there would win over the one moved in. ` +
        `Delete them (or pass clearTarget to have the migrator delete every key of these slots on group ${group}), then retry. Nothing was changed`,
    );
    this.group = group;
    this.keys = keys;
  }
}

/**
 * Registered clients neither acknowledged a migration step's table nor let
 * their lease run out within ackTimeoutMs. The job is kept, in the phase it
 * reached: resumeMigration waits again, abortMigration undoes it (while pending or preparing).
 */
export class AckTimeoutError extends ShardisError {
  /** The table version that was not acknowledged. */
  readonly version: number;
  /** The clients still waited for, by id. */
  readonly clients: readonly string[];

  constructor(version: number, clients: readonly string[], timeoutMs: number, phase: string) {
    const shown = clients.slice(0, 10).join(", ") + (clients.length > 10 ? `, ... (${clients.length} in all)` : "");
    super(
      "ERR_ACK_TIMEOUT",
      `${clients.length} client(s) did not acknowledge table version ${version} (migration ${phase}) within ${timeoutMs} ms: ${shown}. ` +
        `They are alive (their lease keeps being renewed) but have not applied it; look at them (\`shardis status\`), then ` +
        `resumeMigration to wait again, or abortMigration to put the slots back. The job is kept`,
    );
    this.version = version;
    this.clients = clients;
  }
}

/** A migration run was stopped by its AbortSignal. The job is kept: resumeMigration continues it. */
export class MigrationStoppedError extends ShardisError {
  /** The phase the job was left in; null when the run stopped before it made a job. */
  readonly phase: string | null;

  constructor(phase: string | null, options?: { cause?: unknown }) {
    super(
      "ERR_MIGRATION_STOPPED",
      phase === null
        ? "the migration was stopped (its AbortSignal fired) before it started; nothing was changed"
        : `the migration was stopped (its AbortSignal fired) in phase ${phase}; the job is kept in the coordinator. ` +
            `Run resumeMigration (\`shardis migration resume\`) to continue it${phase === "pending" || phase === "preparing" ? ", or abortMigration to put the slots back" : ""}`,
      options,
    );
    this.phase = phase;
  }
}

/**
 * The migration job and the slot table do not allow what was asked: no job
 * to resume, a job that does not match the table, an abort after keys may
 * have moved, or keys that keep appearing on the source. The message says
 * what was found and what to do.
 */
export class MigrationStateError extends ShardisError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("ERR_MIGRATION_STATE", message, options);
  }
}

/**
 * A group did not answer a command within `commandTimeout` (redisOptions):
 * the server is stalled, overloaded or cut off while its connection stays
 * open, or the command waited that long for its slot (held while the table
 * was unconfirmed or its slots were moving). The command may or may not have
 * been applied. Other groups are not affected.
 */
export class CommandTimeoutError extends ShardisError {
  readonly group: number;
  readonly address: string;
  /** The command's name (lower case), or "" when unknown. */
  readonly command: string;
  /** The commandTimeout that ran out, in ms. */
  readonly timeoutMs: number;

  constructor(group: number, address: string, command: string, timeoutMs: number, detail?: string, options?: { cause?: unknown }) {
    super(
      "ERR_COMMAND_TIMEOUT",
      `group ${group} (${address}) did not answer ${command ? command.toUpperCase() : "the command"} within ${timeoutMs} ms (commandTimeout)` +
        `${detail ? `; ${detail}` : ""}; the command timed out and may or may not have been applied`,
      options,
    );
    this.group = group;
    this.address = address;
    this.command = command;
    this.timeoutMs = timeoutMs;
  }
}

/**
 * A group is not connected and already has `maxQueuedCommands` commands
 * waiting for it, so this one was refused at once (nothing was sent). This
 * keeps memory bounded while a group is down; the other groups are not
 * affected.
 */
export class GroupQueueFullError extends ShardisError {
  readonly group: number;
  readonly address: string;
  /** The maxQueuedCommands limit that was reached. */
  readonly limit: number;

  constructor(group: number, address: string, limit: number) {
    super(
      "ERR_GROUP_QUEUE_FULL",
      `group ${group} (${address}) is not connected and already has ${limit} commands waiting for it (maxQueuedCommands); ` +
        `this one was refused and not sent. Retry later or shed load while the group is down; set redisOptions.commandTimeout ` +
        `so waiting commands fail sooner, or raise maxQueuedCommands for longer bursts`,
    );
    this.group = group;
    this.address = address;
    this.limit = limit;
  }
}
