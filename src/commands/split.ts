import type { Combine, SplitMerge } from "./plan.js";

/** A command argument after ioredis has flattened and stringified it. */
export type Arg = string | Buffer;

/** One group's share of a split command. */
export interface SplitPart<G> {
  readonly group: G;
  /** The arguments to send to this group: its keys, with their values when step is 2. */
  readonly args: Arg[];
  /** For each key in `args`, its position among the original command's keys. */
  readonly positions: number[];
}

/**
 * Splits a multi-key command (keys, or key/value pairs when step is 2) by the
 * group that owns each key, keeping values beside their keys. Parts come in
 * order of first appearance; a command whose keys all live in one group gives
 * one part. Throws rather than guess when the arguments do not fit the layout.
 */
export function splitByGroup<G>(args: readonly Arg[], step: 1 | 2, groupOf: (key: Arg) => G): SplitPart<G>[] {
  if (args.length % step !== 0) {
    throw new RangeError(`expected key/value pairs, got an odd number of arguments (${args.length})`);
  }
  const parts: SplitPart<G>[] = [];
  const byGroup = new Map<G, SplitPart<G>>();
  for (let i = 0; i < args.length; i += step) {
    const group = groupOf(args[i]!);
    let part = byGroup.get(group);
    if (part === undefined) {
      part = { group, args: [], positions: [] };
      byGroup.set(group, part);
      parts.push(part);
    }
    part.args.push(args[i]!);
    if (step === 2) part.args.push(args[i + 1]!);
    part.positions.push(i / step);
  }
  return parts;
}

/** Merges the replies of a split command's parts into the reply the whole command would give. */
export function mergeSplitReplies(merge: SplitMerge, parts: readonly { positions: readonly number[] }[], replies: readonly unknown[]): unknown {
  switch (merge) {
    case "ordered": {
      const total = parts.reduce((n, p) => n + p.positions.length, 0);
      const merged: unknown[] = new Array(total);
      parts.forEach((part, i) => {
        const reply = replies[i];
        if (!Array.isArray(reply) || reply.length !== part.positions.length) {
          throw new TypeError(`a part of a split command replied ${describeReply(reply)} for ${part.positions.length} keys`);
        }
        part.positions.forEach((position, j) => (merged[position] = reply[j]));
      });
      return merged;
    }
    case "sum":
      return sumReplies(replies);
    case "ok":
      return replies[0];
  }
}

/** Combines the replies of a command sent to every group. */
export function combineReplies(combine: Exclude<Combine, "any">, replies: readonly unknown[]): unknown {
  switch (combine) {
    case "first":
      return replies[0];
    case "sum":
      return sumReplies(replies);
    case "min":
      return replies.reduce((min: number, r) => Math.min(min, toNumber(r)), Infinity);
    case "and": {
      const first = replies[0];
      if (!Array.isArray(first)) throw new TypeError(`expected an array reply, got ${describeReply(first)}`);
      return first.map((_, i) => (replies.every((r) => Array.isArray(r) && toNumber(r[i]) !== 0) ? 1 : 0));
    }
    case "concat":
      return replies.flatMap((r) => {
        if (!Array.isArray(r)) throw new TypeError(`expected an array reply, got ${describeReply(r)}`);
        return r;
      });
  }
}

function sumReplies(replies: readonly unknown[]): number | string {
  let sum = 0;
  for (const r of replies) sum += toNumber(r);
  // With ioredis' stringNumbers option, integer replies are strings: answer in kind.
  return replies.some((r) => typeof r === "string" || Buffer.isBuffer(r)) ? String(sum) : sum;
}

function toNumber(reply: unknown): number {
  if (typeof reply === "number") return reply;
  if (typeof reply === "bigint") return Number(reply);
  if ((typeof reply === "string" || Buffer.isBuffer(reply)) && /^-?\d+$/.test(String(reply))) return Number(String(reply));
  throw new TypeError(`expected an integer reply, got ${describeReply(reply)}`);
}

function describeReply(reply: unknown): string {
  return Array.isArray(reply) ? `an array of ${reply.length}` : typeof reply;
}
