/**
 * Router overhead, side by side in one process: raw ioredis on one server,
 * ShardedRedis with 1 group (same server), ShardedRedis with 3 groups, and a
 * naive 3-client crc32 hash (same 3 servers). Contenders run in alternating
 * rounds; each round's ratio is taken against the round's baseline, and the
 * medians of those ratios are printed.
 *
 *   npm run bench                         # builds, then 9 rounds
 *   BENCH_ROUNDS=11 BENCH_SCALE=2 npm run bench
 *   BENCH_ONLY=pipeline npm run bench     # only the workloads whose name has "pipeline"
 *   BENCH_CONTENDERS=naive,3g npm run bench  # only some contenders (raw, 1g, naive, 3g)
 *
 * On Linux the client is pinned to CPU 0 and the servers to CPU 1 (taskset),
 * when taskset is there and the machine has two cores or more.
 */
import { availableParallelism } from "node:os";
import IORedis, { type Redis } from "ioredis";
// The built package, as users run it (tsx's own transform of src/ adds costs of its own).
import { ShardedRedis, crc32, evenSlotRanges, tableToJson, validateTable, type SlotRange } from "../dist/cjs/index.js";
import { coordinatorKeys } from "../dist/cjs/coordinator/keys.js";
import { WRITE_TABLE } from "../dist/cjs/coordinator/scripts.js";
import { startRedisServers, stopAllRedisServers, type RedisServer } from "../dist/cjs/testing/index.js";
import { inFlight, median, pin } from "./lib.js";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 9);
const SCALE = Number(process.env.BENCH_SCALE ?? 1);
const TIME_LIMIT_MS = Number(process.env.BENCH_TIME_LIMIT_MS ?? 240_000);
const KEYS = 10_000;
const VALUE_1K = "x".repeat(1024);

/** The API every contender offers to the workloads. */
interface Contender {
  name: string;
  set(key: string, value: string): Promise<unknown>;
  get(key: string): Promise<unknown>;
  mget(keys: string[]): Promise<unknown>;
  pipelineGets(keys: string[]): Promise<unknown>;
  close(): Promise<void>;
}

interface Workload {
  name: string;
  ops: number; // operations per round (a pipeline or MGET of 100 counts as 100)
  run(c: Contender): Promise<void>;
}

const key = (i: number) => `bench:${i % KEYS}`;


const allWorkloads: Workload[] = [
  {
    name: "SET/GET, 64 in flight",
    ops: 20_000 * SCALE,
    run: (c) => inFlight(20_000 * SCALE, 64, (i) => (i % 2 ? c.get(key(i)) : c.set(key(i), "v"))),
  },
  {
    name: "SET 1 KiB, 64 in flight",
    ops: 10_000 * SCALE,
    run: (c) => inFlight(10_000 * SCALE, 64, (i) => c.set(key(i), VALUE_1K)),
  },
  {
    name: "pipeline of 100 GETs",
    ops: 200 * 100 * SCALE,
    run: (c) => inFlight(200 * SCALE, 4, (i) => c.pipelineGets(Array.from({ length: 100 }, (_, j) => key(i * 100 + j)))),
  },
  {
    name: "MGET of 100 keys",
    ops: 200 * 100 * SCALE,
    run: (c) => inFlight(200 * SCALE, 4, (i) => c.mget(Array.from({ length: 100 }, (_, j) => key(i * 100 + j)))),
  },
];

function fromIoredis(name: string, redis: Redis): Contender {
  return {
    name,
    set: (k, v) => redis.set(k, v),
    get: (k) => redis.get(k),
    mget: (keys) => redis.mget(keys),
    pipelineGets: (keys) => {
      const p = redis.pipeline();
      for (const k of keys) p.get(k);
      return p.exec();
    },
    close: async () => void (await redis.quit()),
  };
}

function fromSharded(name: string, sharded: ShardedRedis): Contender {
  return { ...fromIoredis(name, sharded as unknown as Redis), close: async () => void (await sharded.quit()) };
}

