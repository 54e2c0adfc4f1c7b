// `shardis sandbox`: a throwaway cluster on this machine to try shardis on.
// Starts one coordinator and N group redis-server processes on free loopback
// ports (each in its own temp dir, via shardis/testing), optionally with
// replicas (--replicas) and Sentinels watching every master (--sentinels),
// writes the first slot table, prints how to connect, and runs until
// SIGINT/SIGTERM (or --exit-after), then stops every process it started.
import { InvalidArgumentError, type Command } from "commander";
import { ShardisAdmin } from "../admin/index.js";
import { closeQuietly } from "../coordinator/connection.js";
import { RedisSentinel, RedisServer, startRedisServers } from "../testing/index.js";
import { pairs, respCommand } from "../testing/resp.js";
import type { GroupSpec } from "../topology/table.js";
import { parseInteger } from "./args.js";
import { connectCoordinator, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, type CliContext } from "./context.js";
import { tableLines } from "./format.js";

export interface SandboxOptions {
  /** Number of groups (one redis-server each). */
  groups: number;
  /** Replicas (`--replicaof`) of each group's master, and of the coordinator when there are sentinels. @default 0 */
  replicas?: number;
  /** redis-sentinel processes watching the coordinator ("coord") and every group ("g<id>"), quorum a majority. @default 0 */
  sentinels?: number;
  cluster: string;
  /** Stop by itself after this long; by default it runs until a signal. */
  exitAfterMs?: number;
  log: (line: string) => void;
}

/** The line printed once the cluster is up and initialized. */
export const SANDBOX_READY = "sandbox ready";

/** How long replicas may take to sync, and sentinels to find each other. */
const REPLICAS_SYNCED_TIMEOUT_MS = 20_000;
const SENTINELS_READY_TIMEOUT_MS = 30_000;
/** The Sentinel master name of the coordinator; the groups' are "g<id>". */
const COORDINATOR_NAME = "coord";

/** 0, or an odd number of sentinels from 3 to 9. */
function parseSentinelCount(text: string): number {
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!(n === 0 || (n >= 3 && n <= 9 && n % 2 === 1))) {
    throw new InvalidArgumentError(`--sentinels must be 0 or an odd number from 3 to 9 (a majority must agree on a failover), got ${JSON.stringify(text)}`);
  }
  return n;
}

/** Thrown inside the start sequence when a signal came: the caller returns EXIT_INTERRUPTED. */
class Interrupted extends Error {}

export function registerSandbox(program: Command, ctx: CliContext): void {
  program
    .command("sandbox")
    .summary("start a throwaway local cluster to try shardis on (until Ctrl-C)")
    .description(
      "start a throwaway cluster on this machine: a coordinator and N groups (local redis-server processes on free loopback ports), " +
        "optionally with replicas and Sentinels (then groups are Sentinel-named and the coordinator is watched too), " +
        "initialized and ready to connect to; runs until Ctrl-C, then stops them all. Uses cluster name \"sandbox\" unless --cluster is given. " +
        "Needs redis-server on PATH (or SHARDIS_REDIS_SERVER), and redis-sentinel for --sentinels (or SHARDIS_REDIS_SENTINEL)",
    )
    .option("--groups <n>", "number of groups, 1-16", (text: string) => parseInteger("--groups", text, 1, 16), 3)
    .option("--replicas <n>", "replicas of each group's master (and of the coordinator with --sentinels), 0-3", (text: string) => parseInteger("--replicas", text, 0, 3), 0)
    .option("--sentinels <n>", "redis-sentinel processes watching every master, quorum a majority: 0, 3, 5, 7 or 9", parseSentinelCount, 0)
    .option("--exit-after <ms>", "stop by itself after this many milliseconds (for scripts)", (text: string) =>
      parseInteger("--exit-after", text, 1, 2_147_483_647),
    )
    .action(async (options: { groups: number; replicas: number; sentinels: number; exitAfter?: number }, command: Command) => {
      // --coordinator and --cluster are global options. The sandbox starts its own
      // coordinator, and uses its own cluster name unless one is given on this
      // command line (an exported SHARDIS_CLUSTER is for the other commands).
      if (command.getOptionValueSourceWithGlobals("coordinator") === "cli") {
        command.error("shardis sandbox: --coordinator does not apply: the sandbox starts its own coordinator and prints its address", {
          exitCode: EXIT_USAGE,
          code: "shardis.usage",
        });
      }
      const explicit = command.getOptionValueSourceWithGlobals("cluster") === "cli";
      const cluster = explicit ? command.optsWithGlobals<{ cluster: string }>().cluster : "sandbox";
      ctx.exitCode = await runSandbox({
        groups: options.groups,
        replicas: options.replicas,
        sentinels: options.sentinels,
        cluster,
        ...(options.exitAfter === undefined ? {} : { exitAfterMs: options.exitAfter }),
        log: ctx.out,
      });
    });
}

