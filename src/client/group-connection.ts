import type { Redis, Command } from "ioredis";
import { failInFlightOnClose } from "../in-flight.js";
import { CommandTimeoutError, GroupQueueFullError, GroupUnavailableError } from "../errors.js";
import type { WriteCoalescer } from "./write-coalescer.js";
import { armTimeout } from "./deadline.js";

type Reject = (error: Error) => void;

// ioredis raises these when a command cannot reach its server; we name the group.
const CONNECTION_ERROR_NAMES = new Set(["MaxRetriesPerRequestError"]);
const CONNECTION_ERROR_MESSAGES = new Set([
  "Connection is closed.",
  "Stream isn't writeable and enableOfflineQueue options is false",
]);

// ioredis' words when a command's commandTimeout ran out.
const TIMEOUT_MESSAGE = "Command timed out";

/** Default of `maxQueuedCommands`: commands that may wait for one group that is not connected. */
export const DEFAULT_MAX_QUEUED_COMMANDS = 10_000;

// Redis's replies when this connection is not (or wrongly) authenticated.
export const AUTH_ERROR = /^(NOAUTH|WRONGPASS)\b|invalid password|invalid username-password/i;

/** A command's way out to one group: its ioredis connection and what shardis knows of it. */
export class GroupConnection {
  constructor(
    readonly id: number,
    readonly address: string,
    readonly redis: Redis,
    /** True when shardis created the connection, or was asked to close a wrapped one. */
    readonly owned: boolean,
    private readonly coalescer: WriteCoalescer | null,
    /** Dense number of this connection in its pool, for array look-ups on hot paths. */
    readonly index: number,
    /** How many commands may wait for this group while it is not connected (maxQueuedCommands). */
    readonly maxQueued: number = DEFAULT_MAX_QUEUED_COMMANDS,
  ) {
    // With autoResendUnfulfilledCommands off, ioredis silently drops the
    // commands that were in flight when a connection closed; fail them instead.
    if (redis.options.autoResendUnfulfilledCommands === false) {
      failInFlightOnClose(redis, () => this.unavailable("the connection closed while the command was in flight; it may or may not have been applied"));
    }
    redis.on("ready", () => (this.authFailure = undefined));
    // On a connection shardis owns, connection failures are renamed where ioredis
    // raises them (its flushQueue), so no command needs a wrapper of its own.
    this.translatesInPlace = owned && translateFlushedErrors(redis, (error) => this.translate(error));
    const timeout = redis.options.commandTimeout;
    this.timeoutMs = typeof timeout === "number" && timeout > 0 ? timeout : 0;
    // Before ioredis sends its offline queue on reconnect: commands that already
    // failed there (commandTimeout, maxQueued) are dropped, never sent late.
    redis.on("connect", () => this.pruneQueued());
  }

  /** commandTimeout of this connection, in ms (0: none). */
  private readonly timeoutMs: number;
  /** Commands admitted while the connection was not ready and not settled yet (they wait in ioredis' offline queue). */
  private queued = 0;
  /** Length of ioredis' offline queue at which settled entries are dropped from it next. */
  private pruneAt = 1024;
  private readonly dequeued = (): void => {
    this.queued--;
  };

  private readonly translatesInPlace: boolean;

  /** Set by close(): the client is done with this group, whatever state ioredis is in. */
  private closedByClient = false;
  /** Why the last login failed (wrong password, ...); cleared once the connection is ready. */
  private authFailure: string | undefined;

  /** Sends a command; connection failures reject it with a GroupUnavailableError naming this group. */
  send(command: Command): void {
    if (!this.admit(command)) return;
    const redis = this.redis;
    if (this.coalescer !== null && redis.status === "ready" && redis.stream) this.coalescer.hold(redis.stream);
    redis.sendCommand(command);
  }

  /**
   * Readies a command for this group (directly or in a pipeline): rejects it
   * when the connection has ended, and makes connection failures name the group.
   */
  admit(command: Command): boolean {
    const refusal = this.refusal();
    if (refusal !== null) {
      command.reject(refusal);
      return false;
    }
    if (this.timeoutMs > 0) armTimeout(command, this.timeoutMs, () => this.timedOut(command.name));
    if (this.redis.status !== "ready") this.countQueued(command);
    if (this.translatesInPlace) return true;
    const reject: Reject = command.reject;
    command.reject = (error) => reject(this.translate(error));
    return true;
  }