/** The naive way: one client per server, crc32 % n, splitting MGET and pipelines by hand. */
function naiveHash(name: string, clients: Redis[]): Contender {
  const pick = (k: string) => clients[crc32(k) % clients.length]!;
  const byClient = (keys: string[]) => {
    const parts = new Map<Redis, { keys: string[]; at: number[] }>();
    keys.forEach((k, i) => {
      const c = pick(k);
      const part = parts.get(c) ?? parts.set(c, { keys: [], at: [] }).get(c)!;
      part.keys.push(k);
      part.at.push(i);
    });
    return parts;
  };
  return {
    name,
    set: (k, v) => pick(k).set(k, v),
    get: (k) => pick(k).get(k),
    mget: async (keys) => {
      const out = new Array(keys.length);
      await Promise.all([...byClient(keys)].map(async ([c, p]) => (await c.mget(p.keys)).forEach((v, j) => (out[p.at[j]!] = v))));
      return out;
    },
    pipelineGets: async (keys) => {
      const out = new Array(keys.length);
      await Promise.all(
        [...byClient(keys)].map(async ([c, p]) => {
          const pipe = c.pipeline();
          for (const k of p.keys) pipe.get(k);
          (await pipe.exec())!.forEach((r, j) => (out[p.at[j]!] = r));
        }),
      );
      return out;
    },
    close: async () => void (await Promise.all(clients.map((c) => c.quit()))),
  };
}



type ContenderId = "raw" | "1g" | "naive" | "3g" | "3c";
// BENCH_SLOTS=interleaved gives the 3 groups slot s → group s % 3 instead of
// the default contiguous thirds (sequential keys cluster in CRC space, so
// thirds balance one batch of them a little less evenly than crc % 3 does).
const SLOTS = (ids: number[]): SlotRange[] | undefined =>
  process.env.BENCH_SLOTS === "interleaved"
    ? Array.from({ length: 1024 }, (_, slot) => ({ from: slot, to: slot, group: ids[slot % ids.length]! }))
    : undefined;
// BENCH_CONTENDERS=naive,3g runs only those contenders (default: the first four).
// "3c" is ShardedRedis over the same 3 groups following a coordinator (a 4th
// server): its ratio to "3g" ("3c/3g" column) is the cost of the lease check.
const CONTENDERS = (process.env.BENCH_CONTENDERS ?? "raw,1g,naive,3g").split(",").map((id) => id.trim()) as ContenderId[];

// BENCH_ONLY=pipeline (a part of a workload's name) runs only the matching workloads.
const workloads = allWorkloads.filter((w) => w.name.toLowerCase().includes((process.env.BENCH_ONLY ?? "").toLowerCase()));

// BENCH_AUTO=on|off runs only that enableAutoPipelining phase (default: off, then on).
const AUTO_PHASES = process.env.BENCH_AUTO === "on" ? [true] : process.env.BENCH_AUTO === "off" ? [false] : [false, true];

