import { performance } from "node:perf_hooks";
import { Command } from "ioredis";
import createDebug from "debug";
import { slotOf } from "../slot.js";
import type { Arg } from "../commands/split.js";
import { keysOf } from "./router.js";
import type { GroupConnection } from "./group-connection.js";

const debug = createDebug("shardis:blocking");

/** Where a blocking command keeps its timeout: an argument index (negative: from the end), and its unit. */
interface TimeoutAt {
  readonly index: number;
  readonly unit: "s" | "ms";
}

const LAST_SECONDS: TimeoutAt = { index: -1, unit: "s" };
const FIRST_SECONDS: TimeoutAt = { index: 0, unit: "s" };
const TIMEOUT_ARG: Record<string, TimeoutAt> = {
  blpop: LAST_SECONDS,
  brpop: LAST_SECONDS,
  bzpopmin: LAST_SECONDS,
  bzpopmax: LAST_SECONDS,
  blmove: LAST_SECONDS,
  brpoplpush: LAST_SECONDS,
  blmpop: FIRST_SECONDS,
  bzmpop: FIRST_SECONDS,
};

/**
 * Where `command`'s block timeout is, or null when it does not block
 * (XREAD/XREADGROUP block only with a BLOCK option).
 */
export function blockTimeoutOf(name: string, args: readonly Arg[]): { index: number; unit: "s" | "ms" } | null {
  const at = TIMEOUT_ARG[name];
  if (at !== undefined) {
    const index = at.index < 0 ? args.length + at.index : at.index;
    return index >= 0 && index < args.length ? { index, unit: at.unit } : null;
  }
  if (name === "xread" || name === "xreadgroup") {
    const block = args.findIndex((arg) => String(arg).toUpperCase() === "BLOCK");
    return block >= 0 && block + 1 < args.length ? { index: block + 1, unit: "ms" } : null;
  }
  return null;
}

/** The arguments with the block timeout lowered by `elapsedMs`; null when no time is left (0 means "forever" and stays). */
export function argsWithTimeLeft(args: readonly Arg[], at: { index: number; unit: "s" | "ms" }, elapsedMs: number): Arg[] | null {
  const given = Number(String(args[at.index]));
  if (!Number.isFinite(given) || given < 0) return null;
  if (given === 0) return [...args];
  const givenMs = at.unit === "s" ? given * 1000 : given;
  const leftMs = givenMs - elapsedMs;
  if (leftMs < 5) return null;
  const next = [...args];
  next[at.index] = at.unit === "s" ? (leftMs / 1000).toFixed(3) : String(Math.ceil(leftMs));
  return next;
}

interface Blocked {
  readonly command: Command;
  readonly group: GroupConnection;
  readonly slot: number;
  readonly startedAt: number;
  readonly timeoutAt: { index: number; unit: "s" | "ms" };
  unblocked: boolean;
}

/**
 * Blocking commands (BLPOP, ...) of a client that follows a coordinator.
 * When the slot of one that is blocked starts to move, it is unblocked
 * (`CLIENT UNBLOCK ... TIMEOUT` from another connection, DESIGN §5) and sent
 * again through the router, with the time it had left; its caller sees one
 * command.
 */
export class BlockingCommands {
  private readonly blocked = new Set<Blocked>();

  constructor(
    private readonly clientId: string,
    /** Routes a command by the table current now. */
    private readonly reroute: (command: Command) => void,
  ) {}

  /** True for a command that may block: send it through send(). */
  static blocks(command: Command): boolean {
    return blockTimeoutOf(command.name, command.args as Arg[]) !== null;
  }

  /** Sends a blocking command to `group`, remembering it until it answers. */
  send(group: GroupConnection, command: Command): void {
    const timeoutAt = blockTimeoutOf(command.name, command.args as Arg[])!;
    const keys = keysOf(command);
    const entry: Blocked = { command, group, slot: keys.length > 0 ? slotOf(keys[0]!) : -1, startedAt: performance.now(), timeoutAt, unblocked: false };
    this.blocked.add(entry);
    const resolve = command.resolve;
    const reject = command.reject;
    command.resolve = (value: unknown) => {
      this.blocked.delete(entry);
      if (entry.unblocked && value === null) return this.sendAgain(entry, resolve, reject);
      resolve(value);
    };
    command.reject = (error: Error) => {
      this.blocked.delete(entry);
      reject(error);
    };
    group.send(command);
  }

  /**
   * Unblocks the commands blocked on slots that `changed` marks (1), so the
   * drain of the old table does not wait for their timeouts.
   */
  async unblock(changed: Uint8Array): Promise<void> {
    const byGroup = new Map<GroupConnection, Blocked[]>();
    for (const entry of this.blocked) {
      if (entry.slot < 0 || changed[entry.slot] !== 1 || entry.unblocked) continue;
      entry.unblocked = true;
      byGroup.set(entry.group, [...(byGroup.get(entry.group) ?? []), entry]);
    }
    await Promise.all([...byGroup.keys()].map((group) => this.unblockOn(group)));
  }

  private async unblockOn(group: GroupConnection): Promise<void> {
    // The blocked connection cannot send anything itself: a short-lived one does.
    const control = group.redis.duplicate({ lazyConnect: false, connectionName: `shardis:${this.clientId}:control`, enableOfflineQueue: true, maxRetriesPerRequest: 1 });
    control.on("error", (error: Error) => debug("control connection to group %d: %s", group.id, error.message));
    try {
      const list = String(await control.client("LIST"));
      const name = `name=shardis:${this.clientId} `;
      for (const line of list.split("\n")) {
        if (!line.includes(name)) continue;
        const id = /\bid=(\d+)/.exec(line)?.[1];
        if (id !== undefined) await control.call("CLIENT", "UNBLOCK", id, "TIMEOUT");
      }
    } catch (error) {
      debug("unblocking on group %d failed: %s", group.id, (error as Error).message);
    } finally {
      control.disconnect();
    }
  }

  private sendAgain(entry: Blocked, resolve: (value: unknown) => void, reject: (error: Error) => void): void {
    const args = argsWithTimeLeft(entry.command.args as Arg[], entry.timeoutAt, performance.now() - entry.startedAt);
    if (args === null) return resolve(null); // its time was up anyway
    const again = new Command(entry.command.name, NO_ARGS, { replyEncoding: null });
    again.args = args;
    again.stringifyArguments();
    debug("%s sent again with its time left", entry.command.name);
    (again.promise as Promise<unknown>).then(resolve, reject);
    this.reroute(again);
  }
}

const NO_ARGS: Arg[] = [];
