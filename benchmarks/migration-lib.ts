/**
 * Helpers of benchmarks/migration.ts: loading many keys fast (raw RESP over
 * one socket), Redis Cluster's key slot (CRC16), a Redis Cluster of our own
 * servers, child processes that are always cleaned up, percentiles.
 */
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { connect } from "node:net";
import { createInterface } from "node:readline";
import { performance } from "node:perf_hooks";
import IORedis from "ioredis";
import { startRedisServers, type RedisServer } from "../dist/cjs/testing/index.js";

// ---------------------------------------------------------------- numbers

/** The p-th percentile (nearest rank) of `values`; NaN when there are none. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export const ms = (value: number): string => (Number.isFinite(value) ? `${value.toFixed(2)} ms` : "-");
export const int = (value: number): string => (Number.isFinite(value) ? Math.round(value).toLocaleString("en-US") : "-");

export const sleep = (millis: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, millis));

/** Rejects with a message naming `what` when `promise` takes longer than `millis`. */
export function withDeadline<T>(promise: Promise<T>, millis: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${millis} ms: ${what}`)), millis);
    promise.then(
      (value) => (clearTimeout(timer), resolve(value)),
      (error: unknown) => (clearTimeout(timer), reject(error)),
    );
  });
}

/** Pins `pid` to a CPU list such as "0" or "0-1"; false when taskset is not there. */
export function pinTo(pid: number, cpus: string): boolean {
  try {
    execFileSync("taskset", ["-apc", cpus, String(pid)], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------- loading keys

/**
 * SETs every key to `value` on one server, as fast as the server takes
 * them: RESP written straight to a socket in chunks, replies counted.
 * Rejects on any error reply or after `timeoutMs`.
 */
export function loadKeys(port: number, keys: readonly string[], value: string, timeoutMs = 120_000): Promise<void> {
  if (keys.length === 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port });
    const expected = keys.length * 5; // "+OK\r\n"
    let received = 0;
    let settled = false;
    const finish = (error?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else resolve();
    };
    const timer = setTimeout(() => finish(new Error(`loading ${keys.length} keys into 127.0.0.1:${port} took over ${timeoutMs} ms`)), timeoutMs);
    socket.on("error", (error) => finish(error));
    socket.on("data", (chunk: Buffer) => {
      if (chunk.includes(0x2d /* '-' */)) return finish(new Error(`error reply while loading 127.0.0.1:${port}: ${chunk.toString().slice(0, 200)}`));
      received += chunk.length;
      if (received >= expected) finish();
    });
    socket.on("connect", async () => {
      const tail = `$${Buffer.byteLength(value)}\r\n${value}\r\n`;
      const CHUNK = 4096;
      for (let at = 0; at < keys.length && !settled; at += CHUNK) {
        let text = "";
        for (const key of keys.slice(at, at + CHUNK)) text += `*3\r\n$3\r\nSET\r\n$${Buffer.byteLength(key)}\r\n${key}\r\n${tail}`;
        if (!socket.write(text)) await new Promise((r) => socket.once("drain", r));
      }
    });
  });
}

// ---------------------------------------------------------------- Redis Cluster

const CRC16_TABLE = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    table[i] = crc;
  }
  return table;
})();

/** Redis Cluster's slot of a key: CRC16/XMODEM of the key (or of its `{tag}`) mod 16384. */
export function clusterSlot(key: string): number {
  let bytes = Buffer.from(key);
  const open = bytes.indexOf(0x7b);
  if (open !== -1) {
    const close = bytes.indexOf(0x7d, open + 1);
    if (close > open + 1) bytes = bytes.subarray(open + 1, close);
  }
  let crc = 0;
  for (const byte of bytes) crc = ((crc << 8) & 0xffff) ^ CRC16_TABLE[((crc >> 8) ^ byte) & 0xff]!;
  return crc & 16383;
}

export interface ClusterNode {
  readonly server: RedisServer;
  readonly id: string;
}

/** Runs a command line, pinned to `cpus` when given; resolves with its output, rejects on failure or after `timeoutMs`. */
export function run(command: string, args: readonly string[], options: { cpus?: string | null; timeoutMs: number; children: Children }): Promise<string> {
  const [file, argv] = options.cpus ? ["taskset", ["-c", options.cpus, command, ...args]] : [command, [...args]];
  return new Promise((resolve, reject) => {
    const child = options.children.spawn(file, argv, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    const keep = (chunk: Buffer) => {
      out += chunk.toString();
      if (out.length > 200_000) out = out.slice(-100_000); // reshard prints a dot per batch
    };
    child.stdout!.on("data", keep);
    child.stderr!.on("data", keep);
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs);
    child.on("error", (error) => (clearTimeout(timer), reject(error)));
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${command} ${args.join(" ")} failed (code ${code}, signal ${signal}):\n${out.slice(-2000)}`));
    });
  });
}

/**
 * Three cluster-enabled masters (no persistence), joined with
 * `redis-cli --cluster create`, resolved once every node says cluster_state:ok.
 */