async function main(): Promise<void> {
  const all: RedisServer[] = await startRedisServers(CONTENDERS.includes("3c") ? 4 : 3);
  const servers = all.slice(0, 3);
  const pinned = availableParallelism() >= 2 && pin(process.pid, 0) && all.every((s) => s.pid !== undefined && pin(s.pid, 1));
  console.log(`servers: ${servers.map((s) => s.address).join(", ")}; pinned: ${pinned ? "client CPU 0, servers CPU 1" : "no"}`);
  const deadline = Date.now() + TIME_LIMIT_MS;
  const [a] = servers;
  const opts = (auto: boolean) => ({ enableAutoPipelining: auto, maxRetriesPerRequest: 1 });
  const groups = servers.map((s, i) => ({ id: i + 1, master: s.address }));
  const coordinatorUrl = all[3] ? `redis://${all[3].address}` : "";
  if (all[3]) {
    const keys = coordinatorKeys("bench");
    const writer = new IORedis(all[3].port, all[3].host);
    const table = validateTable({ version: 1, groups, slots: SLOTS(groups.map((g) => g.id)) ?? evenSlotRanges(groups.map((g) => g.id)) });
    await WRITE_TABLE.run(writer, [keys.table, keys.events], [0, tableToJson(table, "bench"), 1]);
    writer.disconnect();
  }

  for (const auto of AUTO_PHASES) {
    const make: Record<ContenderId, () => Contender> = {
      raw: () => fromIoredis("raw ioredis (1 server)", new IORedis(a!.port, a!.host, opts(auto))),
      "1g": () => fromSharded("ShardedRedis, 1 group", new ShardedRedis({ groups: [groups[0]!], redisOptions: opts(auto) })),
      naive: () => naiveHash("naive crc32 hash, 3 clients", servers.map((s) => new IORedis(s.port, s.host, opts(auto)))),
      "3g": () => fromSharded("ShardedRedis, 3 groups", new ShardedRedis({ groups, slots: SLOTS(groups.map((g) => g.id)), redisOptions: opts(auto) })),
      "3c": () => fromSharded("ShardedRedis, 3g, coordinator", new ShardedRedis({ coordinator: coordinatorUrl, cluster: "bench", redisOptions: opts(auto) })),
    };
    const ids = CONTENDERS;
    const contenders = ids.map((id) => make[id]());
    for (const c of contenders) await inFlight(KEYS, 64, (i) => c.set(key(i), "v")); // warm up, fill keys
    console.log(`\n== enableAutoPipelining: ${auto} ==`);
    console.log(["workload".padEnd(26), ...contenders.map((c) => c.name.padStart(28)), "  1g/raw", "  3g/naive"].join(""));
    for (const w of workloads) {
      const rates: number[][] = contenders.map(() => []);
      const cpu: number[][] = contenders.map(() => []); // client CPU µs per op
      for (let round = 0; round < ROUNDS && Date.now() < deadline; round++) {
        // Each round runs A B C D D C B A: every contender's two runs straddle the
        // round's midpoint, so a machine that speeds up or slows down mid-round
        // (these are shared, noisy VMs) does not favour one side.
        const seconds = contenders.map(() => 0);
        const cpuMicros = contenders.map(() => 0);
        const forward = contenders.map((_, i) => i);
        for (const i of [...forward, ...forward.reverse()]) {
          const start = process.hrtime.bigint();
          const used = process.cpuUsage();
          await w.run(contenders[i]!);
          const { user, system } = process.cpuUsage(used);
          seconds[i]! += Number(process.hrtime.bigint() - start) / 1e9;
          cpuMicros[i]! += user + system;
        }
        seconds.forEach((s, i) => rates[i]!.push((2 * w.ops) / s));
        cpuMicros.forEach((c, i) => cpu[i]!.push(c / (2 * w.ops)));
      }
      // Ratios by contender id; "-" when one of the pair was left out (BENCH_CONTENDERS).
      const pair = (x: ContenderId, base: ContenderId, of: (i: number, b: number) => number) => {
        const [i, b] = [ids.indexOf(x), ids.indexOf(base)];
        return i < 0 || b < 0 ? "-" : of(i, b).toFixed(3);
      };
      const ratio = (x: ContenderId, base: ContenderId) => pair(x, base, (i, b) => median(rates[i]!.map((r, k) => r / rates[b]![k]!)));
      // The same comparison in client CPU per op (less sensitive to the server side and to scheduling).
      const cpuRatio = (x: ContenderId, base: ContenderId) => pair(x, base, (i, b) => median(cpu[b]!.map((c, k) => c / cpu[i]![k]!)));
      console.log(
        [
          w.name.padEnd(26),
          ...rates.map((r) => `${Math.round(median(r)).toLocaleString("en-US")} ops/s`.padStart(28)),
          ratio("1g", "raw").padStart(8),
          ratio("3g", "naive").padStart(10),
          `   cpu: ${cpuRatio("1g", "raw")} / ${cpuRatio("3g", "naive")}`,
          ids.includes("3c") ? `   3c/3g: ${ratio("3c", "3g")}` : "",
        ].join(""),
      );
    }
    for (const c of contenders) await c.close();
  }
  console.log(`\nratios are medians of per-round ratios over ${ROUNDS} rounds (ops/s; "cpu:" the same from client CPU per op, 1g/raw / 3g/naive);`);
  console.log("targets: 1g/raw ≥ 0.97 on single-key work, 3g/naive ≥ 0.97 everywhere");
}

main()
  .catch((error) => {
    console.error(error);
    process.exitCode = 1;
  })
  .finally(() => stopAllRedisServers());
