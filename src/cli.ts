// The `shardis` command line (bin/shardis.js calls main). Each command lives
// in its own module under cli/; this file only parses and dispatches.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { runDemo } from "./cli/demo.js";

const USAGE = `Usage: shardis <command> [options]

Commands:
  demo [--groups N] [--ops N]
      Start N local redis-server processes (default 3) on free loopback
      ports, send --ops INCRs (default 20000) plus MSET/MGET batches through
      one ShardedRedis, and check that every acknowledged write is counted.
      Needs redis-server on PATH (or SHARDIS_REDIS_SERVER).
  sandbox
      Not yet: coming with the coordinator (issue 3).

Options:
  -h, --help      Show this help.
  -v, --version   Print the version.
`;

/** Exit codes: 0 ok, 1 the command failed, 2 bad usage, 130 interrupted. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case undefined:
        process.stderr.write(USAGE);
        return 2;
      case "-h":
      case "--help":
      case "help":
        process.stdout.write(USAGE);
        return 0;
      case "-v":
      case "--version":
        process.stdout.write(`${version()}\n`);
        return 0;
      case "demo":
        return await demo(rest);
      case "sandbox":
        process.stderr.write("shardis sandbox: not yet; it is coming with the coordinator (issue 3). Try `shardis demo`.\n");
        return 1;
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}`);
    }
  } catch (error) {
    if (error instanceof UsageError || isParseArgsError(error)) {
      process.stderr.write(`shardis: ${(error as Error).message}\n\n${USAGE}`);
      return 2;
    }
    throw error;
  }
}

async function demo(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      groups: { type: "string", default: "3" },
      ops: { type: "string", default: "20000" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  return runDemo({
    groups: integerOption("--groups", values.groups, 1, 16),
    ops: integerOption("--ops", values.ops, 1, 10_000_000),
    log: (line) => process.stdout.write(`${line}\n`),
  });
}

class UsageError extends Error {}

function integerOption(name: string, value: string, min: number, max: number): number {
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return n;
}

function isParseArgsError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && code.startsWith("ERR_PARSE_ARGS_");
}

/** The version in shardis's package.json (found upwards from this file: src/ or dist/cjs/). */
function version(): string {
  for (let dir = __dirname; ; dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { name?: string; version?: string };
      if (pkg.name === "shardis" && typeof pkg.version === "string") return pkg.version;
    } catch {
      // no package.json here: keep looking upwards
    }
    if (dirname(dir) === dir) return "unknown";
  }
}