export async function startRedisCluster(children: Children, cpus: string | null): Promise<ClusterNode[]> {
  const servers = await startRedisServers(3, {
    args: ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "15000"],
  });
  const addresses = servers.map((s) => s.address);
  await run("redis-cli", ["--cluster", "create", ...addresses, "--cluster-replicas", "0", "--cluster-yes"], { cpus, timeoutMs: 60_000, children });
  const nodes: ClusterNode[] = [];
  for (const server of servers) {
    const redis = new IORedis(server.port, server.host, { maxRetriesPerRequest: 1 });
    try {
      const id = String(await redis.call("CLUSTER", "MYID"));
      const until = performance.now() + 30_000;
      while (!String(await redis.call("CLUSTER", "INFO")).includes("cluster_state:ok")) {
        if (performance.now() > until) throw new Error(`Redis Cluster node ${server.address} did not reach cluster_state:ok in 30 s`);
        await sleep(100);
      }
      nodes.push({ server, id });
    } finally {
      redis.disconnect();
    }
  }
  return nodes;
}

/** slot → index of the node that owns it, from CLUSTER SLOTS. */
export async function clusterOwners(nodes: readonly ClusterNode[]): Promise<Int8Array> {
  const redis = new IORedis(nodes[0]!.server.port, nodes[0]!.server.host, { maxRetriesPerRequest: 1 });
  try {
    const owners = new Int8Array(16384).fill(-1);
    const ranges = (await redis.call("CLUSTER", "SLOTS")) as [number, number, [string, number, string]][];
    for (const [from, to, [, port]] of ranges) {
      const index = nodes.findIndex((n) => n.server.port === Number(port));
      for (let slot = from; slot <= to; slot++) owners[slot] = index;
    }
    return owners;
  } finally {
    redis.disconnect();
  }
}

/** Waits until `redis-cli --cluster check` passes (every node agrees on the slots, none open). */
export async function waitClusterAgrees(nodes: readonly ClusterNode[], children: Children, cpus: string | null): Promise<void> {
  const until = performance.now() + 30_000;
  for (;;) {
    try {
      await run("redis-cli", ["--cluster", "check", nodes[0]!.server.address], { cpus, timeoutMs: 20_000, children });
      return;
    } catch (error) {
      if (performance.now() > until) throw error;
      await sleep(200);
    }
  }
}

// ---------------------------------------------------------------- child processes

/** Every child process the benchmark starts: killed (SIGKILL) when it exits, however it exits. */
export class Children {
  private readonly live = new Set<ChildProcess>();

  constructor() {
    process.on("exit", () => this.killAll());
  }

  spawn(file: string, args: readonly string[], options: Parameters<typeof spawn>[2]): ChildProcess {
    const child = spawn(file, args, options);
    this.live.add(child);
    child.once("exit", () => this.live.delete(child));
    child.once("error", () => this.live.delete(child));
    return child;
  }

  killAll(): void {
    for (const child of this.live) {
      try {
        child.kill("SIGKILL");
      } catch {
        // gone already
      }
    }
    this.live.clear();
  }

  /** Waits for every child to exit, SIGKILLing those still there after `graceMs`. */
  async waitAll(graceMs: number): Promise<void> {
    const exits = [...this.live].map((c) => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r(null) : c.once("exit", r))));
    const timer = setTimeout(() => this.killAll(), graceMs);
    await Promise.all(exits);
    clearTimeout(timer);
  }
}

/** A child speaking JSON lines: `send` writes one to its stdin, `next` waits for the next one it prints of a type. */
export class JsonChild {
  private readonly queue: Record<string, unknown>[] = [];
  private waiter: { type: string; resolve: (m: Record<string, unknown>) => void; reject: (e: Error) => void } | null = null;
  private exited: Error | null = null;

  constructor(readonly child: ChildProcess, readonly name: string) {
    createInterface({ input: child.stdout! }).on("line", (line) => {
      let message: Record<string, unknown>;
      try {
        message = JSON.parse(line) as Record<string, unknown>;
      } catch {
        process.stderr.write(`${name}: ${line}\n`);
        return;
      }
      this.queue.push(message);
      this.deliver();
    });
    child.once("exit", (code, signal) => {
      this.exited = new Error(`${name} exited (code ${code}, signal ${signal})`);
      this.deliver();
    });
  }

  send(message: Record<string, unknown>): void {
    this.child.stdin!.write(`${JSON.stringify(message)}\n`);
  }

  next(type: string, timeoutMs: number): Promise<Record<string, unknown>> {
    const found = new Promise<Record<string, unknown>>((resolve, reject) => {
      this.waiter = { type, resolve, reject };
      this.deliver();
    });
    return withDeadline(found, timeoutMs, `${this.name}: a "${type}" message`).finally(() => (this.waiter = null));
  }

  private deliver(): void {
    const waiter = this.waiter;
    if (waiter === null) return;
    const at = this.queue.findIndex((m) => m.type === waiter.type || m.type === "error");
    if (at >= 0) {
      const [message] = this.queue.splice(at, 1);
      this.waiter = null;
      if (message!.type === "error" && waiter.type !== "error") waiter.reject(new Error(`${this.name}: ${String(message!.message)}`));
      else waiter.resolve(message!);
    } else if (this.exited) {
      this.waiter = null;
      waiter.reject(this.exited);
    }
  }
}
