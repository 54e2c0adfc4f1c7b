// `shardis group add|remove`: groups join the table owning no slots, and
// leave it only once they own none. A group is given by its master address
// or by its Sentinel master name.
import { InvalidArgumentError, type Command } from "commander";
import type { GroupSpec } from "../topology/table.js";
import { addGroupSpec, collect, collectAll, parseGroupId, parseHostPort, parseHostPortList, parseSentinelName } from "./args.js";
import { usageError, withAdmin, type CliContext } from "./context.js";
import { sentinelLines, tableLines } from "./format.js";

interface AddOptions {
  replica?: string[];
  sentinel?: string;
  sentinels?: string[];
}

export function registerGroup(program: Command, ctx: CliContext): void {
  const group = program.command("group").description("add or remove a group (a master and its replicas)").summary("add or remove a group");

  group
    .command("add")
    .summary("add a group that owns no slots yet")
    .description(
      "add a group that owns no slots yet (give it slots with `slots assign` or `rebalance`): " +
        "by its master <host:port> (and --replica), or by the name Sentinel monitors its master under (--sentinel <name>; " +
        "--sentinels gives the table's Sentinels when it has none yet)",
    )
    .argument("<id>", "the new group's id, a positive integer", parseGroupId)
    .argument("[host:port]", "its master (or give --sentinel instead)", parseHostPort)
    .option("--replica <host:port>", "a replica of the master (repeatable)", collect(parseHostPort))
    .option("--sentinel <name>", "a Sentinel-named group: the name its master is monitored under (instead of <host:port>)", parseSentinelName)
    .option("--sentinels <host:port,...>", "replace the table's Sentinels with these (comma-separated, or repeat)", collectAll(parseHostPortList))
    .action(async (id: number, master: string | undefined, options: AddOptions, command: Command) => {
      let spec: GroupSpec;
      try {
        spec = addGroupSpec({ id, master, replicas: options.replica, sentinel: options.sentinel });
      } catch (error) {
        if (error instanceof InvalidArgumentError) usageError(command, error.message);
        throw error;
      }
      await withAdmin(command, async (admin, { cluster }) => {
        if (spec.sentinel !== undefined && options.sentinels === undefined) {
          const current = await admin.readTable();
          if (current !== null && (current.sentinels ?? []).length === 0) {
            usageError(command, `cluster ${cluster}'s table lists no Sentinels yet: add --sentinels <host:port,...> (the Sentinels that watch ${spec.sentinel.name})`);
          }
        }
        const table = await admin.addGroup(spec, options.sentinels === undefined ? {} : { sentinels: options.sentinels });
        ctx.out(`group ${id} added to cluster ${cluster} (table version ${table.version}); it owns no slots yet`);
        for (const line of tableLines(table)) ctx.out(line);
        for (const line of sentinelLines(table)) ctx.out(line);
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
