/**
 * Live migration, measured (issue 4), in one run:
 *
 * 1. Throughput: keys/s moving half the slots of group 1 to group 2 of a
 *    3-group shardis cluster (admin.migrate), against Redis Cluster's own
 *    resharding (`redis-cli --cluster reshard`) of half the slots of one
 *    master of a 3-master Redis Cluster, both holding the same BENCH_KEYS
 *    small keys. Runs alternate (each run moves the keys back the other way).
 * 2. The hold in preparing: 10 client processes following the coordinator
 *    with default options do steady traffic on the slots about to move, over
 *    many small migrations; each measures how long it held commands (from
 *    applying the preparing table to applying the migrating one), and how
 *    long the commands sent meanwhile took.
 * 3. Foreground latency: a ShardedRedis doing paced GET/SET on keys of every
 *    slot; its p99 in idle windows against windows in which a big migration
 *    runs (a migrator process of its own), alternating.
 *
 *   npm run build && node --import tsx benchmarks/migration.ts            # 2.5-5 minutes
 *   BENCH_KEYS=100000 node --import tsx benchmarks/migration.ts            # quick
 *   BENCH_PARTS=hold node --import tsx benchmarks/migration.ts             # one part (throughput, hold, foreground)
 *
 * Knobs: BENCH_KEYS (1,000,000), BENCH_ROUNDS (2 throughput rounds),
 * BENCH_CLUSTER_PIPELINES ("10,1000": redis-cli --cluster-pipeline values;
 * "" leaves Redis Cluster out), BENCH_TUNED ("50,5000": batchMs,maxBatchKeys of
 * a second shardis contender in part 1; "" leaves it out),
 * BENCH_HOLD_CLIENTS (10), BENCH_HOLD_MIGRATIONS (30), BENCH_HOLD_SLOTS (4
 * slots per migration), BENCH_HOLD_RATE (500 commands/s per client),
 * BENCH_FG_ROUNDS (3), BENCH_FG_RATE (4000 commands/s), BENCH_FG_KEYS
 * (BENCH_KEYS / 2), BENCH_BATCH_MS and BENCH_PAUSE_MS (the migrator's batchMs
 * and pauseMs in part 3; default: the library's), BENCH_SLOWLOG_US (part 3:
 * the groups' slow logs per window), BENCH_CHILD_NODE_FLAGS (node flags for
 * part 2's clients), BENCH_TIME_LIMIT_MS (900,000).
 *
 * With two cores or more, this process (and redis-cli, and the migrator
 * process) runs on CPU 0 and every redis-server on CPU 1; the 10 client
 * processes of part 2 may use every CPU. Only 127.0.0.1. Every wait is
 * bounded; servers and child processes are stopped however the run ends.
 */
import { availableParallelism, loadavg } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import IORedis from "ioredis";
import { ShardedRedis, slotOf, SLOT_COUNT } from "../dist/cjs/index.js";
import { ShardisAdmin, type MigrationReport } from "../dist/cjs/admin/index.js";
import { startRedisServers, stopAllRedisServers, type RedisServer } from "../dist/cjs/testing/index.js";
import { median } from "./lib.js";
import {
  Children,
  JsonChild,
  clusterOwners,
  clusterSlot,
  int,
  loadKeys,
  ms,
  percentile,
  pinTo,
  run,
  sleep,
  startRedisCluster,
  waitClusterAgrees,
  withDeadline,
  type ClusterNode,
} from "./migration-lib.js";

