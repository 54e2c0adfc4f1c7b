import { performance } from "node:perf_hooks";
import type { Command, Callback } from "ioredis";
import Commander from "ioredis/built/utils/Commander";
import { slotOf } from "../slot.js";
import { planFor } from "../commands/plan.js";
import { ArgumentError, CommandNotAllowedError, CrossSlotError, UnknownCommandError } from "../errors.js";
import type { Arg } from "../commands/split.js";
import { keysOf, routeCommand, type RouterOptions } from "./router.js";
import type { GroupPool } from "./pool.js";
import { GroupConnection } from "./group-connection.js";
import { MigrationRoute, type Route } from "./migration-route.js";
import type { LeaseGate } from "./lease-gate.js";
import { armUntil } from "./deadline.js";

/** ioredis' pipeline result: one [error] or [null, result] per command, in the caller's order. */
export type PipelineResult = [error: Error | null, result: unknown][];

/** The parts of an ioredis Pipeline that shardis feeds prebuilt commands into. */
interface IoredisPipeline {
  sendCommand(command: Command): unknown;
  exec(): Promise<PipelineResult | null>;
}

/** What a pipeline borrows from its client: options and scripts defined with defineCommand. */
interface PipelineParent {
  readonly options: Commander["options"];
  readonly scriptsSet: object;
  readonly addedBuiltinSet: Set<string>;
}

const noop = () => {};

/**
 * A pipeline over any mix of groups: commands are routed as the client routes
 * them, each group's share goes out as one ioredis pipeline, and exec()
 * answers in the caller's order with ioredis' `[error, result]` shape.
 */
export class ShardedPipeline extends Commander<{ type: "pipeline" }> {
  /** Marks this as a pipeline for ioredis' script helpers (defineCommand). */
  readonly isPipeline = true;
  protected readonly queue: Command[] = [];
  private executed: Promise<PipelineResult | null> | null = null;

  constructor(
    /** The client; ioredis' script helpers resend NOSCRIPT retries through it. */
    readonly redis: PipelineParent,
    protected readonly pool: GroupPool,
    protected readonly router: RouterOptions,
    /** With a coordinator: exec() waits here while the lease on the table is out. */
    private readonly gate: LeaseGate | null = null,
  ) {
    super();
    this.options = redis.options;
    const self = this as unknown as Record<string, unknown>;
    const parent = redis as unknown as Record<string, unknown>;
    for (const name of [...Object.keys(redis.scriptsSet), ...redis.addedBuiltinSet]) {
      self[name] = parent[name];
      self[`${name}Buffer`] = parent[`${name}Buffer`];
    }
  }

  /** Number of queued commands. */
  get length(): number {
    return this.queue.length;
  }

  /** @ignore Queues a command; the generated command methods call this. */
  override sendCommand(command: Command): this {
    this.queue.push(command);
    return this;
  }

  /** Queues `[name, ...args]` entries, as ioredis' pipeline(commands) does. */
  addBatch(commands: unknown[][]): this {
    const self = this as unknown as Record<string, unknown>;
    for (const [name, ...args] of commands) {
      const method = typeof name === "string" ? self[name] : undefined;
      if (typeof method !== "function") throw new ArgumentError(`unknown command in batch: ${JSON.stringify(name)}`);
      method.apply(this, args);
    }
    return this;
  }

  /** Sends every queued command and answers `[error, result]` per command, in order. */
  override exec(callback?: Callback<PipelineResult | null>): Promise<PipelineResult | null> {
    if (this.executed === null) this.executed = this.gate === null || this.gate.open() ? this.run() : this.runWhenConfirmed(this.gate);
    return withCallback(this.executed, callback);
  }

  private runWhenConfirmed(gate: LeaseGate): Promise<PipelineResult | null> {
    const heldAt = performance.now();
    return new Promise((resolve, reject) => {
      gate.hold(
        () => {
          // Released with the time left of each command's commandTimeout (counted from exec()).
          const timeoutMs = this.pool.defaultGroup.redis.options.commandTimeout;
          if (typeof timeoutMs === "number" && timeoutMs > 0) for (const command of this.queue) armUntil(command, heldAt + timeoutMs, timeoutMs, this.pool);
          resolve(this.run());
        },
        (error) => {
          for (const command of this.queue) {
            command.promise.catch(noop);
            command.reject(error);
          }
          reject(error);
        },
      );
    });
  }

