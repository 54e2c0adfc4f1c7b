// `shardis init`: writes the first slot table of a cluster (version 1).
import type { Command } from "commander";
import type { GroupSpec } from "../topology/table.js";
import { collect, collectAll, missingSentinels, parseGroupSpec, parseHostPortList } from "./args.js";
import { redactUrl, usageError, withAdmin, type CliContext } from "./context.js";
import { sentinelLines, tableLines } from "./format.js";

export function registerInit(program: Command, ctx: CliContext): void {
  program
    .command("init")
    .summary("create the cluster's slot table (version 1)")
    .description(
      "create the cluster's slot table in the coordinator: the groups given, every slot split evenly over them in that order. " +
        "A group is its master and replicas (1=10.0.0.1:6379,10.0.0.2:6379), or the name Sentinel monitors its master under " +
        "(2=sentinel:mymaster; then give the Sentinels with --sentinels)",
    )
    .requiredOption(
      "--group <spec>",
      "a group (repeat for each): <id>=<host:port>[,<replica host:port>...] (its master, then its replicas), " +
        "or <id>=sentinel:<name> (the name Sentinel monitors its master under; needs --sentinels)",
      collect(parseGroupSpec),
    )
    .option("--sentinels <host:port,...>", "the Sentinels that watch the sentinel:<name> groups (comma-separated, or repeat)", collectAll(parseHostPortList))
    .option("--force", "replace a table that is already there (its clients move to the new one)")
    .action(async (options: { group: GroupSpec[]; sentinels?: string[]; force?: boolean }, command: Command) => {
      const sentinels = options.sentinels ?? [];
      const missing = missingSentinels(options.group, sentinels);
      if (missing !== null) usageError(command, missing);
      ctx.hints.set("ERR_CLUSTER_EXISTS", "to replace that table, run the same `shardis init` with --force");
      await withAdmin(command, async (admin, { coordinator, cluster }) => {
        const table = await admin.initCluster({
          groups: options.group,
          ...(sentinels.length > 0 ? { sentinels } : {}),
          force: options.force === true,
        });
        ctx.out(`cluster ${cluster} initialized at ${redactUrl(coordinator)}: table version ${table.version}, ${table.groups.length} groups`);
        for (const line of tableLines(table)) ctx.out(line);
        for (const line of sentinelLines(table)) ctx.out(line);
      });
    });
}
