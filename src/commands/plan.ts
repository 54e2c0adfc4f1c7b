import commandTable from "@ioredis/commands/built/commands.json";

/**
 * How a command is routed, derived once per command (and subcommand) from the
 * metadata that @ioredis/commands ships: key positions, and the request and
 * response policies Redis documents for each command. The only thing written
 * by hand here is the list of commands a sharded client refuses, and why.
 */
export type CommandPlan =
  /** Runs on the group owning its keys. `keyAt` ≥ 0: the one key is always args[keyAt]. -1: ask getKeyIndexes. */
  | { readonly kind: "keyed"; readonly keyAt: number }
  /** Keys (step 1) or key/value pairs (step 2) split per group, then merged. */
  | { readonly kind: "split"; readonly step: 1 | 2; readonly merge: SplitMerge }
  /** Sent to every group, replies combined. */
  | { readonly kind: "all-groups"; readonly combine: Combine }
  /** No key: sent to the default group (the first in the table). */
  | { readonly kind: "any-group" }
  /** SCAN with a cursor that walks every group in turn. */
  | { readonly kind: "scan" }
  /** Not run; `optIn` names the option that allows it. */
  | { readonly kind: "refused"; readonly reason: string; readonly optIn?: "allowKeys" | "allowFlush" };

/** ordered: arrays put back in key order (MGET); sum: counts added (DEL); ok: all parts must succeed (MSET). */
export type SplitMerge = "ordered" | "sum" | "ok";
/** first: the first group's reply once all succeeded; any: the first success; sum, min, and (element-wise), concat. */
export type Combine = "first" | "any" | "sum" | "min" | "and" | "concat";

interface CommandMeta {
  readonly flags: readonly string[];
  readonly keyStart: number;
  readonly keyStop: number;
  readonly step: number;
  readonly requestPolicy?: string;
  readonly responsePolicy?: string;
  readonly subcommands?: Readonly<Record<string, CommandMeta>>;
}

const META = commandTable as unknown as Readonly<Record<string, CommandMeta>>;

const CONNECTION_MODE =
  "it puts the connection in a special mode, which would stop routing for its group. " +
  "Use a dedicated ioredis connection, e.g. client.group(id).duplicate()";

/** Commands a sharded client refuses, and why. Keyed by lowercase name (or "name subcommand"). */
const REFUSED: Readonly<Record<string, Omit<Extract<CommandPlan, { kind: "refused" }>, "kind">>> = {
  select: { reason: "a sharded client has one logical database; set `db` in redisOptions instead" },
  move: { reason: "databases are not sharded; keep one database per cluster" },
  swapdb: { reason: "databases are not sharded; keep one database per cluster" },
  migrate: { reason: "moving keys between groups is the migrator's job (slot migration); use client.group(id) for raw access" },
  keys: { reason: "KEYS blocks every group while it runs; use scanStream(), or set allowKeys: true", optIn: "allowKeys" },
  flushdb: { reason: "it would erase every group; set allowFlush: true to fan it out", optIn: "allowFlush" },
  flushall: { reason: "it would erase every group; set allowFlush: true to fan it out", optIn: "allowFlush" },
  subscribe: { reason: CONNECTION_MODE },
  psubscribe: { reason: CONNECTION_MODE },
  ssubscribe: { reason: CONNECTION_MODE },
  unsubscribe: { reason: CONNECTION_MODE },
  punsubscribe: { reason: CONNECTION_MODE },
  sunsubscribe: { reason: CONNECTION_MODE },
  monitor: { reason: CONNECTION_MODE },
  multi: { reason: "use client.multi(), which checks that all keys share one slot" },
  exec: { reason: "use client.multi(...).exec()" },
  discard: { reason: "use client.multi(...).discard()" },
  auth: { reason: "credentials belong in redisOptions (username/password), so every group connection uses them" },
  hello: { reason: "the protocol is chosen per connection in redisOptions (protocol)" },
  reset: { reason: "it resets connection state that shardis manages; use client.group(id) for raw access" },
  quit: { reason: "use client.quit()" },
  cluster: { reason: "shardis groups are plain Redis servers, not Redis Cluster nodes" },
  readonly: { reason: "shardis groups are plain Redis servers, not Redis Cluster nodes" },
  readwrite: { reason: "shardis groups are plain Redis servers, not Redis Cluster nodes" },
  asking: { reason: "shardis groups are plain Redis servers, not Redis Cluster nodes" },
  sync: { reason: "replication is set up per group; use client.group(id) for raw access" },
  psync: { reason: "replication is set up per group; use client.group(id) for raw access" },
  replicaof: { reason: "replication is set up per group; use client.group(id) for raw access" },
  slaveof: { reason: "replication is set up per group; use client.group(id) for raw access" },
  failover: { reason: "failover is per group; use client.group(id) for raw access" },
  shutdown: { reason: "it stops one server; use client.group(id) for raw access" },
  publish: {
    reason:
      "channels are not sharded, so subscribers on other groups would miss the message; " +
      "publish on one chosen group with client.group(id).publish(...), or use SPUBLISH, which is routed by the channel's slot",
  },
  // Replies are matched to commands by order on a shared connection; turning them off would desynchronise it.
  "client reply": { reason: CONNECTION_MODE },
  // The migrator finds a client's connections by their name (DESIGN §5).
  "client setname": { reason: "shardis names every group connection shardis:<clientId>; choose the id with the clientId option" },
};

