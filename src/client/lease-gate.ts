import { performance } from "node:perf_hooks";
import { StaleTopologyError } from "../errors.js";
import type { CoordinatorTopology } from "../topology/coordinator.js";

/** What to do when the lease on the slot table has run out. */
export type StaleTopologyPolicy = "fail" | "serve";

/** Something waiting for a table it may be routed by: a command, or a pipeline's exec(). */
interface Held {
  readonly deadline: number;
  readonly go: () => void;
  readonly fail: (error: Error) => void;
}

/**
 * Stands in front of the router of a client that follows a coordinator
 * (DESIGN §4): while the lease holds, commands pass straight through; past it
 * they wait here, in order, for a fresh confirmation, and fail with a
 * StaleTopologyError when none comes within `waitMs`.
 */
export class LeaseGate {
  private held: Held[] = [];
  private timer: NodeJS.Timeout | null = null;
  private closedWith: Error | null = null;

  constructor(
    private readonly topology: CoordinatorTopology,
    private readonly policy: StaleTopologyPolicy,
    private readonly waitMs: number,
  ) {}

  /** True when a command may be routed now. */
  open(): boolean {
    if (this.closedWith !== null) return false;
    if (this.topology.fresh()) return true;
    // "serve": keep going with the last table, but never without one.
    return this.policy === "serve" && this.topology.table !== null;
  }

  /** Runs `go` once the gate opens, or `fail` when it does not open within waitMs (or the client closes). */
  hold(go: () => void, fail: (error: Error) => void): void {
    if (this.closedWith !== null) return fail(this.closedWith);
    this.held.push({ deadline: performance.now() + this.waitMs, go, fail });
    this.topology.refresh();
    this.arm();
  }

  /** The lease was renewed: everything held goes, in the order it came. */
  release(): void {
    if (this.held.length === 0 || !this.open()) return;
    const held = this.held;
    this.held = [];
    for (const entry of held) entry.go();
    this.disarm();
  }

  /** Fails everything held and everything later (quit/disconnect). */
  close(error: Error): void {
    this.closedWith = error;
    const held = this.held;
    this.held = [];
    for (const entry of held) entry.fail(error);
    this.disarm();
  }

  private arm(): void {
    if (this.timer !== null || this.held.length === 0) return;
    this.timer = setTimeout(() => this.expire(), Math.max(0, this.held[0]!.deadline - performance.now()));
    this.timer.unref();
  }

  private disarm(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private expire(): void {
    this.timer = null;
    const now = performance.now();
    let expired = 0;
    while (expired < this.held.length && this.held[expired]!.deadline <= now) expired++;
    const failed = this.held.splice(0, expired);
    if (failed.length > 0) {
      const version = this.topology.table?.version ?? 0;
      const why = this.topology.problem ?? "no fresh confirmation came from the coordinator";
      const error = new StaleTopologyError(
        version === 0
          ? `no slot table confirmed by the coordinator within ${this.waitMs} ms (${why}); nothing was sent`
          : `the lease on slot table version ${version} ran out and no fresh confirmation came within ${this.waitMs} ms (${why}); nothing was sent. ` +
            `Check the coordinator, or set onStaleTopology: 'serve' for data you can afford to lose`,
        version,
      );
      for (const entry of failed) entry.fail(error);
    }
    this.arm();
  }
}
