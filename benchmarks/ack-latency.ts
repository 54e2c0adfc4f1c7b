/**
 * How long a table change takes to be acked by every client (DESIGN §4): the
 * time from the compare-and-set write of a new version until N client
 * processes (default 10) have each confirmed it as applied and drained, as
 * seen by a migrator listening on the acks channel.
 *
 *   npm run build && node --import tsx benchmarks/ack-latency.ts
 *   BENCH_CLIENTS=10 BENCH_CHANGES=100 node --import tsx benchmarks/ack-latency.ts
 *
 * Clients use the defaults (leaseMs 10 s, refreshMs 1 s): acks travel by
 * events, not by polling. Every wait is bounded; the script stops by itself.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import IORedis from "ioredis";
import { evenSlotRanges, tableToJson, validateTable } from "../dist/cjs/index.js";
import { coordinatorKeys } from "../dist/cjs/coordinator/keys.js";
import { WRITE_TABLE } from "../dist/cjs/coordinator/scripts.js";
import { startRedisServers, stopAllRedisServers } from "../dist/cjs/testing/index.js";
import { median } from "./lib.js";

const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 10);
const CHANGES = Number(process.env.BENCH_CHANGES ?? 100);
const CLUSTER = "bench";

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function main(): Promise<void> {
  const [coordinatorServer, ...groupServers] = await startRedisServers(3);
  const url = `redis://${coordinatorServer!.address}`;
  const groups = groupServers.map((s, i) => ({ id: i + 1, master: s.address }));
  const keys = coordinatorKeys(CLUSTER);
  const coordinator = new IORedis(coordinatorServer!.port, coordinatorServer!.host);
  const acks = new IORedis(coordinatorServer!.port, coordinatorServer!.host);
  let version = 1;
  const write = (v: number) => {
    // Alternate the owner of every slot, so every change moves slots (and drains).
    const slots = v % 2 === 0 ? evenSlotRanges([2, 1]) : evenSlotRanges([1, 2]);
    const table = validateTable({ version: v, groups, slots });
    return WRITE_TABLE.run(coordinator, [keys.table, keys.events], [v - 1, tableToJson(table, CLUSTER), v]);
  };
  await write(version);

  const children: ChildProcess[] = [];
  const ready: Promise<void>[] = [];
  for (let i = 0; i < CLIENTS; i++) {
    const child = spawn(process.execPath, ["--import", "tsx", join(__dirname, "ack-follower.ts"), url, CLUSTER], { stdio: ["pipe", "pipe", "inherit"] });
    children.push(child);
    ready.push(new Promise((resolve) => child.stdout!.once("data", () => resolve())));
  }
  try {
    await withDeadline(Promise.all(ready), 60_000, "clients ready");
    // Wait until every client has acked version 1 before measuring.
    const ackedBy = new Map<number, Set<string>>();
    let waiter: { version: number; resolve: () => void } | null = null;
    await acks.subscribe(keys.acks);
    acks.on("message", (_channel: string, message: string) => {
      const [client, acked] = message.split(" ");
      const v = Number(acked);
      if (!Number.isFinite(v)) return;
      const set = ackedBy.get(v) ?? new Set<string>();
      set.add(client!);
      ackedBy.set(v, set);
      if (waiter && v === waiter.version && set.size >= CLIENTS) waiter.resolve();
    });
    const allAcked = (v: number) =>
      (ackedBy.get(v)?.size ?? 0) >= CLIENTS ? Promise.resolve() : new Promise<void>((resolve) => (waiter = { version: v, resolve }));
    const entries = await coordinator.hgetall(keys.clients);
    if (Object.values(entries).filter((e) => JSON.parse(e).version === 1).length < CLIENTS) {
      await withDeadline(new Promise((r) => setTimeout(r, 1500)), 5000, "settle");
    }

    const times: number[] = [];
    for (let i = 0; i < CHANGES; i++) {
      version++;
      const start = performance.now();
      const done = allAcked(version);
      await write(version);
      await withDeadline(done, 15_000, `acks of version ${version}`);
      times.push(performance.now() - start);
      await new Promise((r) => setTimeout(r, 20)); // let the clients settle between changes
    }
    const fmt = (ms: number) => `${ms.toFixed(2)} ms`;
    console.log(`clients: ${CLIENTS} processes; changes: ${CHANGES} (each moves every slot between two groups)`);
    console.log(`write → all acked:  p50 ${fmt(percentile(times, 50))}   p99 ${fmt(percentile(times, 99))}   max ${fmt(Math.max(...times))}   median ${fmt(median(times))}`);
  } finally {
    for (const child of children) child.stdin!.end();
    await Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null ? r(null) : c.once("exit", r)))));
    acks.disconnect();
    coordinator.disconnect();
  }
}

function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    promise.then((v) => (clearTimeout(timer), resolve(v)), (e: unknown) => (clearTimeout(timer), reject(e)));
  });
}

main()
  .catch((error) => {
    console.error(error);
    process.exitCode = 1;
  })
  .finally(() => stopAllRedisServers());
