// Parsers for the CLI's arguments: pure functions from a string to a value,
// throwing commander's InvalidArgumentError (a usage error, exit code 2) with
// a message that says what was expected. No I/O here.
import { InvalidArgumentError } from "commander";
import { checkClusterName } from "../coordinator/keys.js";
import { SLOT_COUNT } from "../slot.js";
import { parseAddress, type GroupSpec } from "../topology/table.js";

/** An inclusive slot range, as `slots assign` takes it. */
export interface SlotSpan {
  readonly from: number;
  readonly to: number;
}

/** The prefix of a group given by its Sentinel master name: "2=sentinel:mymaster". */
export const SENTINEL_PREFIX = "sentinel:";

/**
 * "1=10.0.0.1:6379" or "1=10.0.0.1:6379,10.0.0.2:6379" (master first, then
 * replicas), or "2=sentinel:mymaster" (found through the table's sentinels;
 * "sentinel:" always means that, so a host named "sentinel" needs another name).
 */
export function parseGroupSpec(text: string): GroupSpec {
  const match = /^([^=]*)=(.*)$/.exec(text);
  if (!match) {
    throw new InvalidArgumentError(`expected <id>=<host:port>[,<replica host:port>...] or <id>=${SENTINEL_PREFIX}<name>, got ${JSON.stringify(text)}`);
  }
  const id = parseGroupId(match[1]!);
  const value = match[2]!.trim();
  if (value.startsWith(SENTINEL_PREFIX)) {
    const name = value.slice(SENTINEL_PREFIX.length);
    if (name.includes(",")) {
      throw new InvalidArgumentError(`group ${id} is named by Sentinel (${SENTINEL_PREFIX}<name>), so it lists no replicas: the sentinels know them; got ${JSON.stringify(text)}`);
    }
    return { id, sentinel: { name: parseSentinelName(name) } };
  }
  const [master, ...replicas] = value.split(",").map((part) => parseHostPort(part.trim()));
  return replicas.length > 0 ? { id, master: master!, replicas } : { id, master: master! };
}

/** Sentinel master names as the slot table takes them (src/topology/table.ts): what `sentinel monitor` accepts unquoted. */
const SENTINEL_NAME = /^[A-Za-z0-9._:-]{1,128}$/;

/** The name Sentinel monitors a group's master under, e.g. "mymaster". */
export function parseSentinelName(text: string): string {
  if (!SENTINEL_NAME.test(text)) {
    throw new InvalidArgumentError(`a Sentinel master name is 1-128 letters, digits, ".", "_", "-" or ":", got ${JSON.stringify(text)}`);
  }
  return text;
}

/** "host:port,host:port": one or more addresses, comma-separated (e.g. the Sentinels). */
export function parseHostPortList(text: string): string[] {
  return text.split(",").map((part) => parseHostPort(part.trim()));
}

/**
 * Why the table's groups and sentinels do not go together, in the command
 * line's words, or null when they do: a Sentinel-named group needs sentinels.
 */
export function missingSentinels(groups: readonly GroupSpec[], sentinels: readonly string[]): string | null {
  if (sentinels.length > 0) return null;
  const named = groups.filter((group) => group.sentinel !== undefined);
  if (named.length === 0) return null;
  const which = named.map((group) => `${group.id} (${SENTINEL_PREFIX}${group.sentinel!.name})`).join(", ");
  return `group ${which} ${named.length > 1 ? "are" : "is"} named by Sentinel: add --sentinels <host:port,...> (the Sentinels that watch ${named.length > 1 ? "them" : "it"})`;
}

/** What `group add` was given: a master address, or --sentinel (and replicas only with a master). */
export interface AddGroupArgs {
  readonly id: number;
  readonly master?: string | undefined;
  readonly replicas?: readonly string[] | undefined;
  readonly sentinel?: string | undefined;
}

/** The group `group add` adds, or an InvalidArgumentError when it got both or neither of <host:port> and --sentinel. */
export function addGroupSpec(args: AddGroupArgs): GroupSpec {
  const { id, master, sentinel } = args;
  const replicas = args.replicas ?? [];
  if (master !== undefined && sentinel !== undefined) {
    throw new InvalidArgumentError(`give group ${id} either its master <host:port> or --sentinel <name>, not both: the sentinels say where its master is`);
  }
  if (sentinel !== undefined) {
    if (replicas.length > 0) throw new InvalidArgumentError(`--replica does not go with --sentinel: the sentinels know the replicas of ${sentinel}`);
    return { id, sentinel: { name: sentinel } };
  }
  if (master === undefined) throw new InvalidArgumentError(`missing group ${id}'s master: give its <host:port>, or --sentinel <name> for a Sentinel-named group`);
  return replicas.length > 0 ? { id, master, replicas: [...replicas] } : { id, master };
}

