// What every command of the CLI shares: where output goes, the exit code of
// this run, the global options (--coordinator, --cluster), and an admin
// opened for one command and always closed after it.
import type { Command } from "commander";
import IORedis, { type Redis } from "ioredis";
import { ShardisAdmin } from "../admin/index.js";
import { closeQuietly } from "../coordinator/connection.js";
import { CoordinatorUnavailableError } from "../errors.js";
import type { Terminal } from "./progress.js";

/** Exit codes: 0 ok, 1 the command failed, 2 bad usage, 130 interrupted. */
export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;
export const EXIT_INTERRUPTED = 130;

export const DEFAULT_COORDINATOR = "redis://127.0.0.1:6379";
export const DEFAULT_CLUSTER = "main";

/** One run of `main`: its output and the exit code the commands set. */
export interface CliContext {
  /** A line to stdout. */
  out(line: string): void;
  /** A line to stderr. */
  err(line: string): void;
  /** Set by commands that end with something other than 0 without throwing. */
  exitCode: number;
  /**
   * What to tell the user after a ShardisError with this code, in the
   * command line's words (the errors speak of the library's options).
   */
  hints: Map<string, string>;
  /** stdout when it is a terminal (progress bars are drawn there); null when it is a pipe or a file. */
  terminal: Terminal | null;
}

export interface GlobalOptions {
  readonly coordinator: string;
  readonly cluster: string;
}

/** Connect and command timeout of the CLI's coordinator connection. */
const COORDINATOR_TIMEOUT_MS = 5000;

/** --coordinator and --cluster as given (flag, environment or default), seen from any subcommand. */
export function globalOptions(command: Command): GlobalOptions {
  const { coordinator, cluster } = command.optsWithGlobals<{ coordinator: string; cluster: string }>();
  return { coordinator, cluster };
}

/**
 * Runs `use` with an admin on the cluster the global options name, and
 * closes it whatever happens. The coordinator connection is the CLI's own:
 * one connection attempt, bounded in time, so a coordinator that is away is
 * a CoordinatorUnavailableError within seconds rather than reconnects forever.
 * `use` also gets that connection, for reads the admin has no method for.
 */
export async function withAdmin<T>(
  command: Command,
  use: (admin: ShardisAdmin, globals: GlobalOptions, coordinator: Redis) => Promise<T>,
): Promise<T> {
  const globals = globalOptions(command);
  const redis = await connectCoordinator(globals.coordinator);
  try {
    const admin = new ShardisAdmin({ coordinator: redis, cluster: globals.cluster });
    try {
      return await use(admin, globals, redis);
    } finally {
      await admin.close();
    }
  } finally {
    await closeQuietly(redis);
  }
}

/** Connects to the coordinator at `url` once, or throws a CoordinatorUnavailableError saying why. */
export async function connectCoordinator(url: string): Promise<Redis> {
  const redis = new IORedis(url, {
    lazyConnect: true,
    connectTimeout: COORDINATOR_TIMEOUT_MS,
    commandTimeout: COORDINATOR_TIMEOUT_MS,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    enableAutoPipelining: false,
    connectionName: "shardis-cli",
  });
  // A failed connect() rejects with "Connection is closed."; the reason comes as an event.
  let reason: Error | undefined;
  redis.on("error", (error: Error) => (reason ??= error));
  try {
    await redis.connect();
    return redis;
  } catch (error) {
    redis.disconnect();
    const cause = reason ?? (error as Error);
    throw new CoordinatorUnavailableError(`cannot reach the coordinator at ${redactUrl(url)}: ${cause.message}`, { cause });
  }
}

/** Ends the command with a usage error (exit 2): the message, then the command's help. */
export function usageError(command: Command, message: string): never {
  const names: string[] = [];
  for (let c: Command | null = command; c !== null; c = c.parent) names.unshift(c.name());
  return command.error(`${names.join(" ")}: ${message}`, { exitCode: EXIT_USAGE, code: "shardis.usage" });
}

/** The URL with its password (if any) replaced by "***", for printing. */
export function redactUrl(url: string): string {
  return url.replace(/^(rediss?:\/\/[^:@/]*:)[^@/]*@/, "$1***@");
}
