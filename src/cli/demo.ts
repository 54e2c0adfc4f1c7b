// `shardis demo`: starts throwaway redis-server processes (a coordinator and
// N groups), routes a bounded load through one ShardedRedis that follows the
// coordinator, moves slots to the last group while the load runs (a live
// migration), and proves from the servers' own data that every acknowledged
// INCR was counted exactly once and every key sits on the group that owns its
// slot. Uses only the public API (../index.js, ../admin, ../testing).
import { performance } from "node:perf_hooks";
import type { Command } from "commander";
import { ShardedRedis, slotOf } from "../index.js";
import { ShardisAdmin, type MigrationReport } from "../admin/index.js";
import { evenSlotRanges } from "../topology/table.js";
import { RedisServerNotFoundError, startRedisServers, type RedisServer } from "../testing/index.js";
import { parseInteger } from "./args.js";
import type { CliContext } from "./context.js";

export interface DemoOptions {
  /** Number of redis-server groups to start. */
  groups: number;
  /** Number of INCRs to send (MSET/MGET batches come on top). */
  ops: number;
  /** Where progress and results go, one line at a time. */
  log: (line: string) => void;
  /** The load stops taking new operations after this. @default 20000 */
  timeLimitMs?: number;
}

const MAX_IN_FLIGHT = 64;
const MAX_COUNTERS = 1000;
/** One MSET + MGET batch after every BATCH_EVERY INCRs. */
const BATCH_EVERY = 100;
const BATCH_KEYS = 20;
const TIME_LIMIT_MS = 20_000;
const COMMAND_TIMEOUT_MS = 5000;
const QUIT_TIMEOUT_MS = 2000;

type Log = DemoOptions["log"];

export function registerDemo(program: Command, ctx: CliContext): void {
  program
    .command("demo")
    .summary("route a load over N local groups, move slots live, check nothing is lost")
    .description(
      "start a local coordinator and N redis-server groups on free loopback ports, send --ops INCRs plus MSET/MGET batches " +
        "through one ShardedRedis while slots move to the last group (a live migration), and check that every acknowledged " +
        "write is counted. Needs redis-server on PATH (or SHARDIS_REDIS_SERVER)",
    )
    // It starts its own servers and needs no coordinator: the global options do not apply.
    .configureHelp({ showGlobalOptions: false })
    .option("--groups <n>", "number of groups, 1-16", (text: string) => parseInteger("--groups", text, 1, 16), 3)
    .option("--ops <n>", "number of INCRs", (text: string) => parseInteger("--ops", text, 1, 10_000_000), 20_000)
    .action(async (options: { groups: number; ops: number }) => {
      ctx.exitCode = await runDemo({ groups: options.groups, ops: options.ops, log: ctx.out });
    });
}

interface LoadResult {
  /** INCRs that Redis acknowledged. */
  acked: number;
  /** MSET + MGET batches that completed. */
  batches: number;
  /** Batches whose MGET did not read back what their MSET wrote. */
  batchMismatches: number;
  /** The first failed command; the load stops there. */
  error: Error | undefined;
  stoppedBy: "time limit" | "signal" | "error" | undefined;
  seconds: number;
  /** INCRs acknowledged while the migration ran. */
  ackedDuringMigration: number;
}

const CLUSTER = "demo";

