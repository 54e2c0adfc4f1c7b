// Waiting for the clients to acknowledge a table version (DESIGN §4–5): every
// registered client has applied it (and drained), or its lease has run out.
// The pure part decides from one registry snapshot; the waiting wakes on the
// acks channel and polls as a fallback (messages can be lost). The acks heard
// after a snapshot complete it without reading the registry again: the last
// ack is acted on one round trip sooner.
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
export class AckWaker implements HeardAcks {
  private wake: (() => void) | null = null;
  private pinged = false;
  /** clientId → the last thing heard of it since forget(): the version it acked, or "gone". */
  private readonly heard = new Map<string, number | "gone">();
  private readonly onMessage = (_channel: string, message: string) => {
    const heard = parseAckMessage(String(message));
    if (heard !== null) this.heard.set(heard.id, heard.ack);
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

  forget(): void {
    this.heard.clear();
  }

  get(id: string): number | "gone" | undefined {
    return this.heard.get(id);
  }

  stop(): void {
    this.subscriber.off("message", this.onMessage);
    this.wake?.();
  }
}

/** What the acks channel said since the last registry read (see AckWaker). */
export interface HeardAcks {
  /** Forgets what was heard: called right before each registry read. */
  forget(): void;
  /** For `id`, the last version it was heard acking since forget(), "gone" if it left, or undefined. */
  get(id: string): number | "gone" | undefined;
}

/**
 * An acks channel message: "<clientId> <version>" (published by the confirm
 * script, atomically with the registry entry it describes) or
 * "<clientId> gone" (deregistered). Null for anything else.
 */
export function parseAckMessage(message: string): { id: string; ack: number | "gone" } | null {
  const space = message.lastIndexOf(" ");
  if (space <= 0) return null;
  const word = message.slice(space + 1);
  if (word === "gone") return { id: message.slice(0, space), ack: "gone" };
  const version = Number(word);
  return word !== "" && Number.isSafeInteger(version) ? { id: message.slice(0, space), ack: version } : null;
}

/**
 * `status` (from a registry snapshot taken after heard.forget()) completed by
 * the acks heard since: null unless every client it waits for was heard
 * acking `version` or leaving. Clients registered after the snapshot do not
 * count: they read a table at least as new as `version` when they registered.
 * A client heard leaving counts as waited out, so it is fenced: "gone" is
 * also what status() announces when it removes a long-expired entry.
 */
export function completedByHeard(status: AckStatus, version: number, heard: HeardAcks): AckStatus | null {
  const ackedNow = (id: string) => {
    const ack = heard.get(id);
    return ack !== undefined && ack !== "gone" && ack >= version;
  };
  if (!status.waiting.every((id) => ackedNow(id) || heard.get(id) === "gone")) return null;
  return {
    acked: [...status.acked, ...status.waiting.filter(ackedNow), ...status.waitedOut.filter(ackedNow)].sort(),
    waitedOut: [...status.waitedOut.filter((id) => !ackedNow(id)), ...status.waiting.filter((id) => !ackedNow(id))].sort(),
    waiting: [],
  };
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
  /** The acks heard on the channel: when they complete the last snapshot, no further read is needed. */
  readonly heard?: HeardAcks;
}

/**
 * Waits until every registered client acked `version` or was waited out (its
 * lease ran out), and answers who was which. An AckTimeoutError naming the
 * clients still waited for when that takes more than `timeoutMs`.
 */
export async function waitForAcks(wait: AckWait): Promise<AckStatus> {
  const deadline = performance.now() + wait.timeoutMs;
  // Once waited out, a client stays so (and is fenced) unless it acks: status()
  // may remove its entry between two reads, and absence is no proof it is silent.
  const waitedOut = new Set<string>();
  const withEarlier = (status: AckStatus): AckStatus => {
    for (const id of status.waitedOut) waitedOut.add(id);
    const acked = new Set(status.acked);
    return { ...status, waitedOut: [...waitedOut].filter((id) => !acked.has(id) && !status.waiting.includes(id)).sort() };
  };
  for (;;) {
    wait.checkStopped();
    wait.heard?.forget();
    const status = withEarlier(ackStatus(await wait.read(), wait.version));
    if (status.waiting.length === 0) return status;
    wait.onWaiting?.(status);
    // Until the next poll, every ack message is checked against this snapshot.
    const readAgainAt = Math.min(performance.now() + ACK_POLL_MS, deadline);
    for (let slept = false; ; slept = true) {
      const completed = wait.heard ? completedByHeard(status, wait.version, wait.heard) : null;
      if (completed !== null) return completed;
      const left = readAgainAt - performance.now();
      // Without heard acks, any wake-up (an ack message, or the poll) is a reason to read again.
      if (left <= 0 || (slept && wait.heard === undefined)) break;
      await wait.sleep(left);
      wait.checkStopped();
    }
    if (performance.now() >= deadline) throw new AckTimeoutError(wait.version, status.waiting, wait.timeoutMs, wait.phase);
  }
}