  /**
   * Resolves once every command sent to this group so far has been answered
   * (or failed): a PING queued behind them on the same connection, which Redis
   * answers in order. At once when nothing is in flight: never connected,
   * closed, or ready with ioredis' command queue (written, unanswered) and
   * auto-pipeline queue empty.
   */
  drain(): Promise<void> {
    const status = this.redis.status;
    if (status === "wait" || status === "end" || status === "close" || this.closedByClient) return Promise.resolve();
    // Nothing written and unanswered, nothing queued to be written: drained already (one round trip saved per table change).
    if (status === "ready" && this.redis.commandQueue.length === 0 && this.redis.autoPipelineQueueSize === 0) return Promise.resolve();
    return this.redis.ping().then(
      () => undefined,
      () => undefined,
    );
  }

  /**
   * Fails the commands waiting in ioredis' offline queue (routed while the
   * connection was down, not sent yet). Used when the lease on the table
   * runs out: sent after a reconnect, they could land after their slot moved.
   */
  failQueued(error: Error): number {
    const internals = this.redis as unknown as { offlineQueue?: { length: number; shift(): { command: Command } | undefined }; resetOfflineQueue?(): void };
    const queue = internals.offlineQueue;
    if (!queue || queue.length === 0 || typeof internals.resetOfflineQueue !== "function") return 0;
    internals.resetOfflineQueue();
    let failed = 0;
    let item;
    while ((item = queue.shift())) {
      item.command.reject(error);
      failed++;
    }
    return failed;
  }

  /** Why a command cannot be sent to this group now, or null when it can. */
  refusal(): GroupUnavailableError | GroupQueueFullError | null {
    if (this.isClosed()) return this.closedError();
    if (this.redis.status !== "ready") {
      // ioredis would reject at once (not through flushQueue) when it may not queue offline.
      if (this.redis.options.enableOfflineQueue === false) return this.unavailable("it is not connected and enableOfflineQueue is false");
      if (this.queued >= this.maxQueued) return new GroupQueueFullError(this.id, this.address, this.maxQueued);
    }
    return null;
  }

  /**
   * For a command a pipeline sends whole (not through admit()): arms its
   * commandTimeout, and counts it when `offline`. False when refused.
   */
  armWhole(command: Command, offline: boolean): boolean {
    if (this.timeoutMs > 0) armTimeout(command, this.timeoutMs, () => this.timedOut(command.name));
    return !offline || this.countQueued(command);
  }

  /**
   * Counts a command that goes to ioredis' offline queue (this group is not
   * ready) until it settles; false, with the command rejected, when
   * maxQueued commands wait already. Pipelines call it for the commands they
   * do not admit().
   */
  countQueued(command: Command): boolean {
    if (this.queued >= this.maxQueued) {
      command.reject(new GroupQueueFullError(this.id, this.address, this.maxQueued));
      return false;
    }
    this.queued++;
    (command.promise as Promise<unknown>).then(this.dequeued, this.dequeued);
    // Entries that failed (timed out) stay in ioredis' queue until a reconnect; drop them now and then.
    if (this.offlineQueueLength() >= this.pruneAt) this.pruneQueued();
    return true;
  }

  /** Commands waiting for this group to connect (not settled yet). */
  get queuedCount(): number {
    return this.queued;
  }

  /**
   * Drops settled commands (timed out, or failed by maxRetriesPerRequest's
   * cousins) from ioredis' offline queue, so they are not sent after a
   * reconnect and do not hold memory. A pipeline's entries go only together
   * (ioredis writes a pipeline once all its entries are written).
   */
  private pruneQueued(): void {
    const queue = (this.redis as unknown as { offlineQueue?: OfflineQueue }).offlineQueue;
    if (!queue || typeof queue.toArray !== "function" || queue.length === 0) return;
    const items = queue.toArray();
    const live = new Set<unknown>();
    for (const item of items) if (item.stream !== undefined && !isSettled(item.command)) live.add(item.stream);
    const kept = items.filter((item) => !isSettled(item.command) || (item.stream !== undefined && live.has(item.stream)));
    if (kept.length !== items.length) {
      queue.clear();
      for (const item of kept) queue.push(item);
    }
    this.pruneAt = Math.max(1024, kept.length * 2);
  }