/** Runs the demo; resolves to the process exit code (0 ok, 1 failed, 130 interrupted). */
export async function runDemo(options: DemoOptions): Promise<number> {
  const { log } = options;
  const abort = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    log(`\n${signal}: stopping the load and the servers`);
    abort.abort();
  };
  // shardis/testing kills its servers on SIGINT/SIGTERM; with this listener
  // installed it leaves the process alive, so the demo can clean up and exit 130.
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  let servers: RedisServer[] = [];
  let client: ShardedRedis | undefined;
  let admin: ShardisAdmin | undefined;
  try {
    log(`starting a coordinator and ${options.groups} redis-server groups on free loopback ports...`);
    const [coordinator, ...groupServers] = await startRedisServers(options.groups + 1);
    servers = [coordinator!, ...groupServers];
    log(`coordinator: ${coordinator!.address}`);
    log(`servers: ${groupServers.map((server) => server.address).join(" ")}`);
    if (abort.signal.aborted) return 130;
    const groups = groupServers.map((server, i) => ({ id: i + 1, master: server.address }));
    admin = new ShardisAdmin({ coordinator: `redis://${coordinator!.address}`, cluster: CLUSTER });
    // The last group starts empty: the live migration gives it its share while the load runs.
    const owners = groups.length > 1 ? groups.slice(0, -1) : groups;
    await admin.initCluster({ groups, slots: evenSlotRanges(owners.map((g) => g.id)) });
    log(`cluster ${CLUSTER}: ${owners.length} group(s) own the slots${groups.length > 1 ? `; group ${groups.length} starts empty` : ""}`);
    client = new ShardedRedis({
      coordinator: `redis://${coordinator!.address}`,
      cluster: CLUSTER,
      refreshMs: 200,
      // disconnectTimeout: once the servers are gone (Ctrl-C), ioredis would otherwise
      // keep the process alive for 2 s waiting for sockets that already closed.
      redisOptions: { commandTimeout: COMMAND_TIMEOUT_MS, disconnectTimeout: 200 },
    });
    client.on("error", () => {}); // a failed command stops the load and is reported below
    await client.connect();
    return await demonstrate(client, admin, groups.length, options, abort.signal);
  } catch (error) {
    if (abort.signal.aborted) return 130;
    if (error instanceof RedisServerNotFoundError) log(error.message);
    else log(`FAILED: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    if (client !== undefined) await closeClient(client, abort.signal.aborted);
    await admin?.close().catch(() => undefined);
    await Promise.all(servers.map((server) => server.stop()));
    if (servers.length > 0) log(`stopped ${servers.length} redis-server processes`);
  }
}

async function demonstrate(client: ShardedRedis, admin: ShardisAdmin, groupCount: number, options: DemoOptions, signal: AbortSignal): Promise<number> {
  const { log } = options;
  const counters = Math.min(MAX_COUNTERS, options.ops);
  log(`sending ${options.ops} INCRs over ${counters} counter keys, plus MSET/MGET batches, at most ${MAX_IN_FLIGHT} in flight`);
  const expected = new Uint32Array(counters);
  const timeLimitMs = options.timeLimitMs ?? TIME_LIMIT_MS;
  const migration: { running: boolean; reports: MigrationReport[]; error: Error | undefined } = { running: false, reports: [], error: undefined };
  const progress = { acked: 0, done: false };
  const load = runLoad(client, options.ops, timeLimitMs, expected, signal, migration, progress).finally(() => (progress.done = true));
  let migrated: Promise<void> = Promise.resolve();
  if (groupCount > 1) {
    // Once a tenth of the load is acknowledged, rebalance onto every group: slots move to the empty one while writes go on.
    await untilOrAborted(() => progress.acked >= options.ops / 10 || progress.done, signal);
    migration.running = true;
    log(`migrating: rebalancing the slots over all ${groupCount} groups while the load runs...`);
    migrated = admin
      .rebalance({ signal, ackTimeoutMs: 10_000 })
      .then((reports) => void migration.reports.push(...reports))
      .catch((error: Error) => void (migration.error = error))
      .finally(() => (migration.running = false));
  }
  const [result] = await Promise.all([load, migrated]);
  if (result.stoppedBy === "signal" || signal.aborted) return 130;
  const commands = result.acked + 2 * result.batches;
  log(
    `load: ${result.acked} INCRs and ${result.batches} MSET/MGET batches of ${BATCH_KEYS} keys in ` +
      `${result.seconds.toFixed(2)} s (${Math.round(commands / result.seconds)} commands/s)` +
      (result.stoppedBy === "time limit" ? `; stopped early by the ${timeLimitMs / 1000} s time limit` : ""),
  );
  if (migration.error !== undefined) {
    log(`FAILED: the migration failed: ${migration.error.message}`);
    return 1;
  }
  if (groupCount > 1) {
    const moved = migration.reports.reduce((n, r) => n + r.moved, 0);
    const slots = migration.reports.reduce((n, r) => n + r.slots.reduce((m, [a, b]) => m + b - a + 1, 0), 0);
    log(`migration: ${slots} slots in ${migration.reports.length} moves, ${moved} keys moved; ${result.ackedDuringMigration} INCRs acknowledged while it ran`);
  }
  if (result.error !== undefined) {
    log(`FAILED: a command failed, so the load stopped: ${result.error.message}`);
    return 1;
  }
  const misplaced = await printGroups(client, log);
  return verify(client, expected, result, misplaced, log);
}

/** Resolves once `ready()` is true (checked every 10 ms) or the signal aborts. */
function untilOrAborted(ready: () => boolean, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setInterval(() => {
      if (!ready() && !signal.aborted) return;
      clearInterval(timer);
      resolve();
    }, 10);
  });
}

async function runLoad(
  client: ShardedRedis,
  ops: number,
  timeLimitMs: number,
  expected: Uint32Array,
  signal: AbortSignal,
  migration: { readonly running: boolean },
  progress: { acked: number },
): Promise<LoadResult> {
  const started = performance.now();
  const deadline = started + timeLimitMs;
  const result: LoadResult = { acked: 0, batches: 0, batchMismatches: 0, error: undefined, stoppedBy: undefined, seconds: 0, ackedDuringMigration: 0 };
  let next = 0;
  const worker = async () => {
    while (next < ops && result.stoppedBy === undefined) {
      if (signal.aborted) result.stoppedBy = "signal";
      else if (performance.now() > deadline) result.stoppedBy = "time limit";
      if (result.stoppedBy !== undefined) return;
      const i = next++;
      const counter = i % expected.length;
      try {
        await client.incr(counterKey(counter));
        result.acked++;
        progress.acked++;
        if (migration.running) result.ackedDuringMigration++;
        expected[counter]!++;
        if (i % BATCH_EVERY === BATCH_EVERY - 1) await batch(client, i, result);
      } catch (error) {
        result.error ??= error as Error;
        result.stoppedBy ??= signal.aborted ? "signal" : "error";
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(MAX_IN_FLIGHT, ops) }, worker));
  result.seconds = (performance.now() - started) / 1000;
  return result;
}

/** MSET of fresh keys (split over the groups), then MGET them back (merged in key order). */
async function batch(client: ShardedRedis, i: number, result: LoadResult): Promise<void> {
  const keys = Array.from({ length: BATCH_KEYS }, (_, j) => `demo:batch:${i}:${j}`);
  const values = keys.map((_, j) => `value-${i}-${j}`);
  await client.mset(new Map(keys.map((key, j) => [key, values[j]!])));
  const read = await client.mget(keys);
  if (read.some((value, j) => value !== values[j])) result.batchMismatches++;
  result.batches++;
}

/** Prints each group's slots and key count (DBSIZE); returns how many keys sit on a group that does not own their slot. */
async function printGroups(client: ShardedRedis, log: Log): Promise<number> {
  const table = client.slotTable;
  let misplaced = 0;
  for (const group of client.groups()) {
    const keys = await group.redis.dbsize();
    const slots = table.slots.filter((range) => range.group === group.id).map((range) => `${range.from}..${range.to}`);
    log(`group ${group.id}  ${group.address.padEnd(21)}  slots ${slots.join(", ").padEnd(10)}  keys ${keys}`);
    for await (const page of group.redis.scanStream({ count: 1000 })) {
      for (const key of page as string[]) if (table.owner[slotOf(key)] !== group.id) misplaced++;
    }
  }
  return misplaced;
}

/** Reads every counter back through the sharded client (one MGET, split over the groups) and compares. */
async function verify(client: ShardedRedis, expected: Uint32Array, load: LoadResult, misplaced: number, log: Log): Promise<number> {
  const values = await client.mget(Array.from(expected, (_, k) => counterKey(k)));
  let counted = 0;
  let differing = 0;
  values.forEach((value, k) => {
    const n = value === null ? 0 : Number(value);
    counted += n;
    if (n !== expected[k]) differing++;
  });
  const problems: string[] = [];
  if (misplaced > 0) problems.push(`${misplaced} keys are on a group that does not own their slot`);
  else log("routing: every key is on the group that owns its slot");
  if (load.batchMismatches > 0) problems.push(`${load.batchMismatches} MGET batches did not read back what MSET wrote`);
  if (differing > 0) problems.push(`${differing} counters differ from the INCRs acknowledged for them`);
  const summary = `${load.acked} acknowledged writes, ${counted} counted, ${Math.max(0, load.acked - counted)} lost`;
  if (problems.length === 0 && counted === load.acked) {
    log(`OK: ${summary}`);
    return 0;
  }
  log(`FAILED: ${summary}`);
  for (const problem of problems) log(`  - ${problem}`);
  return 1;
}

function counterKey(counter: number): string {
  return `demo:counter:${counter}`;
}

/** QUIT when every group is up (waiting at most QUIT_TIMEOUT_MS), then close whatever is left. */
async function closeClient(client: ShardedRedis, interrupted: boolean): Promise<void> {
  if (!interrupted && client.status === "ready") {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, QUIT_TIMEOUT_MS)));
    await Promise.race([client.quit().then(() => undefined, () => undefined), timeout]);
    clearTimeout(timer);
  }
  client.disconnect();
}
