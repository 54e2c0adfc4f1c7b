import { Command } from "ioredis";
import { slotOf } from "../slot.js";
import { planFor, type Combine, type SplitMerge } from "../commands/plan.js";
import { splitByGroup, mergeSplitReplies, combineReplies, type Arg, type SplitPart } from "../commands/split.js";
import {
  ArgumentError,
  CommandNotAllowedError,
  CrossSlotError,
  PartialFailureError,
  UnknownCommandError,
  type GroupOutcome,
} from "../errors.js";
import type { GroupPool } from "./pool.js";
import type { Route } from "./migration-route.js";
import { armPart, deadlineOf, disarm } from "./deadline.js";

/**
 * Where a routed command goes: straight to the socket, or into a per-group
 * pipeline. `group` is a group's connection, or a migration's route for
 * slots that are moving.
 */
export type Dispatch = (group: Route, command: Command) => void;

export interface RouterOptions {
  readonly allowKeys: boolean;
  readonly allowFlush: boolean;
  /**
   * With `readFrom` other than 'master': turns a routed command's route into
   * a replica's connection when the replica may serve it (DESIGN §3.6).
   * Pipelines apply it to their own dispatch; undefined when reads go to masters.
   */
  readonly readRoute?: ((route: Route, command: Command) => Route) | undefined;
}

/**
 * Routes one ioredis Command by the slot table: to the group owning its keys,
 * split over groups (MGET, MSET, DEL, ...), fanned out to all groups (PING,
 * DBSIZE, ...), or rejected with a typed error before anything is sent.
 */
export function routeCommand(pool: GroupPool, options: RouterOptions, command: Command, dispatch: Dispatch): void {
  const args = command.args as Arg[];
  const plan = planFor(command.name, args[0]);
  if (plan === null) return command.reject(new UnknownCommandError(command.name));
  switch (plan.kind) {
    case "keyed": {
      if (plan.keyAt >= 0) {
        // Fast path: one key at a fixed position (GET, SET, HSET, ...).
        // With one group owning every slot there is nothing to hash.
        const key = args[plan.keyAt];
        return dispatch(key === undefined ? pool.defaultGroup : (pool.soleOwner ?? pool.routes[slotOf(key)]!), command);
      }
      let slot: number;
      try {
        slot = slotOfAll(command);
      } catch (error) {
        return command.reject(error as Error);
      }
      return dispatch(slot < 0 ? pool.defaultGroup : pool.routes[slot]!, command);
    }
    case "split":
      return routeSplit(pool, command, args, plan.step, plan.merge, dispatch);
    case "all-groups":
      return fanOut(pool, command, plan.combine, dispatch);
    case "any-group":
      // No key (or a missing one): the default group answers, and Redis reports arity errors itself.
      return dispatch(pool.defaultGroup, command);
    case "scan":
      return routeScan(pool, command, args, dispatch);
    case "refused":
      if (plan.optIn !== undefined && options[plan.optIn]) {
        return fanOut(pool, command, plan.optIn === "allowKeys" ? "concat" : "first", dispatch);
      }
      return command.reject(new CommandNotAllowedError(command.name, plan.reason));
  }
}

/**
 * The one slot all of a command's keys share, or -1 when it has none.
 * Throws CrossSlotError when they differ: such a command is atomic on one server.
 */
function slotOfAll(command: Command): number {
  const keys = keysOf(command);
  if (keys.length === 0) return -1;
  const slot = slotOf(keys[0]!);
  for (let i = 1; i < keys.length; i++) {
    if (slotOf(keys[i]!) !== slot) throw new CrossSlotError(command.name, keys, keys.map(slotOf));
  }
  return slot;
}

function routeSplit(pool: GroupPool, command: Command, args: Arg[], step: 1 | 2, merge: SplitMerge, dispatch: Dispatch): void {
  if (pool.soleOwner !== null) return dispatch(pool.soleOwner, command); // no need to hash every key
  let parts: SplitPart<Route>[];
  try {
    parts = splitByGroup(args, step, (key) => pool.routes[slotOf(key)]!);
  } catch {
    parts = []; // malformed (e.g. MSET with a key and no value): let Redis report it
  }
  if (parts.length <= 1) return dispatch(parts[0]?.group ?? pool.defaultGroup, command);
  runParts(
    command,
    parts.map((part) => ({ group: part.group, command: subCommand(command, part.args) })),
    (replies) => mergeSplitReplies(merge, parts, replies),
    dispatch,
  );
}