  protected run(): Promise<PipelineResult | null> {
    const queue = this.queue;
    const batches: GroupBatch[] = [];
    const batchOf: (GroupBatch | undefined)[] = []; // by group index
    // Where each command's answer comes from: a slot in a group's pipeline
    // (routed whole), or its own promise (split, fanned out, or rejected).
    const placedIn: (GroupBatch | undefined)[] = new Array(queue.length);
    const placedAt = new Int32Array(queue.length);
    let current = -1;
    const dispatch = (route: Route, command: Command) => {
      // Slots on the move: the migration's route sends the command on its own
      // (held, or after MIGRATE); its answer comes from its own promise.
      if (!(route instanceof GroupConnection)) return route.send(command);
      const group = route;
      // Parts of split commands need their errors to name the group; a command
      // routed whole gets that when its reply is read below (no closure per command).
      const whole = command === queue[current];
      let batch = batchOf[group.index];
      if (batch === undefined) {
        // A group's state cannot change while this loop runs: ask once per group.
        batch = { group, pipeline: group.redis.pipeline() as unknown as IoredisPipeline, size: 0, index: -1, refusal: group.refusal(), offline: group.redis.status !== "ready" };
        batchOf[group.index] = batch;
        if (batch.refusal === null) batch.index = batches.push(batch) - 1;
      }
      if (batch.refusal !== null) return command.reject(batch.refusal);
      // Parts are admitted (named errors, timeout, queue bound); whole commands get the group's timeout and, while it is not connected, count against its queue bound.
      if (!whole) {
        if (!group.admit(command)) return;
      } else if (!group.armWhole(command, batch.offline)) return;
      if (whole) {
        placedIn[current] = batch;
        placedAt[current] = batch.size;
      }
      batch.pipeline.sendCommand(command);
      batch.size++;
    };
    // With readFrom: reads a replica may serve go into that replica's batch.
    const readRoute = this.router.readRoute;
    const send = readRoute === undefined ? dispatch : (route: Route, command: Command) => dispatch(readRoute(route, command), command);
    for (current = 0; current < queue.length; current++) routeCommand(this.pool, this.router, queue[current]!, send);
    const results: PipelineResult = new Array(queue.length);
    // Commands answered on their own: listen now, in this tick, so an early
    // rejection (e.g. CrossSlotError) is never an unhandled one.
    let own: Promise<unknown>[] | undefined;
    for (let i = 0; i < queue.length; i++) {
      if (placedIn[i] === undefined) (own ??= []).push(settled(queue[i]!).then((result) => (results[i] = result)));
    }
    if (own === undefined && batches.length === 1 && batches[0]!.size === queue.length) {
      // Every command went whole to one group, in order: its answer is ours.
      const batch = batches[0]!;
      return batch.pipeline.exec().then((entries) => {
        for (const entry of entries!) if (entry[0]) entry[0] = batch.group.translate(entry[0]);
        return entries;
      });
    }
    return Promise.all(batches.map((batch) => batch.pipeline.exec())).then((replies) => {
      for (let i = 0; i < queue.length; i++) {
        const batch = placedIn[i];
        if (batch === undefined) continue;
        const entry = replies[batch.index]![placedAt[i]!]!;
        // ioredis' own [null, result] (or one-element [error]) entry, reused as it is.
        results[i] = entry[0] ? ([batch.group.translate(entry[0])] as unknown as [Error, unknown]) : entry;
      }
      return own ? Promise.all(own).then(() => results) : results;
    });
  }
}

interface GroupBatch {
  readonly group: GroupConnection;
  readonly pipeline: IoredisPipeline;
  /** Position in the list of batches sent; -1 for a group that refused. */
  index: number;
  readonly refusal: Error | null;
  /** The group was not connected when the batch was made: its commands wait in ioredis' offline queue (maxQueuedCommands). */
  readonly offline: boolean;
  size: number;
}

/**
 * MULTI/EXEC on the one group that owns the transaction's slot. Every key of
 * every queued command must share that slot; keyless commands run there too.
 */
export class ShardedMulti extends ShardedPipeline {
  protected override run(): Promise<PipelineResult | null> {
    let route: Route;
    let keys: Arg[];
    try {
      ({ route, keys } = this.transactionRoute());
    } catch (error) {
      return this.fail(error as Error);
    }
    if (route instanceof MigrationRoute) {
      // Held while preparing, keys moved first while migrating; routed again if the table moved on.
      return route.prepare(keys, this).then(
        (group) => (group === null ? this.run() : this.runOn(group)),
        (error: Error) => this.fail(error),
      );
    }
    return this.runOn(route as GroupConnection);
  }

  private fail(error: Error): Promise<never> {
    for (const command of this.queue) {
      command.promise.catch(noop);
      command.reject(error);
    }
    return Promise.reject(error);
  }

  private runOn(group: GroupConnection): Promise<PipelineResult | null> {
    const refusal = group.refusal();
    if (refusal !== null) return this.fail(refusal);
    const multi = group.redis.multi() as unknown as IoredisPipeline;
    for (const command of this.queue) if (group.admit(command)) multi.sendCommand(command);
    return multi.exec().catch((error: Error) => {
      throw group.translate(error);
    });
  }

  private transactionRoute(): { route: Route; keys: Arg[] } {
    const keys: Arg[] = [];
    const slots: number[] = [];
    for (const command of this.queue) {
      const plan = planFor(command.name, (command.args as Arg[])[0]);
      if (plan === null) throw new UnknownCommandError(command.name);
      if (plan.kind === "refused") throw new CommandNotAllowedError(command.name, plan.reason);
      if (plan.kind === "scan") throw new CommandNotAllowedError(command.name, "SCAN walks every group and cannot run inside MULTI");
      for (const key of keysOf(command)) {
        keys.push(key);
        slots.push(slotOf(key));
      }
    }
    if (slots.some((slot) => slot !== slots[0])) throw new CrossSlotError("multi", keys, slots);
    return { route: slots.length === 0 ? this.pool.defaultGroup : this.pool.routes[slots[0]!]!, keys };
  }
}

function settled(command: Command): Promise<[Error | null, unknown]> {
  return (command.promise as Promise<unknown>).then(
    (result): [null, unknown] => [null, result],
    // ioredis gives a one-element [error] for a failed command; so do we.
    (error: Error) => [error] as unknown as [Error, unknown],
  );
}

function withCallback<T>(promise: Promise<T>, callback?: Callback<T>): Promise<T> {
  if (callback) promise.then((result) => callback(null, result), (error: Error) => callback(error));
  return promise;
}
