// The `shardis` command line (bin/shardis.js calls main). Each command group
// lives in its own module under cli/; this file builds the commander program,
// runs it, and turns what happened into an exit code.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { Command, CommanderError, Option } from "commander";
import { ShardisError } from "./errors.js";
import { parseClusterName, parseCoordinatorUrl } from "./cli/args.js";
import { DEFAULT_CLUSTER, DEFAULT_COORDINATOR, EXIT_FAILED, EXIT_OK, EXIT_USAGE, type CliContext } from "./cli/context.js";
import { registerDemo } from "./cli/demo.js";
import { registerGroup } from "./cli/group.js";
import { registerInit } from "./cli/init.js";
import { registerMigrate } from "./cli/migrate.js";
import { registerRebalance } from "./cli/rebalance.js";
import { registerSandbox } from "./cli/sandbox.js";
import { registerSlots } from "./cli/slots.js";
import { registerStatus } from "./cli/status.js";
import type { Terminal } from "./cli/progress.js";

const HELP_AFTER = `
Environment:
  SHARDIS_COORDINATOR    default for --coordinator
  SHARDIS_CLUSTER        default for --cluster
  SHARDIS_REDIS_SERVER   the redis-server binary for sandbox and demo (default: redis-server on PATH)

Exit codes: 0 ok, 1 the command failed, 2 bad usage, 130 interrupted (Ctrl-C).
The stored table format: docs/table-format.md.`;

/**
 * Runs the CLI with `argv` (the arguments after the program name) and
 * resolves to the exit code: 0 ok, 1 the command failed, 2 bad usage, 130
 * interrupted. Output goes to stdout, errors to stderr.
 */
export async function main(argv: string[]): Promise<number> {
  const ctx: CliContext = {
    out: (line) => void process.stdout.write(`${line}\n`),
    err: (line) => void process.stderr.write(`${line}\n`),
    exitCode: EXIT_OK,
    hints: new Map(),
    terminal: stdoutTerminal(),
  };
  // `shardis … | head`: a reader that went away is no failure of the command.
  process.stdout.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code !== "EPIPE") throw error;
  });
  const program = buildProgram(ctx);
  try {
    await program.parseAsync(argv, { from: "user" });
    return ctx.exitCode;
  } catch (error) {
    // Commander has already printed its message (and the help) for these.
    if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    reportError(ctx, error);
    return EXIT_FAILED;
  }
}

function buildProgram(ctx: CliContext): Command {
  const program = new Command("shardis")
    .description("shardis: many Redis servers as one (1024 slots over groups, routed in your process)")
    .version(version(), "-v, --version", "print the version")
    .helpOption("-h, --help", "show help")
    .addOption(
      new Option("--coordinator <url>", "the Redis that holds the slot table")
        .env("SHARDIS_COORDINATOR")
        .default(DEFAULT_COORDINATOR)
        .argParser(parseCoordinatorUrl),
    )
    .addOption(new Option("--cluster <name>", "the cluster's name in the coordinator").env("SHARDIS_CLUSTER").default(DEFAULT_CLUSTER).argParser(parseClusterName))
    // Inherited by every subcommand made with .command():
    .exitOverride()
    .showHelpAfterError()
    .configureHelp({ showGlobalOptions: true })
    .addHelpText("after", HELP_AFTER);

  registerSandbox(program, ctx);
  registerInit(program, ctx);
  registerStatus(program, ctx);
  registerGroup(program, ctx);
  registerSlots(program, ctx);
  registerRebalance(program, ctx);
  registerMigrate(program, ctx);
  registerDemo(program, ctx);
  return program;
}

/** stdout, when it is a terminal that can redraw a line (progress bars); null for pipes and files. */
function stdoutTerminal(): Terminal | null {
  if (process.stdout.isTTY !== true || process.env.TERM === "dumb") return null;
  return { write: (text) => void process.stdout.write(text), columns: () => process.stdout.columns || 80 };
}

/** A ShardisError prints its message and code; other errors their message (with the stack when it looks like a bug, or DEBUG is set). */
function reportError(ctx: CliContext, error: unknown): void {
  if (error instanceof ShardisError) {
    ctx.err(`shardis: ${error.message} [${error.code}]`);
    const hint = ctx.hints.get(error.code);
    if (hint !== undefined) ctx.err(`shardis: ${hint}`);
    return;
  }
  const bug = error instanceof TypeError || error instanceof ReferenceError || error instanceof RangeError || error instanceof SyntaxError;
  if (error instanceof Error && (bug || process.env.DEBUG)) ctx.err(`shardis: ${error.stack ?? error.message}`);
  else ctx.err(`shardis: ${error instanceof Error ? error.message : String(error)}`);
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