function fanOut(pool: GroupPool, command: Command, combine: Combine, dispatch: Dispatch): void {
  const args = command.args as Arg[];
  const groups = pool.all();
  if (groups.length === 1) return dispatch(groups[0]!, command);
  const parts = groups.map((group) => ({ group, command: subCommand(command, args.slice()) }));
  if (combine === "any") return runParts(command, parts, (replies) => replies[0], dispatch, true);
  runParts(command, parts, (replies) => combineReplies(combine, replies), dispatch);
}

/**
 * SCAN over every group in turn with one cursor: the composite cursor is
 * `inner * groupCount + groupIndex` (decimal), and "0" both starts and ends.
 */
function routeScan(pool: GroupPool, command: Command, args: Arg[], dispatch: Dispatch): void {
  const groups = pool.all();
  const count = BigInt(groups.length);
  let composite: bigint;
  try {
    composite = BigInt(String(args[0] ?? ""));
    if (composite < 0n) throw new RangeError();
  } catch {
    return command.reject(new ArgumentError(`invalid SCAN cursor ${JSON.stringify(String(args[0]))}: pass "0" to start, then the cursor each reply returns`));
  }
  const index = Number(composite % count);
  const inner = composite / count;
  const part = subCommand(command, [inner.toString(), ...args.slice(1)]);
  runParts(
    command,
    [{ group: groups[index]!, command: part }],
    ([reply]) => {
      const [next, keys] = reply as [Buffer | string, unknown[]];
      const nextInner = BigInt(String(next));
      const nextComposite =
        nextInner !== 0n ? nextInner * count + BigInt(index) : index + 1 < groups.length ? BigInt(index + 1) : 0n;
      // Raw like the parts: the parent decodes it (a string for SCAN, a Buffer for scanBuffer).
      return [Buffer.from(nextComposite.toString()), keys];
    },
    dispatch,
  );
}

const NO_ARGS: Arg[] = [];

function subCommand(parent: Command, args: Arg[]): Command {
  // Raw replies (replyEncoding null): the parent decodes the merged reply once, as it would its own.
  const command = new Command(parent.name, NO_ARGS, { replyEncoding: null });
  // The parent's arguments are flat and stringified already; the constructor's
  // args.flat() costs ~0.25 µs per argument, so hand them over as they are.
  command.args = args;
  command.stringifyArguments(); // marks Buffer arguments, as the constructor does
  return command;
}

/**
 * Sends the parts, then settles the parent command once all have answered:
 * with the merged reply, or with a PartialFailureError saying which groups
 * failed and which succeeded. With `anySuccess`, one success is enough.
 */
function runParts(
  parent: Command,
  parts: { group: Route; command: Command }[],
  merge: (replies: unknown[]) => unknown,
  dispatch: Dispatch,
  anySuccess = false,
): void {
  const outcomes: GroupOutcome[] = new Array(parts.length);
  let pending = parts.length;
  // A command that left a hold with a deadline hands it to its parts: they fail by it, and the parent with them.
  const deadline = deadlineOf(parent);
  if (deadline !== undefined) disarm(parent);
  const settle = () => {
    if (--pending > 0) return;
    const ok = outcomes.filter((o) => o.error === undefined);
    const first = outcomes[0]!.error;
    if (ok.length === 0 && first?.name === "ReplyError" && outcomes.every((o) => o.error?.message === first.message)) {
      // Every group gave Redis's same answer (e.g. an arity error): that is the answer, as on one server.
      parent.reject(first);
      return;
    }
    if (anySuccess ? ok.length === 0 : ok.length !== outcomes.length) {
      // A single part's own error (e.g. a wrong SCAN option) is clearer on its own.
      parent.reject(outcomes.length === 1 ? outcomes[0]!.error! : new PartialFailureError(parent.name, outcomes));
      return;
    }
    try {
      parent.resolve(merge((anySuccess ? ok : outcomes).map((o) => o.result)));
    } catch (error) {
      parent.reject(error as Error);
    }
  };
  parts.forEach(({ group, command }, i) => {
    command.promise.then(
      (result: unknown) => {
        outcomes[i] = { group: group.id, result };
        settle();
      },
      (error: Error) => {
        outcomes[i] = { group: group.id, error };
        settle();
      },
    );
    if (deadline !== undefined) armPart(command, group, deadline);
    dispatch(group, command);
  });
}

/**
 * The command's keys, without the missing ones of a call with too few
 * arguments (Redis reports those). ioredis' getKeys() writes every key index
 * back into args, which pads args with `undefined` when a key is missing;
 * that padding is undone so the command goes out as the caller wrote it.
 */
export function keysOf(command: Command): Arg[] {
  const argc = command.args.length;
  const keys = (command.getKeys() as (Arg | undefined)[]).filter((key): key is Arg => key !== undefined);
  if (command.args.length > argc) command.args.length = argc;
  return keys;
}