  private offlineQueueLength(): number {
    return (this.redis as unknown as { offlineQueue?: { length: number } }).offlineQueue?.length ?? 0;
  }

  /** The error of a command this group did not answer within commandTimeout. */
  timedOut(command: string, cause?: Error): CommandTimeoutError {
    const status = this.redis.status;
    const detail = status === "ready" ? undefined : `it is not connected (${status}), so the command waited in the queue`;
    return new CommandTimeoutError(this.id, this.address, command, this.timeoutMs, detail, cause ? { cause } : undefined);
  }

  /** True once quit()/disconnect() closed it, or ioredis gave up reconnecting. */
  isClosed(): boolean {
    return this.closedByClient || this.redis.status === "end";
  }

  closedError(): GroupUnavailableError {
    return this.unavailable(
      this.closedByClient ? "its connection is closed (quit or disconnect was called)" : "its connection ended (retryStrategy gave up)",
    );
  }

  /** Closed for this client (quit/disconnect): later commands fail at once. connect() reopens. */
  setClosedByClient(closed: boolean): void {
    this.closedByClient = closed;
  }

  /**
   * Closes an owned connection that is not ready. ioredis' disconnect() on a
   * connection that is reconnecting only stops its retry timer: it never
   * reaches "end" and its offline queue waits forever, so fail that queue here.
   */
  closeNow(): Promise<void> {
    const redis = this.redis;
    if (redis.status === "end") return Promise.resolve();
    const reconnecting = redis.status === "reconnecting";
    const ended = new Promise<void>((resolve) => redis.once("end", () => resolve()));
    redis.disconnect();
    if (!reconnecting) return ended;
    (redis as unknown as { flushQueue(error: Error): void }).flushQueue(this.closedError());
    return Promise.resolve();
  }

  /** ioredis connection errors become a GroupUnavailableError; Redis replies pass through. */
  translate(error: Error): Error {
    if (error instanceof GroupUnavailableError) return error;
    if (error.message === TIMEOUT_MESSAGE && !(error instanceof CommandTimeoutError)) return this.timedOut("", error);
    if (AUTH_ERROR.test(error.message)) {
      this.authFailure = `authentication failed (${error.message}); check username/password in redisOptions`;
      return this.unavailable(this.authFailure, error);
    }
    if (CONNECTION_ERROR_NAMES.has(error.name) || CONNECTION_ERROR_MESSAGES.has(error.message)) {
      // A retry-limit or closed error right after a failed login is that failure's doing.
      return this.unavailable(this.authFailure ? `${this.authFailure} (${error.message})` : error.message, error);
    }
    return error;
  }

  /** Why this group failed, in words, for any error (connect() uses it). */
  reasonOf(error: Error): string {
    const translated = this.translate(error);
    return translated instanceof GroupUnavailableError ? translated.reason : error.message;
  }

  unavailable(reason: string, cause?: Error): GroupUnavailableError {
    return new GroupUnavailableError(this.id, this.address, reason, cause ? { cause } : undefined);
  }
}

/** ioredis' offline queue (a Denque) and its entries. */
interface OfflineQueue {
  readonly length: number;
  toArray(): { command: Command; stream?: unknown }[];
  clear(): void;
  push(item: { command: Command; stream?: unknown }): void;
}

function isSettled(command: Command): boolean {
  return (command as unknown as { isSettled?: boolean }).isSettled === true;
}

/**
 * Makes an owned ioredis connection pass every error it fails queued commands
 * with (retry limit, closed connection, failed login) through `translate`.
 * flushQueue is internal to ioredis; when it is missing, callers fall back to
 * wrapping each command (returns false).
 */
function translateFlushedErrors(redis: Redis, translate: (error: Error) => Error): boolean {
  const internals = redis as unknown as { flushQueue?: (error: Error, options?: object) => void };
  const flushQueue = internals.flushQueue;
  if (typeof flushQueue !== "function") return false;
  internals.flushQueue = (error, options) => flushQueue.call(redis, translate(error), options);
  return true;
}
