// `shardis rebalance --plan`: the moves that would spread the slots over the
// groups by weight. Carrying them out needs live migration, which is not
// built yet, so without --plan this is a usage error that says so.
import type { Command } from "commander";
import { collect, parseWeight } from "./args.js";
import { EXIT_USAGE, withAdmin, type CliContext } from "./context.js";
import { columns, spanText } from "./format.js";

export function registerRebalance(program: Command, ctx: CliContext): void {
  program
    .command("rebalance")
    .summary("plan spreading the slots over the groups by weight (--plan)")
    .description("spread the slots over the groups in proportion to their weights (default: equal)")
    .option("--plan", "print the moves that would be made, and change nothing")
    .option("--weight <id=w>", "the weight of a group (repeatable; default 1 each)", collect(parseWeight))
    .action(async (options: { plan?: boolean; weight?: [number, number][] }, command: Command) => {
      if (options.plan !== true) {
        ctx.err(
          "shardis rebalance: only `shardis rebalance --plan` works so far. Moving slots between groups while clients use them " +
            "needs live slot migration, which shardis does not have yet (it comes with the migration feature). Nothing was changed.",
        );
        ctx.exitCode = EXIT_USAGE;
        return;
      }
      const weights = options.weight === undefined ? undefined : Object.fromEntries(options.weight);
      await withAdmin(command, async (admin, { cluster }) => {
        const plan = await admin.planRebalance(weights === undefined ? {} : { weights });
        if (plan.moves.length === 0) {
          ctx.out(`cluster ${cluster} (table version ${plan.version}) is balanced: no slot would move`);
        } else {
          ctx.out(`cluster ${cluster} (table version ${plan.version}): ${plan.moved} slots would move, in ${plan.moves.length} moves`);
          ctx.out(
            columns([
              ["from", "to", "slots", "ranges"],
              ...plan.moves.map((move) => [
                `group ${move.from}`,
                `group ${move.to}`,
                `${move.count}`,
                move.slots.map(([from, to]) => spanText(from, to)).join(", "),
              ]),
            ]).join("\n"),
          );
        }
        ctx.out("after the moves:");
        const owners = new Map<number, { count: number; ranges: string[] }>();
        // Groups drained by weight 0 own nothing afterwards, but are listed.
        for (const move of plan.moves) owners.set(move.from, { count: 0, ranges: [] });
        for (const range of plan.target) {
          const entry = owners.get(range.group) ?? { count: 0, ranges: [] };
          entry.count += range.to - range.from + 1;
          entry.ranges.push(spanText(range.from, range.to));
          owners.set(range.group, entry);
        }
        ctx.out(
          columns([
            ["group", "slots", "ranges"],
            ...[...owners].sort(([a], [b]) => a - b).map(([group, { count, ranges }]) => [`${group}`, `${count}`, ranges.length > 0 ? ranges.join(", ") : "-"]),
          ]).join("\n"),
        );
        ctx.out("this is a plan only: nothing was changed (carrying it out needs live slot migration, not built yet)");
      });
    });
}