/** Runs the sandbox; resolves to the exit code (0 stopped as asked, 130 interrupted while starting); rejects when it cannot start. */
export async function runSandbox(options: SandboxOptions): Promise<number> {
  const { log } = options;
  const replicaCount = options.replicas ?? 0;
  const sentinelCount = options.sentinels ?? 0;
  let stop!: (why: string) => void;
  const stopped = new Promise<string>((resolve) => (stop = resolve));
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    stopping = true;
    stop(signal);
  };
  const checkSignal = () => {
    if (stopping) throw new Interrupted();
  };
  // shardis/testing kills its servers on SIGINT/SIGTERM; with these listeners
  // installed it leaves the process alive, so the sandbox stops them in order and exits 0.
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  const servers: RedisServer[] = [];
  const sentinels: RedisSentinel[] = [];
  let keepAlive: NodeJS.Timeout | undefined;
  let exitTimer: NodeJS.Timeout | undefined;
  try {
    // With sentinels the coordinator is a monitored master too, with its own replicas.
    const replicated = sentinelCount > 0 ? options.groups + 1 : options.groups;
    const total = options.groups + 1 + replicated * replicaCount;
    log(
      `starting ${total} redis-server processes (1 coordinator + ${options.groups} groups` +
        (replicaCount > 0 ? `, ${replicaCount} ${replicaCount === 1 ? "replica" : "replicas"} each` : "") +
        ")" +
        (sentinelCount > 0 ? ` and ${sentinelCount} redis-sentinel processes` : "") +
        " on free loopback ports...",
    );
    servers.push(...(await startRedisServers(options.groups + 1)));
    checkSignal();
    const [coordinatorServer, ...groupServers] = servers as [RedisServer, ...RedisServer[]];
    const masters = sentinelCount > 0 ? [coordinatorServer, ...groupServers] : groupServers;
    const replicasOf = new Map<RedisServer, RedisServer[]>(masters.map((m) => [m, []]));
    if (replicaCount > 0) {
      await settleAll(
        masters.flatMap((master) =>
          Array.from({ length: replicaCount }, async () => {
            const replica = await RedisServer.start({ args: ["--replicaof", master.host, String(master.port)] });
            servers.push(replica);
            replicasOf.get(master)!.push(replica);
          }),
        ),
      );
      checkSignal();
      const replicas = [...replicasOf.values()].flat();
      await waitFor("the replicas to sync", REPLICAS_SYNCED_TIMEOUT_MS, checkSignal, async () => {
        const infos = await Promise.all(replicas.map((r) => respCommand(r.port, ["INFO", "replication"])));
        return infos.every((info) => /^master_link_status:up\r?$/m.test(String(info)));
      });
    }
    const names = new Map<RedisServer, string>(masters.map((m) => [m, m === coordinatorServer ? COORDINATOR_NAME : `g${groupServers.indexOf(m) + 1}`]));
    if (sentinelCount > 0) {
      const quorum = Math.floor(sentinelCount / 2) + 1;
      const monitors = masters.map((m) => ({ name: names.get(m)!, port: m.port, quorum }));
      await settleAll(
        Array.from({ length: sentinelCount }, async () => {
          sentinels.push(await RedisSentinel.start({ masters: monitors }));
        }),
      );
      checkSignal();
      await waitFor("the sentinels to know every master, replica and each other", SENTINELS_READY_TIMEOUT_MS, checkSignal, async () => {
        for (const sentinel of sentinels) {
          for (const { name } of monitors) {
            const master = pairs(await sentinel.command("SENTINEL", "MASTER", name));
            if (master["flags"] !== "master") return false;
            if (Number(master["num-slaves"]) < replicaCount || Number(master["num-other-sentinels"]) < sentinelCount - 1) return false;
          }
        }
        return true;
      });
    }

    const coordinator = `redis://${coordinatorServer.address}`;
    const sentinelAddresses = sentinels.map((s) => s.address);
    const groups: GroupSpec[] = groupServers.map((server, i) => {
      if (sentinelCount > 0) return { id: i + 1, sentinel: { name: names.get(server)! } };
      const replicas = replicasOf.get(server)!.map((r) => r.address);
      return replicas.length > 0 ? { id: i + 1, master: server.address, replicas } : { id: i + 1, master: server.address };
    });
    const redis = await connectCoordinator(coordinator);
    let table;
    try {
      const admin = new ShardisAdmin({ coordinator: redis, cluster: options.cluster });
      table = await admin.initCluster({ groups, ...(sentinelCount > 0 ? { sentinels: sentinelAddresses } : {}) });
    } finally {
      await closeQuietly(redis);
    }
    checkSignal();

    const replicaLines = (label: string, master: RedisServer) => (replicasOf.get(master) ?? []).forEach((r) => log(`${label} replica: ${r.address}`));
    log(`coordinator: ${coordinatorServer.address}`);
    replicaLines("coordinator", coordinatorServer);
    groupServers.forEach((server, i) => {
      log(`group ${i + 1}: ${server.address}`);
      replicaLines(`group ${i + 1}`, server);
    });
    for (const sentinel of sentinels) log(`sentinel: ${sentinel.address}`);
    if (sentinelCount > 0) {
      log(`sentinels watch ${[...names.values()].join(", ")} (quorum ${Math.floor(sentinelCount / 2) + 1}); the table names the groups by these names`);
    }
    log(`cluster ${options.cluster}: table version ${table.version}`);
    for (const line of tableLines(table)) log(line);
    log("");
    log("Connect from TypeScript or JavaScript:");
    log("");
    log(`  import { ShardedRedis } from "shardis";`);
    if (sentinelCount > 0) {
      const list = sentinels.map((s) => `{ host: "${s.host}", port: ${s.port} }`).join(", ");
      log(`  const redis = new ShardedRedis({ coordinator: { sentinels: [${list}], name: "${COORDINATOR_NAME}" }, cluster: "${options.cluster}" });`);
    } else {
      log(`  const redis = new ShardedRedis({ coordinator: "${coordinator}", cluster: "${options.cluster}" });`);
      if (replicaCount > 0) {
        log("  // or with reads (GET, ...) from the replicas:");
        log(`  const redis = new ShardedRedis({ coordinator: "${coordinator}", cluster: "${options.cluster}", readFrom: "replica" });`);
      }
    }
    log("");
    log("Or use the CLI from another shell:");
    log("");
    if (sentinelCount > 0) log(`  # the coordinator's master now; after a failover: redis-cli -p ${sentinels[0]!.port} SENTINEL get-master-addr-by-name ${COORDINATOR_NAME}`);
    log(`  export SHARDIS_COORDINATOR=${coordinator}`);
    log(`  export SHARDIS_CLUSTER=${options.cluster}`);
    log("  npx shardis status");
    log("");
    log(`  redis-cli -p ${coordinatorServer.port} GET 'shardis:{${options.cluster}}:table'`);
    if (sentinelCount > 0) log(`  redis-cli -p ${sentinels[0]!.port} SENTINEL failover g1   # promote group 1's replica`);
    log("");
    const processes = `${servers.length} redis-server ${sentinels.length > 0 ? `and ${sentinels.length} redis-sentinel ` : ""}processes`;
    log(
      `${SANDBOX_READY}: ${processes} on 127.0.0.1; ` +
        (options.exitAfterMs === undefined ? "press Ctrl-C to stop them" : `stopping them in ${options.exitAfterMs} ms`),
    );

    // The servers' pipes keep the process alive anyway; this makes it explicit.
    keepAlive = setInterval(() => {}, 1 << 30);
    if (options.exitAfterMs !== undefined) exitTimer = setTimeout(() => stop(`--exit-after ${options.exitAfterMs}`), options.exitAfterMs);
    const why = await stopped;
    log(`${why}: stopping the sandbox`);
    return EXIT_OK;
  } catch (error) {
    // A signal while starting kills the servers, so whatever failed then is no news.
    if (stopping) return EXIT_INTERRUPTED;
    throw error;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    clearInterval(keepAlive);
    clearTimeout(exitTimer);
    // Sentinels first, so that none of them fails a master over while the servers stop.
    await Promise.all(sentinels.map((sentinel) => sentinel.stop()));
    await Promise.all(servers.map((server) => server.stop()));
    if (servers.length > 0) log(`stopped ${servers.length} redis-server processes${sentinels.length > 0 ? ` and ${sentinels.length} redis-sentinel processes` : ""}`);
  }
}

/** Waits for every promise; then rejects with the first failure, if any (what did start is in the caller's lists, to stop). */
async function settleAll(promises: readonly Promise<void>[]): Promise<void> {
  const failed = (await Promise.allSettled(promises)).find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed !== undefined) throw failed.reason;
}

/** Polls `check` every 100 ms until it is true; `interrupted` throws to give up at once. */
async function waitFor(what: string, timeoutMs: number, interrupted: () => void, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  for (;;) {
    interrupted();
    try {
      if (await check()) return;
    } catch (error) {
      last = ` (last error: ${(error as Error).message})`;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
