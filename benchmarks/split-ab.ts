/**
 * A two-contender A/B for the 3-group workloads that split: ShardedRedis over
 * 3 groups against the naive 3-client crc32 hash, alone in the process (no
 * other client types warming the same ioredis code), in ABBA rounds; prints
 * the medians of per-round ratios from wall time and from client CPU time.
 *
 *   npm run build && node --import tsx benchmarks/split-ab.ts mget
 *   npm run build && node --import tsx benchmarks/split-ab.ts pipeline
 */
import IORedis, { type Redis } from "ioredis";
import { ShardedRedis, crc32 } from "../dist/cjs/index.js";
import { startRedisServers, stopAllRedisServers } from "../dist/cjs/testing/index.js";
import { inFlight, median, pin } from "./lib.js";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 30);
const mode = process.argv[2] === "pipeline" ? "pipeline" : "mget";



const keysOf = (i: number) => Array.from({ length: 100 }, (_, j) => `bench:${(i * 100 + j) % 10_000}`);

async function main(): Promise<void> {
  const servers = await startRedisServers(3);
  for (const server of servers) pin(server.pid!, 1);
  pin(process.pid, 0);
  const sharded = new ShardedRedis({ groups: servers.map((s, i) => ({ id: i + 1, master: s.address })) });
  const clients = servers.map((s) => new IORedis(s.port, s.host));
  const pick = (key: string): Redis => clients[crc32(key) % clients.length]!;

  const naive = (i: number): Promise<unknown> => {
    const keys = keysOf(i);
    if (mode === "pipeline") {
      const pipelines = new Map<Redis, ReturnType<Redis["pipeline"]>>();
      for (const key of keys) {
        const client = pick(key);
        (pipelines.get(client) ?? pipelines.set(client, client.pipeline()).get(client)!).get(key);
      }
      return Promise.all([...pipelines.values()].map((p) => p.exec()));
    }
    const parts = new Map<Redis, { keys: string[]; at: number[] }>();
    keys.forEach((key, at) => {
      const client = pick(key);
      const part = parts.get(client) ?? parts.set(client, { keys: [], at: [] }).get(client)!;
      part.keys.push(key);
      part.at.push(at);
    });
    const out = new Array<string | null>(keys.length);
    return Promise.all([...parts].map(async ([client, part]) => (await client.mget(part.keys)).forEach((v, j) => (out[part.at[j]!] = v))));
  };
  const ours = (i: number): Promise<unknown> => {
    if (mode === "mget") return sharded.mget(keysOf(i));
    const pipeline = sharded.pipeline();
    for (const key of keysOf(i)) pipeline.get(key);
    return pipeline.exec();
  };

  for (let i = 0; i < 10_000; i++) await Promise.all([sharded.set(`bench:${i}`, "v"), pick(`bench:${i}`).set(`bench:${i}`, "v")]);
  const runs = { naive, ours };
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const time = { naive: 0, ours: 0 };
    const used = { naive: 0, ours: 0 };
    for (const name of ["naive", "ours", "ours", "naive"] as const) {
      const start = performance.now();
      const before = process.cpuUsage();
      await inFlight(200, 4, runs[name]);
      const { user, system } = process.cpuUsage(before);
      time[name] += performance.now() - start;
      used[name] += user + system;
    }
    wall.push(time.naive / time.ours);
    cpu.push(used.naive / used.ours);
  }
  console.log(`${mode}, 3 groups vs naive hash, ${ROUNDS} ABBA rounds: ops/s ratio ${median(wall).toFixed(3)}, client-CPU ratio ${median(cpu).toFixed(3)}`);
  await sharded.quit();
  await Promise.all(clients.map((c) => c.quit()));
}

main()
  .catch((error) => {
    console.error(error);
    process.exitCode = 1;
  })
  .finally(() => stopAllRedisServers());