const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const KEYS = env("BENCH_KEYS", 1_000_000);
const ROUNDS = env("BENCH_ROUNDS", 2);
const PIPELINES = (process.env.BENCH_CLUSTER_PIPELINES ?? "10,1000").split(",").filter((p) => p.trim() !== "").map(Number);
const HOLD_CLIENTS = env("BENCH_HOLD_CLIENTS", 10);
const HOLD_MIGRATIONS = env("BENCH_HOLD_MIGRATIONS", 30);
const HOLD_SLOTS = env("BENCH_HOLD_SLOTS", 4);
const HOLD_RATE = env("BENCH_HOLD_RATE", 500);
const HOLD_POOL = 100_000;
// BENCH_HOLD_CPUS: where the hold's client processes run, "client" (CPU 0, with
// the migrator; the servers keep CPU 1 to themselves, as in router.ts) or "all".
const HOLD_CPUS = process.env.BENCH_HOLD_CPUS ?? "all";
const FG_ROUNDS = env("BENCH_FG_ROUNDS", 3);
const FG_RATE = env("BENCH_FG_RATE", 4000);
const FG_KEYS = env("BENCH_FG_KEYS", Math.round(KEYS / 2));
// A second shardis contender in part 1 with bigger batches ("": none), as redis-cli has --cluster-pipeline 1000.
const TUNED_TEXT = process.env.BENCH_TUNED ?? "50,5000";
const TUNED = TUNED_TEXT === "" ? null : { batchMs: Number(TUNED_TEXT.split(",")[0]), maxBatchKeys: Number(TUNED_TEXT.split(",")[1]) };
const BATCH_MS = process.env.BENCH_BATCH_MS ? Number(process.env.BENCH_BATCH_MS) : undefined;
// BENCH_PAUSE_MS: the migrator's pauseMs in part 3 (rest after every batch, for foreground latency).
const PAUSE_MS = process.env.BENCH_PAUSE_MS ? Number(process.env.BENCH_PAUSE_MS) : undefined;
const TIME_LIMIT_MS = env("BENCH_TIME_LIMIT_MS", 900_000);
// BENCH_SLOWLOG_US: in part 3, log every command of the two groups' servers slower than this (µs) and print a summary per window.
const SLOWLOG_US = process.env.BENCH_SLOWLOG_US ? Number(process.env.BENCH_SLOWLOG_US) : undefined;
// BENCH_CHILD_NODE_FLAGS: extra node flags for the hold's client processes (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof").
const CHILD_NODE_FLAGS = (process.env.BENCH_CHILD_NODE_FLAGS ?? "").split(" ").filter((f) => f !== "");
const PARTS = (process.env.BENCH_PARTS ?? "throughput,hold,foreground").split(",");
const VALUE = "value-0123456789"; // 16 bytes: "small keys"

const children = new Children();
const PINNED = availableParallelism() >= 2 && pinTo(process.pid, "0");
const CLIENT_CPU = PINNED ? "0" : null;
const ALL_CPUS = `0-${availableParallelism() - 1}`;
const childScript = (name: string) => join(__dirname, name);
const HOLD_CLIENT_CPUS = HOLD_CPUS === "all" ? ALL_CPUS : "0";

/** Starts `count` servers, pinned to CPU 1 when this process is pinned to CPU 0. */
async function servers(count: number): Promise<RedisServer[]> {
  const started = await startRedisServers(count);
  if (PINNED) for (const s of started) pinTo(s.pid!, "1");
  return started;
}

const stop = (list: readonly RedisServer[]) => Promise.all(list.map((s) => s.stop()));

/** Keys `prefix0` … split by the group (index in `groups`) that owns their slot in `table`. */
function keysByGroup(prefix: string, count: number, owner: Readonly<Int32Array>, groups: number): string[][] {
  const out: string[][] = Array.from({ length: groups }, () => []);
  for (let i = 0; i < count; i++) {
    const key = `${prefix}${i}`;
    out[owner[slotOf(key)]! - 1]!.push(key);
  }
  return out;
}

/** Turns on the slow log of `server` (every command slower than `us` µs, up to 100,000 entries). */
async function slowlogOn(server: RedisServer, us: number): Promise<void> {
  const redis = new IORedis(server.port, server.host, { maxRetriesPerRequest: 1 });
  try {
    await redis.config("SET", "slowlog-log-slower-than", String(us), "slowlog-max-len", "100000");
    await redis.slowlog("RESET");
  } finally {
    redis.disconnect();
  }
}

/** "SCAN 120× max 850 µs, MIGRATE …": the slow log of `server` per command since the last call (which it resets). */
async function slowlogSummary(server: RedisServer): Promise<string> {
  const redis = new IORedis(server.port, server.host, { maxRetriesPerRequest: 1 });
  try {
    const entries = (await redis.slowlog("GET", 100_000)) as [number, number, number, (string | Buffer)[]][];
    await redis.slowlog("RESET");
    const byName = new Map<string, { count: number; max: number; total: number }>();
    for (const [, , us, args] of entries) {
      let name = String(args[0]).toUpperCase();
      if (name === "MIGRATE") {
        // MIGRATE host port "" db timeout … KEYS k1 k2 …; the slow log keeps 32 arguments ("… (N more arguments)").
        const keys = args.length - 1 - args.findIndex((a) => String(a).toUpperCase() === "KEYS");
        name += keys === 1 ? " of 1 key" : keys <= 10 ? " of 2-10 keys" : " of more keys";
      }
      const entry = byName.get(name) ?? { count: 0, max: 0, total: 0 };
      entry.count++;
      entry.max = Math.max(entry.max, us);
      entry.total += us;
      byName.set(name, entry);
    }
    return [...byName].map(([name, e]) => `${name} ${int(e.count)}× max ${int(e.max)} µs, total ${ms(e.total / 1000)}`).join("; ") || "nothing";
  } finally {
    redis.disconnect();
  }
}

