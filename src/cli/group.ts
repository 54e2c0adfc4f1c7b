// `shardis group add|remove`: groups join the table owning no slots, and
// leave it only once they own none.
import type { Command } from "commander";
import { collect, parseGroupId, parseHostPort } from "./args.js";
import { withAdmin, type CliContext } from "./context.js";
import { tableLines } from "./format.js";

export function registerGroup(program: Command, ctx: CliContext): void {
  const group = program.command("group").description("add or remove a group (a master and its replicas)").summary("add or remove a group");

  group
    .command("add")
    .summary("add a group that owns no slots yet")
    .description("add a group that owns no slots yet (give it slots with `slots assign` or `rebalance`)")
    .argument("<id>", "the new group's id, a positive integer", parseGroupId)
    .argument("<host:port>", "its master", parseHostPort)
    .option("--replica <host:port>", "a replica of the master (repeatable)", collect(parseHostPort))
    .action(async (id: number, master: string, options: { replica?: string[] }, command: Command) => {
      await withAdmin(command, async (admin, { cluster }) => {
        const replicas = options.replica ?? [];
        const table = await admin.addGroup(replicas.length > 0 ? { id, master, replicas } : { id, master });
        ctx.out(`group ${id} added to cluster ${cluster} (table version ${table.version}); it owns no slots yet`);
        for (const line of tableLines(table)) ctx.out(line);
      });
    });

  group
    .command("remove")
    .summary("remove a group that owns no slots")
    .description("remove a group that owns no slots")
    .argument("<id>", "the group's id", parseGroupId)
    .action(async (id: number, _options: object, command: Command) => {
      await withAdmin(command, async (admin, { cluster }) => {
        const table = await admin.removeGroup(id);
        ctx.out(`group ${id} removed from cluster ${cluster} (table version ${table.version})`);
        for (const line of tableLines(table)) ctx.out(line);
      });
    });
}