/** Combines replies of a command sent to every group, as Redis's response policy says. */
const COMBINE_BY_POLICY: Readonly<Record<string, Combine>> = {
  all_succeeded: "first",
  one_succeeded: "any",
  agg_sum: "sum",
  agg_min: "min",
  agg_logical_and: "and",
};

/** Commands whose state lives on every group's connection, so they must reach all groups. */
const ALL_GROUPS_EXTRA: Readonly<Record<string, Combine>> = { unwatch: "first" };

type CachedPlan = CommandPlan | "by-subcommand" | "unknown";
const plans = new Map<string, CachedPlan>();

/**
 * The plan for a command, or null when @ioredis/commands does not know it.
 * `firstArg` picks the subcommand of container commands (e.g. "load" for SCRIPT LOAD).
 */
export function planFor(name: string, firstArg: unknown): CommandPlan | null {
  let plan = plans.get(name);
  if (plan === undefined) {
    plan = derivePlan(name.toLowerCase(), undefined);
    // Unknown names are not cached: arbitrary user strings must not grow the cache.
    if (plan !== "unknown") plans.set(name, plan);
  }
  if (plan === "unknown") return null;
  if (plan !== "by-subcommand") return plan;
  const subcommand = typeof firstArg === "string" || firstArg instanceof Buffer ? String(firstArg).toLowerCase() : "";
  const cacheKey = `${name.toLowerCase()} ${subcommand}`;
  let sub = plans.get(cacheKey);
  if (sub === undefined) {
    sub = derivePlan(name.toLowerCase(), subcommand);
    // Cache known subcommands only: arbitrary user strings must not grow the cache.
    if (META[name.toLowerCase()]?.subcommands?.[subcommand]) plans.set(cacheKey, sub);
  }
  return sub === "unknown" || sub === "by-subcommand" ? null : sub;
}

/** True when @ioredis/commands knows the command. */
export function isKnownCommand(name: string): boolean {
  return Object.prototype.hasOwnProperty.call(META, name.toLowerCase());
}

function derivePlan(name: string, subcommand: string | undefined): CachedPlan {
  if (!Object.prototype.hasOwnProperty.call(META, name)) return "unknown";
  let meta = META[name]!;
  if (meta.subcommands) {
    if (subcommand === undefined) return "by-subcommand";
    const subMeta = Object.prototype.hasOwnProperty.call(meta.subcommands, subcommand) ? meta.subcommands[subcommand] : undefined;
    const refusedSub = REFUSED[`${name} ${subcommand}`];
    if (refusedSub) return { kind: "refused", ...refusedSub };
    if (!subMeta) return { kind: "any-group" }; // unknown subcommand: let the server answer
    meta = subMeta;
  }
  const refused = REFUSED[name];
  if (refused) return { kind: "refused", ...refused };
  if (ALL_GROUPS_EXTRA[name]) return { kind: "all-groups", combine: ALL_GROUPS_EXTRA[name]! };
  if (name === "scan") return { kind: "scan" };

  const movable = meta.flags.includes("movablekeys");
  const request = meta.requestPolicy;
  if (request === "multi_shard" && !movable && meta.keyStart === 1 && meta.keyStop === -1 && (meta.step === 1 || meta.step === 2)) {
    const merge: SplitMerge = meta.responsePolicy === "agg_sum" ? "sum" : meta.responsePolicy === "all_succeeded" ? "ok" : "ordered";
    return { kind: "split", step: meta.step, merge };
  }
  if (request === "all_shards" || request === "all_nodes") {
    const combine = meta.responsePolicy ? COMBINE_BY_POLICY[meta.responsePolicy] : undefined;
    if (combine) return { kind: "all-groups", combine };
    return { kind: "any-group" }; // "special" replies (INFO, RANDOMKEY, ...) come from one group
  }
  if (meta.step > 0 || movable) {
    // keyStart counts from the command name (for subcommands too), so args[keyStart - 1] is the key.
    const fixedSingleKey = !movable && meta.keyStart > 0 && meta.keyStart === meta.keyStop;
    return { kind: "keyed", keyAt: fixedSingleKey ? meta.keyStart - 1 : -1 };
  }
  return { kind: "any-group" };
}
