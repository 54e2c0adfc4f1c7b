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

/** "1=10.0.0.1:6379" or "1=10.0.0.1:6379,10.0.0.2:6379" (master first, then replicas). */
export function parseGroupSpec(text: string): GroupSpec {
  const match = /^([^=]*)=(.*)$/.exec(text);
  if (!match) throw new InvalidArgumentError(`expected <id>=<host:port>[,<replica host:port>...], got ${JSON.stringify(text)}`);
  const id = parseGroupId(match[1]!);
  const [master, ...replicas] = match[2]!.split(",").map((part) => parseHostPort(part.trim()));
  return replicas.length > 0 ? { id, master: master!, replicas } : { id, master: master! };
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
