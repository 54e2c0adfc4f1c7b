// Waiting for the clients to acknowledge a table version (DESIGN §4–5): every
// registered client has applied it (and drained), or its lease has run out.
// The pure part decides from one registry snapshot; the waiting wakes on the
// acks channel and polls as a fallback (messages can be lost).
import { performance } from "node:perf_hooks";
import type { Redis } from "ioredis";
import { AckTimeoutError } from "../../errors.js";
import { parseClientEntry } from "../../coordinator/scripts.js";
import type { RegistrySnapshot } from "../registry.js";

/** Added to a client's lease before it is counted out (clock steps, a confirmation in flight). */
export const LEASE_MARGIN_MS = 1000;
/** Fallback poll of the registry while waiting. */
export const ACK_POLL_MS = 75;

/** Where the clients stand on one table version. */
export interface AckStatus {
  /** Clients that applied the version (or a newer one). */
  readonly acked: readonly string[];
  /** Clients whose lease ran out (at + leaseMs + margin < now) without acking. */
  readonly waitedOut: readonly string[];
  /** Clients still to hear from. */
  readonly waiting: readonly string[];
}

/** Sorts the registered clients by where they stand on `version`. Entries that are not registry entries are ignored. */
export function ackStatus(snapshot: RegistrySnapshot, version: number, marginMs = LEASE_MARGIN_MS): AckStatus {
  const acked: string[] = [];
  const waitedOut: string[] = [];
  const waiting: string[] = [];
  for (const id of Object.keys(snapshot.entries).sort()) {
    const entry = parseClientEntry(snapshot.entries[id]!);
    if (entry === null) continue;
    if (entry.version >= version) acked.push(id);
    else if (snapshot.now > entry.at + entry.leaseMs + marginMs) waitedOut.push(id);
    else waiting.push(id);
  }
  return { acked, waitedOut, waiting };
}

/**
 * Wakes a waiter when a message arrives on the acks channel, so waits end as
 * soon as the last client acks instead of at the next poll.
 */
export class AckWaker {
  private wake: (() => void) | null = null;
  private pinged = false;
  private readonly onMessage = () => {
    this.pinged = true;
    this.wake?.();
  };

  constructor(
    private readonly subscriber: Redis,
    private readonly channel: string,
  ) {
    subscriber.on("message", this.onMessage);
  }

  /** Subscribes; a failure is ignored (the poll still works). */
  async start(): Promise<void> {
    await this.subscriber.subscribe(this.channel).catch(() => undefined);
  }

  /** Resolves on the next ack message (or one that came since the last call), after `ms`, or when `signal` fires. */
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (this.pinged || signal?.aborted) {
      this.pinged = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", done);
        this.wake = null;
        this.pinged = false;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
      signal?.addEventListener("abort", done, { once: true });
    });
  }

  stop(): void {
    this.subscriber.off("message", this.onMessage);
    this.wake?.();
  }
}

export interface AckWait {
  /** The table version the clients must have applied. */
  readonly version: number;
  /** The migration phase, for the error. */
  readonly phase: string;
  /** Give up (AckTimeoutError) after this long. */
  readonly timeoutMs: number;
  /** Reads the registry and the coordinator's clock. */
  readonly read: () => Promise<RegistrySnapshot>;
  /** Sleeps until an ack message, `ms`, or the run is stopped. */
  readonly sleep: (ms: number) => Promise<void>;
  /** Throws when the run was stopped (called before every read). */
  readonly checkStopped: () => void;
  /** Told who is still waited for, after every read that found someone. */
  readonly onWaiting?: (status: AckStatus) => void;
}

/**
 * Waits until every registered client acked `version` or was waited out (its
 * lease ran out), and answers who was which. An AckTimeoutError naming the
 * clients still waited for when that takes more than `timeoutMs`.
 */
export async function waitForAcks(wait: AckWait): Promise<AckStatus> {
  const deadline = performance.now() + wait.timeoutMs;
  for (;;) {
    wait.checkStopped();
    const status = ackStatus(await wait.read(), wait.version);
    if (status.waiting.length === 0) return status;
    wait.onWaiting?.(status);
    const left = deadline - performance.now();
    if (left <= 0) throw new AckTimeoutError(wait.version, status.waiting, wait.timeoutMs, wait.phase);
    await wait.sleep(Math.min(ACK_POLL_MS, left));
  }
}
