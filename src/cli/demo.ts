// `shardis demo`: starts throwaway redis-server groups, routes a bounded load
// through one ShardedRedis, and proves from the servers' own data that every
// acknowledged INCR was counted exactly once and every key sits on the group
// that owns its slot. Uses only the public API (../index.js, ../testing).
import { performance } from "node:perf_hooks";
import type { Command } from "commander";
import { ShardedRedis, slotOf } from "../index.js";
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
    .summary("route a load over N local redis-servers and check nothing is lost")
    .description(
      "start N local redis-server processes on free loopback ports, send --ops INCRs plus MSET/MGET batches " +
        "through one ShardedRedis, and check that every acknowledged write is counted. Needs redis-server on PATH (or SHARDIS_REDIS_SERVER)",
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
}

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
  try {
    log(`starting ${options.groups} redis-server processes on free loopback ports...`);
    servers = await startRedisServers(options.groups);
    log(`servers: ${servers.map((server) => server.address).join(" ")}`);
    if (abort.signal.aborted) return 130;
    client = new ShardedRedis({
      groups: servers.map((server, i) => ({ id: i + 1, master: server.address })),
      // disconnectTimeout: once the servers are gone (Ctrl-C), ioredis would otherwise
      // keep the process alive for 2 s waiting for sockets that already closed.
      redisOptions: { commandTimeout: COMMAND_TIMEOUT_MS, disconnectTimeout: 200 },
    });
    client.on("error", () => {}); // a failed command stops the load and is reported below
    await client.connect();
    return await demonstrate(client, options, abort.signal);
  } catch (error) {
    if (abort.signal.aborted) return 130;
    if (error instanceof RedisServerNotFoundError) log(error.message);
    else log(`FAILED: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    if (client !== undefined) await closeClient(client, abort.signal.aborted);
    await Promise.all(servers.map((server) => server.stop()));
    if (servers.length > 0) log(`stopped ${servers.length} redis-server processes`);
  }
}

async function demonstrate(client: ShardedRedis, options: DemoOptions, signal: AbortSignal): Promise<number> {
  const { log } = options;
  const counters = Math.min(MAX_COUNTERS, options.ops);
  log(`sending ${options.ops} INCRs over ${counters} counter keys, plus MSET/MGET batches, at most ${MAX_IN_FLIGHT} in flight`);
  const expected = new Uint32Array(counters);
  const timeLimitMs = options.timeLimitMs ?? TIME_LIMIT_MS;
  const load = await runLoad(client, options.ops, timeLimitMs, expected, signal);
  if (load.stoppedBy === "signal") return 130;
  const commands = load.acked + 2 * load.batches;
  log(
    `load: ${load.acked} INCRs and ${load.batches} MSET/MGET batches of ${BATCH_KEYS} keys in ` +
      `${load.seconds.toFixed(2)} s (${Math.round(commands / load.seconds)} commands/s)` +
      (load.stoppedBy === "time limit" ? `; stopped early by the ${timeLimitMs / 1000} s time limit` : ""),
  );
  if (load.error !== undefined) {
    log(`FAILED: a command failed, so the load stopped: ${load.error.message}`);
    return 1;
  }
  const misplaced = await printGroups(client, log);
  return verify(client, expected, load, misplaced, log);
}

async function runLoad(client: ShardedRedis, ops: number, timeLimitMs: number, expected: Uint32Array, signal: AbortSignal): Promise<LoadResult> {
  const started = performance.now();
  const deadline = started + timeLimitMs;
  const result: LoadResult = { acked: 0, batches: 0, batchMismatches: 0, error: undefined, stoppedBy: undefined, seconds: 0 };
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
