// `shardis sandbox`: a throwaway cluster on this machine to try shardis on.
// Starts one coordinator and N group redis-server processes on free loopback
// ports (each in its own temp dir, via shardis/testing), writes the first
// slot table, prints how to connect, and runs until SIGINT/SIGTERM (or
// --exit-after), then stops every server it started.
import type { Command } from "commander";
import { ShardisAdmin } from "../admin/index.js";
import { closeQuietly } from "../coordinator/connection.js";
import { startRedisServers, type RedisServer } from "../testing/index.js";
import { parseInteger } from "./args.js";
import { connectCoordinator, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, type CliContext } from "./context.js";
import { tableLines } from "./format.js";

export interface SandboxOptions {
  /** Number of groups (one redis-server each). */
  groups: number;
  cluster: string;
  /** Stop by itself after this long; by default it runs until a signal. */
  exitAfterMs?: number;
  log: (line: string) => void;
}

/** The line printed once the cluster is up and initialized. */
export const SANDBOX_READY = "sandbox ready";

export function registerSandbox(program: Command, ctx: CliContext): void {
  program
    .command("sandbox")
    .summary("start a throwaway local cluster to try shardis on (until Ctrl-C)")
    .description(
      "start a throwaway cluster on this machine: a coordinator and N groups (local redis-server processes on free loopback ports), " +
        "initialized and ready to connect to; runs until Ctrl-C, then stops them all. Uses cluster name \"sandbox\" unless --cluster is given. " +
        "Needs redis-server on PATH (or SHARDIS_REDIS_SERVER)",
    )
    .option("--groups <n>", "number of groups, 1-16", (text: string) => parseInteger("--groups", text, 1, 16), 3)
    .option("--exit-after <ms>", "stop by itself after this many milliseconds (for scripts)", (text: string) =>
      parseInteger("--exit-after", text, 1, 2_147_483_647),
    )
    .action(async (options: { groups: number; exitAfter?: number }, command: Command) => {
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
        cluster,
        ...(options.exitAfter === undefined ? {} : { exitAfterMs: options.exitAfter }),
        log: ctx.out,
      });
    });
}

/** Runs the sandbox; resolves to the exit code (0 stopped as asked, 130 interrupted while starting); rejects when it cannot start. */
export async function runSandbox(options: SandboxOptions): Promise<number> {
  const { log } = options;
  let stop!: (why: string) => void;
  const stopped = new Promise<string>((resolve) => (stop = resolve));
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    stopping = true;
    stop(signal);
  };
  // shardis/testing kills its servers on SIGINT/SIGTERM; with these listeners
  // installed it leaves the process alive, so the sandbox stops them in order and exits 0.
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  let servers: RedisServer[] = [];
  let keepAlive: NodeJS.Timeout | undefined;
  let exitTimer: NodeJS.Timeout | undefined;
  try {
    log(`starting ${options.groups + 1} redis-server processes (1 coordinator + ${options.groups} groups) on free loopback ports...`);
    servers = await startRedisServers(options.groups + 1);
    if (stopping) return EXIT_INTERRUPTED;
    const [coordinatorServer, ...groupServers] = servers as [RedisServer, ...RedisServer[]];
    const coordinator = `redis://${coordinatorServer.address}`;
    const redis = await connectCoordinator(coordinator);
    let table;
    try {
      const admin = new ShardisAdmin({ coordinator: redis, cluster: options.cluster });
      table = await admin.initCluster({ groups: groupServers.map((server, i) => ({ id: i + 1, master: server.address })) });
    } finally {
      await closeQuietly(redis);
    }
    if (stopping) return EXIT_INTERRUPTED;

    log(`coordinator: ${coordinatorServer.address}`);
    groupServers.forEach((server, i) => log(`group ${i + 1}: ${server.address}`));
    log(`cluster ${options.cluster}: table version ${table.version}`);
    for (const line of tableLines(table)) log(line);
    log("");
    log("Connect from TypeScript or JavaScript:");
    log("");
    log(`  import { ShardedRedis } from "shardis";`);
    log(`  const redis = new ShardedRedis({ coordinator: "${coordinator}", cluster: "${options.cluster}" });`);
    log("");
    log("Or use the CLI from another shell:");
    log("");
    log(`  export SHARDIS_COORDINATOR=${coordinator}`);
    log(`  export SHARDIS_CLUSTER=${options.cluster}`);
    log("  npx shardis status");
    log("");
    log(`  redis-cli -p ${coordinatorServer.port} GET 'shardis:{${options.cluster}}:table'`);
    log("");
    log(
      `${SANDBOX_READY}: ${servers.length} redis-server processes on 127.0.0.1; ` +
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
    await Promise.all(servers.map((server) => server.stop()));
    if (servers.length > 0) log(`stopped ${servers.length} redis-server processes`);
  }
}