/** A positive integer group id. */
export function parseGroupId(text: string): number {
  const id = /^\d+$/.test(text.trim()) ? Number(text.trim()) : NaN;
  if (!Number.isSafeInteger(id) || id < 1) throw new InvalidArgumentError(`a group id is a positive integer, got ${JSON.stringify(text)}`);
  return id;
}

/** "host:port" (IPv6 as "[::1]:6379"). */
export function parseHostPort(text: string): string {
  try {
    parseAddress(text, "an address");
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
  return text;
}

/** "0-99,512,600..700": slots and inclusive ranges, comma-separated. */
export function parseSlotList(text: string): SlotSpan[] {
  const parts = text.split(",").map((part) => part.trim());
  return parts.map((part) => {
    const match = /^(\d+)(?:(?:-|\.\.)(\d+))?$/.exec(part);
    if (!match) throw new InvalidArgumentError(`expected slots like 0-99,512 (each 0..${SLOT_COUNT - 1}), got ${JSON.stringify(part)}`);
    const from = Number(match[1]);
    const to = match[2] === undefined ? from : Number(match[2]);
    for (const slot of [from, to]) {
      if (slot >= SLOT_COUNT) throw new InvalidArgumentError(`slot ${slot} is out of range: slots are 0..${SLOT_COUNT - 1}`);
    }
    if (from > to) throw new InvalidArgumentError(`slot range ${part} goes backwards (${from} is after ${to})`);
    return { from, to };
  });
}

/** "2=3": group 2 gets weight 3 (a number >= 0; 0 drains the group). */
export function parseWeight(text: string): [group: number, weight: number] {
  const match = /^([^=]*)=(.*)$/.exec(text);
  if (!match) throw new InvalidArgumentError(`expected <group id>=<weight>, got ${JSON.stringify(text)}`);
  const weight = /^\d+(\.\d+)?$/.test(match[2]!.trim()) ? Number(match[2]) : NaN;
  if (!Number.isFinite(weight)) throw new InvalidArgumentError(`a weight is a number >= 0 (0 drains the group), got ${JSON.stringify(match[2])}`);
  return [parseGroupId(match[1]!), weight];
}

/** An integer in [min, max]; `name` is the option, for the message. */
export function parseInteger(name: string, text: string, min: number, max: number): number {
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(text)}`);
  }
  return n;
}

/** A number of milliseconds (fractions allowed: "0.5") in (min, max] when `exclusiveMin`, else [min, max]. */
export function parseMs(name: string, text: string, min: number, max: number, exclusiveMin = false): number {
  const n = /^\d+(\.\d+)?$/.test(text) ? Number(text) : NaN;
  if (!Number.isFinite(n) || (exclusiveMin ? n <= min : n < min) || n > max) {
    throw new InvalidArgumentError(`${name} must be a number of ms ${exclusiveMin ? "above" : "from"} ${min}${exclusiveMin ? " and at most" : " to"} ${max}, got ${JSON.stringify(text)}`);
  }
  return n;
}

/**
 * --wait-replicas: "auto", or how many replicas of the receiving group must
 * confirm moved keys before the source's copies are deleted (0: a plain MIGRATE).
 */
export function parseWaitReplicas(text: string): number | "auto" {
  const value = text.trim();
  if (value.toLowerCase() === "auto") return "auto";
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n)) {
    throw new InvalidArgumentError(
      `--wait-replicas must be "auto" or a number of replicas >= 0 (0: a plain MIGRATE, without waiting for replicas), got ${JSON.stringify(text)}`,
    );
  }
  return n;
}

/** A coordinator URL: redis://… or rediss://… */
export function parseCoordinatorUrl(text: string): string {
  if (!/^rediss?:\/\/\S*$/.test(text)) {
    throw new InvalidArgumentError(`the coordinator is a redis:// or rediss:// URL, e.g. redis://127.0.0.1:6379, got ${JSON.stringify(text)}`);
  }
  return text;
}

/** A cluster name: letters, digits, ".", "_" and "-", at most 64. */
export function parseClusterName(text: string): string {
  try {
    return checkClusterName(text);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}

/** For repeatable options: collects every value, parsed, in order. */
export function collect<T>(parse: (text: string) => T): (text: string, previous: T[] | undefined) => T[] {
  return (text, previous) => [...(previous ?? []), parse(text)];
}

/** For repeatable options whose values are lists: collects every item of every value, parsed, in order. */
export function collectAll<T>(parse: (text: string) => T[]): (text: string, previous: T[] | undefined) => T[] {
  return (text, previous) => [...(previous ?? []), ...parse(text)];
}