async function dbsize(server: RedisServer): Promise<number> {
  const redis = new IORedis(server.port, server.host, { maxRetriesPerRequest: 1 });
  try {
    return await redis.dbsize();
  } finally {
    redis.disconnect();
  }
}

// ====================================================================== 1. throughput

interface RunResult {
  keys: number;
  seconds: number;
  /** shardis only: keys/s while moving (the report's figure, without acks and verification). */
  movingRate?: number;
}

interface Contender {
  name: string;
  run(): Promise<RunResult>;
}

interface ThroughputResult {
  names: string[];
  rates: number[][]; // [contender][round]
  /** Per contender; shardis only (keys/s while moving, from the report). */
  movingRates: number[][];
  keysPerRun: number[][];
}

async function throughput(): Promise<ThroughputResult> {
  console.log(`\n== 1. migration throughput: ${int(KEYS)} keys of ${VALUE.length} bytes, half the slots of one of 3 groups / masters ==`);
  const cluster = "tput";
  const [coordinator, ...groupServers] = await servers(4);
  const url = `redis://${coordinator!.address}`;
  const admin = new ShardisAdmin({ coordinator: url, cluster });
  let nodes: ClusterNode[] = [];
  try {
    await admin.initCluster({ groups: groupServers.map((s, i) => ({ id: i + 1, master: s.address })) });
    const table = (await admin.readTable())!;
    const started = performance.now();
    const byGroup = keysByGroup("mig:", KEYS, table.owner, 3);
    await Promise.all(groupServers.map((s, g) => loadKeys(s.port, byGroup[g]!, VALUE)));
    console.log(`shardis: 3 groups loaded (${byGroup.map((k) => int(k.length)).join(" / ")} keys) in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    const owned1: number[] = [];
    for (let slot = 0; slot < SLOT_COUNT; slot++) if (table.owner[slot] === 1) owned1.push(slot);
    const half = { from: owned1[0]!, to: owned1[0]! + Math.floor(owned1.length / 2) - 1 };

    // The same keys in a 3-master Redis Cluster (unless BENCH_CLUSTER_PIPELINES is empty).
    let a = 0;
    let b = 1;
    let clusterSlots = 0;
    if (PIPELINES.length > 0) {
      nodes = await startRedisCluster(children, CLIENT_CPU);
      if (PINNED) for (const n of nodes) pinTo(n.server.pid!, "1");
      const owners = await clusterOwners(nodes);
      const byNode: string[][] = nodes.map(() => []);
      for (let i = 0; i < KEYS; i++) byNode[owners[clusterSlot(`mig:${i}`)]!]!.push(`mig:${i}`);
      await Promise.all(nodes.map((n, i) => loadKeys(n.server.port, byNode[i]!, VALUE)));
      a = owners[0]!;
      b = owners[16383]! === a ? owners[8192]! : owners[16383]!;
      const slotsOfA = owners.filter((o) => o === a).length;
      clusterSlots = Math.floor(slotsOfA / 2);
      console.log(`Redis Cluster: 3 masters loaded (${byNode.map((k) => int(k.length)).join(" / ")} keys); reshard moves ${clusterSlots} of ${slotsOfA} slots of ${nodes[a]!.server.address}`);
    }
    console.log(`shardis moves slots ${half.from}..${half.to} of group 1 (${owned1.length} slots)`);

    let shardisForward = true;
    const shardis = (name: string, options: { batchMs?: number; maxBatchKeys?: number }): Contender => ({
      name,
      async run() {
        const to = shardisForward ? 2 : 1;
        const target = groupServers[to - 1]!;
        const before = await dbsize(target);
        const start = performance.now();
        const report: MigrationReport = await withDeadline(admin.migrate({ slots: [half], to, ...options }), 600_000, "admin.migrate");
        const seconds = (performance.now() - start) / 1000;
        const grown = (await dbsize(target)) - before;
        if (grown !== report.moved) console.log(`  (note: the report says ${report.moved} keys moved, the target grew by ${grown})`);
        shardisForward = !shardisForward;
        return { keys: report.moved, seconds, movingRate: report.keysPerSec };
      },
    });
    let clusterForward = true;
    const reshard = (pipeline: number): Contender => ({
      name: `redis-cli reshard, pipeline ${pipeline}`,
      async run() {
        const [from, to] = clusterForward ? [nodes[a]!, nodes[b]!] : [nodes[b]!, nodes[a]!];
        const before = await dbsize(to.server);
        const args = ["--cluster", "reshard", from.server.address, "--cluster-from", from.id, "--cluster-to", to.id];
        args.push("--cluster-slots", String(clusterSlots), "--cluster-yes", "--cluster-pipeline", String(pipeline));
        const start = performance.now();
        await run("redis-cli", args, { cpus: CLIENT_CPU, timeoutMs: 600_000, children });
        const seconds = (performance.now() - start) / 1000;
        const keys = (await dbsize(to.server)) - before;
        clusterForward = !clusterForward;
        await waitClusterAgrees(nodes, children, CLIENT_CPU);
        return { keys, seconds };
      },
    });
    const contenders = [
      shardis("shardis admin.migrate (defaults)", {}),
      ...(TUNED ? [shardis(`shardis, batchMs ${TUNED.batchMs}, maxBatchKeys ${TUNED.maxBatchKeys}`, TUNED)] : []),
      ...PIPELINES.map(reshard),
    ];
    const rates: number[][] = contenders.map(() => []);
    const keysPerRun: number[][] = contenders.map(() => []);
    const movingRates: number[][] = contenders.map(() => []);
    for (let round = 0; round < ROUNDS; round++) {
      // Round 0: shardis first; round 1: last; … so neither side always runs on a fresher machine.
      const order = contenders.map((_, i) => i);
      if (round % 2 === 1) order.reverse();
      for (const i of order) {
        const result = await contenders[i]!.run();
        const rate = result.keys / result.seconds;
        rates[i]!.push(rate);
        keysPerRun[i]!.push(result.keys);
        if (result.movingRate !== undefined) movingRates[i]!.push(result.movingRate);
        const extra = result.movingRate !== undefined ? ` (while moving: ${int(result.movingRate)} keys/s)` : "";
        console.log(`  round ${round + 1}: ${contenders[i]!.name.padEnd(32)} ${int(result.keys)} keys in ${result.seconds.toFixed(2)} s = ${int(rate)} keys/s${extra}`);
      }
    }
    return { names: contenders.map((c) => c.name), rates, movingRates, keysPerRun };
  } finally {
    await admin.close();
    await stop([coordinator!, ...groupServers, ...nodes.map((n) => n.server)]);
  }
}

// ====================================================================== 2. hold in preparing

interface HoldResult {
  /** Every client's hold, in ms. */
  windows: number[];
  /** Per migration: the first and last client to apply preparing, and to apply migrating (ms, machine clock). */
  lineup: { firstPreparing: number; lastPreparing: number; firstMigrating: number; lastMigrating: number; lastAck?: number }[];
  /** Commands sent in a hold: send → release, and send → reply. */
  heldFor: number[];
  held: number[];
  other: number[];
  migratorPreparing: number[];
  errors: string[];
  migrations: number;
  /** Each client process's CPU use over the migrations, as a share of one core. */
  cpuShares: number[];
}

async function hold(): Promise<HoldResult> {
  console.log(`\n== 2. the hold in preparing: ${HOLD_CLIENTS} client processes, ${HOLD_MIGRATIONS} migrations of ${HOLD_SLOTS} slots, ${HOLD_RATE} commands/s per client on them ==`);
  const cluster = "hold";
  const [coordinator, g1, g2] = await servers(3);
  const url = `redis://${coordinator!.address}`;
  const admin = new ShardisAdmin({ coordinator: url, cluster });
  const clients: JsonChild[] = [];
  let ackListener: IORedis | null = null;
  // This process is the migrator here: like the clients (and like part 3's migrator
  // process), it runs where the scheduler puts it, not on CPU 0 only while ten
  // client processes may take either core.
  const migratorCpus = HOLD_CPUS === "all" ? ALL_CPUS : "0";
  if (PINNED) pinTo(process.pid, migratorCpus);
  try {
    const table = await admin.initCluster({ groups: [g1!, g2!].map((s, i) => ({ id: i + 1, master: s.address })) });
    const byGroup = keysByGroup("hold:", HOLD_POOL, table.owner, 2);
    await Promise.all([g1!, g2!].map((s, g) => loadKeys(s.port, byGroup[g]!, VALUE)));
    const owned1: number[] = [];
    for (let slot = 0; slot < SLOT_COUNT; slot++) if (table.owner[slot] === 1) owned1.push(slot);
    if (owned1.length < HOLD_MIGRATIONS * HOLD_SLOTS) throw new Error(`group 1 owns ${owned1.length} slots, fewer than ${HOLD_MIGRATIONS} × ${HOLD_SLOTS}`);

    for (let i = 0; i < HOLD_CLIENTS; i++) {
      const args = [...CHILD_NODE_FLAGS, "--import", "tsx", childScript("migration-client.ts"), url, cluster, "hold:", String(HOLD_POOL), String(HOLD_RATE)];
      const child = children.spawn(process.execPath, args, { stdio: ["pipe", "pipe", "inherit"] });
      if (PINNED) pinTo(child.pid!, HOLD_CLIENT_CPUS);
      clients.push(new JsonChild(child, `client ${i + 1}`));
    }
    await Promise.all(clients.map((c) => c.next("ready", 60_000)));

    const migratorPreparing: number[] = [];
    // The acks as published (this process listens on the acks channel): when the last
    // client acked each version, on the machine's clock like the clients' reports.
    ackListener = new IORedis(coordinator!.port, coordinator!.host);
    const lastAckAt = new Map<number, number>();
    ackListener.on("message", (_channel: string, message: string) => {
      const version = Number(message.slice(message.lastIndexOf(" ") + 1));
      if (Number.isSafeInteger(version)) lastAckAt.set(version, performance.timeOrigin + performance.now());
    });
    await ackListener.subscribe(`shardis:{${cluster}}:acks`);
    /** Per migration: when the last client acked the preparing version. */
    const lastAcks: (number | undefined)[] = [];
    for (let m = 0; m < HOLD_MIGRATIONS; m++) {
      const first = owned1[m * HOLD_SLOTS]!;
      const slots = Array.from({ length: HOLD_SLOTS }, (_, j) => first + j);
      for (const c of clients) c.send({ type: "slots", slots });
      await Promise.all(clients.map((c) => c.next("ok", 10_000)));
      await sleep(150); // steady traffic on the slots before they move
      let preparingAt: number | null = null;
      await withDeadline(
        admin.migrate({
          slots: [{ from: first, to: first + HOLD_SLOTS - 1 }],
          to: 2,
          onProgress: (p) => {
            if (p.phase === "preparing" && preparingAt === null) preparingAt = performance.now();
            if (p.phase === "migrating" && preparingAt !== null) {
              migratorPreparing.push(performance.now() - preparingAt);
              preparingAt = null;
            }
          },
        }),
        120_000,
        `migration ${m + 1}`,
      );
      // The tables of a migration: pending, preparing, migrating, then the final one.
      const preparingVersion = (await admin.readTable())!.version - 2;
      lastAcks[m] = lastAckAt.get(preparingVersion);
      await sleep(50);
    }
    await sleep(200);
    const result: HoldResult = { windows: [], heldFor: [], held: [], other: [], migratorPreparing, errors: [], migrations: HOLD_MIGRATIONS, cpuShares: [], lineup: [] };
    const perMigration: [number, number][][] = [];
    for (const c of clients) {
      c.send({ type: "report" });
      const report = (await c.next("report", 30_000)) as unknown as { windows: [number, number][]; heldFor: number[]; held: number[]; other: number[]; errors: string[]; cpuShare: number };
      result.cpuShares.push(report.cpuShare);
      result.windows.push(...report.windows.map(([start, end]) => end - start));
      report.windows.forEach((w, m) => (perMigration[m] ??= []).push(w));
      result.held.push(...report.held);
      result.heldFor.push(...report.heldFor);
      result.other.push(...report.other);
      result.errors.push(...report.errors);
    }
    perMigration.forEach((holds, m) => {
      if (holds.length !== clients.length) return; // a client missed one: no line-up for it
      const starts = holds.map(([start]) => start);
      const ends = holds.map(([, end]) => end);
      result.lineup.push({ firstPreparing: Math.min(...starts), lastPreparing: Math.max(...starts), firstMigrating: Math.min(...ends), lastMigrating: Math.max(...ends), lastAck: lastAcks[m] });
    });
    return result;
  } finally {
    ackListener?.disconnect();
    for (const c of clients) c.child.stdin!.end();
    await children.waitAll(10_000);
    await admin.close();
    await stop([coordinator!, g1!, g2!]);
    if (PINNED) pinTo(process.pid, "0");
  }
}

// ====================================================================== 3. foreground latency

/** Latencies of one window: every command, and those on keys of the slots that move (0..511) or not. */
interface Samples {
  all: number[];
  moving: number[];
  staying: number[];
}

interface ForegroundResult {
  idle: Samples[];
  migrating: Samples[];
  migrationSeconds: number[];
  migrationKeys: number[];
  errors: string[];
}

const MOVING = { from: 0, to: 511 };
const samples = (): Samples => ({ all: [], moving: [], staying: [] });

async function foreground(): Promise<ForegroundResult> {
  const batch = (BATCH_MS === undefined ? "the default batchMs" : `batchMs ${BATCH_MS}`) + (PAUSE_MS ? `, pauseMs ${PAUSE_MS}` : "");
  console.log(`\n== 3. foreground p99: paced GET/SET at ${FG_RATE}/s on ${int(FG_KEYS)} keys in every slot, idle vs while half of them move (${batch}) ==`);
  const cluster = "fg";
  const [coordinator, g1, g2] = await servers(3);
  const url = `redis://${coordinator!.address}`;
  const admin = new ShardisAdmin({ coordinator: url, cluster });
  let client: ShardedRedis | null = null;
  let mover: JsonChild | null = null;
  let pacer: NodeJS.Timeout | null = null;
  try {
    // Group 1 owns every slot and every key; the migrations move slots 0..511 to group 2 and back.
    const table = await admin.initCluster({
      groups: [g1!, g2!].map((s, i) => ({ id: i + 1, master: s.address })),
      slots: [{ from: 0, to: SLOT_COUNT - 1, group: 1 }],
    });
    const keys = keysByGroup("fg:", FG_KEYS, table.owner, 2)[0]!;
    const moves = Uint8Array.from(keys, (k) => (slotOf(k) >= MOVING.from && slotOf(k) <= MOVING.to ? 1 : 0));
    await loadKeys(g1!.port, keys, VALUE);
    const moverChild = children.spawn(process.execPath, ["--import", "tsx", childScript("migration-mover.ts"), url, cluster], { stdio: ["pipe", "pipe", "inherit"] });
    // The migrator runs where the scheduler puts it (an operator's migrator runs on another machine): not on the measuring client's CPU only.
    if (PINNED) pinTo(moverChild.pid!, ALL_CPUS);
    mover = new JsonChild(moverChild, "migrator process");
    await mover.next("ready", 60_000);

    client = new ShardedRedis({ coordinator: url, cluster });
    client.on("error", (error) => console.error(`foreground client: ${error.message}`));
    await client.connect();
    const c = client;

    // Paced load (open loop: the rate does not drop when replies are slow): every
    // millisecond, the commands due by then. A command's latency counts from its
    // send (not from when it was due: the 1 ms timer's own lateness is not the
    // servers'). Samples go to the current window's list.
    let window: Samples | null = null;
    const errors: string[] = [];
    let sent = 0;
    const interval = 1000 / FG_RATE;
    let nextAt = performance.now();
    pacer = setInterval(() => {
      const now = performance.now();
      if (now - nextAt > 1000) nextAt = now - 1000; // never more than a second of backlog
      while (nextAt <= now) {
        nextAt += interval;
        const at = Math.floor(Math.random() * keys.length);
        const key = keys[at]!;
        const into = window;
        const start = performance.now();
        const reply = sent++ % 2 === 0 ? c.get(key) : c.set(key, VALUE);
        reply.then(
          () => {
            if (into === null) return;
            const latency = performance.now() - start;
            into.all.push(latency);
            (moves[at] === 1 ? into.moving : into.staying).push(latency);
          },
          (error: Error) => errors.length < 20 && errors.push(`${error.name}: ${error.message}`),
        );
      }
    }, 1);
    await sleep(1000); // warm up

    const result: ForegroundResult = { idle: [], migrating: [], migrationSeconds: [], migrationKeys: [], errors };
    if (SLOWLOG_US !== undefined) await Promise.all([g1!, g2!].map((g) => slowlogOn(g, SLOWLOG_US)));
    let forward = true;
    let idleMs = 5000;
    const idleWindow = async () => {
      const into = samples();
      window = into;
      await sleep(idleMs);
      window = null;
      result.idle.push(into);
    };
    const migrationWindow = async () => {
      const into = samples();
      const start = performance.now();
      window = into;
      mover!.send({ type: "migrate", slots: [MOVING], to: forward ? 2 : 1, ...(BATCH_MS ? { batchMs: BATCH_MS } : {}), ...(PAUSE_MS ? { pauseMs: PAUSE_MS } : {}) });
      const done = (await mover!.next("done", 600_000)) as unknown as { report: MigrationReport };
      window = null;
      idleMs = performance.now() - start; // idle windows as long as the last migration
      result.migrating.push(into);
      result.migrationSeconds.push(idleMs / 1000);
      result.migrationKeys.push(done.report.moved);
      if (SLOWLOG_US !== undefined) {
        for (const [name, g] of [["group 1", g1!], ["group 2", g2!]] as const) console.log(`    slow log of ${name} (> ${SLOWLOG_US} µs): ${await slowlogSummary(g)}`);
      }
      forward = !forward;
    };
    for (let round = 0; round < FG_ROUNDS; round++) {
      const steps = round % 2 === 0 ? [idleWindow, migrationWindow] : [migrationWindow, idleWindow];
      for (const step of steps) {
        await step();
        await sleep(300);
      }
      const [idle, during] = [result.idle[round]!, result.migrating[round]!];
      const direction = forward ? "group 2 → 1" : "group 1 → 2"; // forward was flipped after the migration
      console.log(
        `  round ${round + 1}: idle p50 ${ms(percentile(idle.all, 50))} p99 ${ms(percentile(idle.all, 99))} (${int(idle.all.length)} commands)` +
          ` | migrating ${direction}: p50 ${ms(percentile(during.all, 50))} p99 ${ms(percentile(during.all, 99))} (${int(during.all.length)} commands;` +
          ` p99 moving keys ${ms(percentile(during.moving, 99))}, other keys ${ms(percentile(during.staying, 99))};` +
          ` ${int(result.migrationKeys[round]!)} keys in ${result.migrationSeconds[round]!.toFixed(1)} s)`,
      );
    }
    return result;
  } finally {
    if (pacer) clearInterval(pacer);
    mover?.child.stdin!.end();
    if (client) await withDeadline(client.quit(), 10_000, "foreground client quit").catch(() => client!.disconnect());
    await children.waitAll(10_000);
    await admin.close();
    await stop([coordinator!, g1!, g2!]);
  }
}

// ====================================================================== the table

async function main(): Promise<void> {
  const deadline = setTimeout(() => {
    console.error(`\nBENCH_TIME_LIMIT_MS (${TIME_LIMIT_MS} ms) reached: stopping everything`);
    process.exit(2); // the exit handlers kill the servers and children
  }, TIME_LIMIT_MS);
  deadline.unref();
  const load = () => loadavg().map((l) => l.toFixed(2)).join(" ");
  console.log(`pinned: ${PINNED ? "this process, redis-cli and the migrator process CPU 0, servers CPU 1" : "no"}; parts: ${PARTS.join(", ")}; load average ${load()}`);
  const rows: string[][] = [];
  const verdict = (ok: boolean) => (ok ? "pass" : "FAIL");

  if (PARTS.includes("throughput")) {
    const t = await throughput();
    const medianRate = t.rates.map((r) => median(r));
    t.names.forEach((name, i) => {
      const moving = t.movingRates[i]!.length > 0 ? `; while moving ${int(median(t.movingRates[i]!))}` : "";
      rows.push([`throughput: ${name}`, `${int(medianRate[i]!)} keys/s (${int(median(t.keysPerRun[i]!))} keys a run${moving})`, "", ""]);
    });
    // shardis (defaults) against each redis-cli contender: the median of the rounds' ratios.
    t.names.forEach((name, i) => {
      if (!name.startsWith("redis-cli")) return;
      const ratio = median(t.rates[0]!.map((r, k) => r / t.rates[i]![k]!));
      rows.push([`  ${t.names[0]} / ${name}`, ratio.toFixed(2), "≥ 1", verdict(ratio >= 1)]);
    });
  }
  if (PARTS.includes("hold")) {
    const h = await hold();
    const p99 = percentile(h.windows, 99);
    rows.push([`hold in preparing, per client (${h.windows.length} holds)`, `p50 ${ms(percentile(h.windows, 50))}, p99 ${ms(p99)}, max ${ms(Math.max(...h.windows))}`, "p99 ≤ 50 ms", verdict(p99 <= 50)]);
    const span = (of: (l: HoldResult["lineup"][number]) => number) => {
      const values = h.lineup.map(of);
      return `p50 ${ms(percentile(values, 50))}, p99 ${ms(percentile(values, 99))}`;
    };
    rows.push(["  first → last client to apply preparing", span((l) => l.lastPreparing - l.firstPreparing), "", ""]);
    rows.push(["  last preparing → first migrating applied", span((l) => l.firstMigrating - l.lastPreparing), "", ""]);
    const acked = h.lineup.filter((l) => l.lastAck !== undefined).map((l) => l.lastAck! - l.lastPreparing);
    rows.push(["    of which: last preparing applied → last ack published", `p50 ${ms(percentile(acked, 50))}, p99 ${ms(percentile(acked, 99))}`, "", ""]);
    rows.push(["  first → last client to apply migrating", span((l) => l.lastMigrating - l.firstMigrating), "", ""]);
    rows.push([`  commands sent in the hold, send → release (${int(h.heldFor.length)})`, `p50 ${ms(percentile(h.heldFor, 50))}, p99 ${ms(percentile(h.heldFor, 99))}`, "", ""]);
    rows.push([`  commands sent in the hold, send → reply (${int(h.held.length)})`, `p50 ${ms(percentile(h.held, 50))}, p99 ${ms(percentile(h.held, 99))}`, "", ""]);
    rows.push([`  other commands on the moving slots (${int(h.other.length)})`, `p50 ${ms(percentile(h.other, 50))}, p99 ${ms(percentile(h.other, 99))}`, "", ""]);
    rows.push([`  migrator: preparing → migrating (${h.migratorPreparing.length})`, `p50 ${ms(percentile(h.migratorPreparing, 50))}, p99 ${ms(percentile(h.migratorPreparing, 99))}`, "", ""]);
    if (h.errors.length > 0) rows.push(["  client errors", h.errors.slice(0, 3).join("; "), "none", "FAIL"]);
    rows.push(["  CPU of each client process (share of one core)", `median ${(median(h.cpuShares) * 100).toFixed(0)}%, max ${(Math.max(...h.cpuShares) * 100).toFixed(0)}%`, "", ""]);
    const expected = HOLD_CLIENTS * h.migrations;
    if (h.windows.length !== expected) rows.push(["  holds seen", `${h.windows.length} of ${expected} expected`, "", "check"]);
  }
  if (PARTS.includes("foreground")) {
    const f = await foreground();
    const pooled = (windows: Samples[], part: keyof Samples) => windows.flatMap((w) => w[part]);
    const figures = (values: number[]) => `p50 ${ms(percentile(values, 50))}, p99 ${ms(percentile(values, 99))}, p99.9 ${ms(percentile(values, 99.9))}`;
    const perRound = f.idle.map((w, i) => percentile(f.migrating[i]!.all, 99) / percentile(w.all, 99));
    const ratio = median(perRound);
    rows.push([`foreground idle (${int(pooled(f.idle, "all").length)} commands)`, figures(pooled(f.idle, "all")), "", ""]);
    rows.push([`foreground during migration (${int(pooled(f.migrating, "all").length)})`, figures(pooled(f.migrating, "all")), "", ""]);
    rows.push(["  p99 during / idle (median of rounds)", `${ratio.toFixed(2)} (rounds: ${perRound.map((r) => r.toFixed(2)).join(", ")})`, "≤ 2", verdict(ratio <= 2)]);
    rows.push(["  during: keys of the moving slots", figures(pooled(f.migrating, "moving")), "", ""]);
    rows.push(["  during: keys of the other slots", figures(pooled(f.migrating, "staying")), "", ""]);
    rows.push(["  migrations in the windows", `${int(median(f.migrationKeys))} keys by the migrator in ${median(f.migrationSeconds).toFixed(1)} s (median)`, "", ""]);
    if (f.errors.length > 0) rows.push(["  foreground errors", f.errors.slice(0, 3).join("; "), "none", "FAIL"]);
  }

  const widths = [0, 1, 2, 3].map((c) => Math.max(...[["measure", "figure", "target", ""], ...rows].map((r) => r[c]!.length)));
  console.log("\n" + ["measure", "figure", "target", "result"].map((h, c) => h.padEnd(widths[c]!)).join("  "));
  for (const row of rows) console.log(row.map((cell, c) => cell.padEnd(widths[c]!)).join("  "));
  console.log(`\nload average at the end: ${load()} (this run's own processes count in it)`);
}

for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => process.exit(130)); // exit handlers clean up

main()
  .catch((error) => {
    console.error(error);
    process.exitCode = 1;
  })
  .finally(async () => {
    children.killAll();
    await stopAllRedisServers();
  });
