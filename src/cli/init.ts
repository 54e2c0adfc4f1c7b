// `shardis init`: writes the first slot table of a cluster (version 1).
import type { Command } from "commander";
import type { GroupSpec } from "../topology/table.js";
import { collect, parseGroupSpec } from "./args.js";
import { redactUrl, withAdmin, type CliContext } from "./context.js";
import { tableLines } from "./format.js";

export function registerInit(program: Command, ctx: CliContext): void {
  program
    .command("init")
    .summary("create the cluster's slot table (version 1)")
    .description("create the cluster's slot table in the coordinator: the groups given, every slot split evenly over them in that order")
    .requiredOption(
      "--group <id=host:port[,replica...]>",
      "a group: its id, its master, then its replicas (repeat for each group)",
      collect(parseGroupSpec),
    )
    .option("--force", "replace a table that is already there (its clients move to the new one)")
    .action(async (options: { group: GroupSpec[]; force?: boolean }, command: Command) => {
      ctx.hints.set("ERR_CLUSTER_EXISTS", "to replace that table, run the same `shardis init` with --force");
      await withAdmin(command, async (admin, { coordinator, cluster }) => {
        const table = await admin.initCluster({ groups: options.group, force: options.force === true });
        ctx.out(`cluster ${cluster} initialized at ${redactUrl(coordinator)}: table version ${table.version}, ${table.groups.length} groups`);
        for (const line of tableLines(table)) ctx.out(line);
      });
    });
}
