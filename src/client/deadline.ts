import { performance } from "node:perf_hooks";
import type { Command } from "ioredis";
import { CommandTimeoutError } from "../errors.js";
import { slotOf } from "../slot.js";
import type { GroupPool } from "./pool.js";
import type { Route } from "./migration-route.js";
import { keysOf } from "./router.js";

/**
 * `commandTimeout` kept across the stages of one command (DESIGN §6,
 * "failing well"). ioredis arms a command's timeout when the command reaches
 * a connection, and arms it only once (`_commandTimeoutTimer`); shardis arms
 * it first, when a command is admitted to a group (so the error names the
 * group) or when it leaves a hold (lease gate, preparing slots) with the time
 * it has left, so a command never waits longer than commandTimeout in all.
 */

interface TimedCommand {
  _commandTimeoutTimer?: NodeJS.Timeout;
  isSettled?: boolean;
}

/** When a command must have failed (performance.now() ms), and its commandTimeout. */
export interface Deadline {
  readonly at: number;
  readonly timeoutMs: number;
}

/** Deadlines of commands that left a hold: split commands hand them to their parts. */
const deadlines = new WeakMap<Command, Deadline>();

/** True when the command's timeout is armed already. */
export function isArmed(command: Command): boolean {
  return (command as unknown as TimedCommand)._commandTimeoutTimer !== undefined;
}

/** Arms the command's timeout in `ms` unless one is armed; on expiry it rejects with `error()`. */
export function armTimeout(command: Command, ms: number, error: () => Error): void {
  const timed = command as unknown as TimedCommand;
  if (timed._commandTimeoutTimer !== undefined) return;
  timed._commandTimeoutTimer = setTimeout(() => {
    if (timed.isSettled !== true) command.reject(error());
  }, Math.max(0, ms));
}

/** Removes the command's timeout (its parts carry the deadline instead). */
export function disarm(command: Command): void {
  const timed = command as unknown as TimedCommand;
  if (timed._commandTimeoutTimer !== undefined) clearTimeout(timed._commandTimeoutTimer);
  delete timed._commandTimeoutTimer;
}

/**
 * A command left a hold with `deadline` (performance.now() ms): arm its
 * timeout for the time it has left, so ioredis does not start a fresh one.
 */
export function armUntil(command: Command, deadline: number, timeoutMs: number, pool: GroupPool): void {
  deadlines.set(command, { at: deadline, timeoutMs });
  armTimeout(command, deadline - performance.now(), () => timeoutErrorByKey(pool, command, timeoutMs));
}

/** The deadline a command brought from a hold, if any. */
export function deadlineOf(command: Command): Deadline | undefined {
  return deadlines.get(command);
}

/** Arms a part of a split command with its parent's deadline. */
export function armPart(part: Command, route: Route, deadline: Deadline): void {
  deadlines.set(part, deadline);
  armTimeout(part, deadline.at - performance.now(), () => routeTimeoutError(route, part.name, deadline.timeoutMs));
}

/** A CommandTimeoutError naming a route's group (for slots on the move, its target). */
export function routeTimeoutError(route: Route, command: string, timeoutMs: number, detail?: string): CommandTimeoutError {
  const address = (route as { address?: string }).address ?? "?";
  return new CommandTimeoutError(route.id, address, command, timeoutMs, detail);
}

/** The timeout error of a command, naming the group its keys route to now. */
function timeoutErrorByKey(pool: GroupPool, command: Command, timeoutMs: number): CommandTimeoutError {
  let route: Route = pool.defaultGroup;
  try {
    const keys = keysOf(command);
    if (keys.length > 0) route = pool.routes[slotOf(keys[0]!)] ?? route;
  } catch {
    // keep the default group
  }
  return routeTimeoutError(route, command.name, timeoutMs);
}
