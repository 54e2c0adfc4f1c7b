// `shardis rebalance`: the moves that would spread the slots over the groups
// by weight (--plan, or no flag), and carrying them out as live migrations,
// one after the other (--apply).
import { Option, type Command } from "commander";
import type { RebalancePlan } from "../admin/index.js";
import { collect, parseWeight } from "./args.js";
import { withAdmin, type CliContext } from "./context.js";
import { columns, duration, spanText } from "./format.js";
import { addRunOptions, runOptions, setMigrationHints, showMigration, type RunFlags } from "./migration-run.js";
import { plural, summaryLine } from "./progress.js";

interface RebalanceFlags extends RunFlags {
  plan?: boolean;
  apply?: boolean;
  weight?: [number, number][];
}

export function registerRebalance(program: Command, ctx: CliContext): void {
  addRunOptions(
    program
      .command("rebalance")
      .summary("spread the slots over the groups by weight: print the plan, or --apply it")
      .description(
        "spread the slots over the groups in proportion to their weights (default: equal). Prints the moves; with --apply, carries them out " +
          "one after the other as live migrations (as `shardis migrate`; the tuning options apply to each)",
      )
      .option("--plan", "print the moves that would be made, and change nothing (the default)")
      .addOption(new Option("--apply", "carry the moves out: move the slots with their keys, live").conflicts("plan"))
      .option("--weight <id=w>", "the weight of a group (repeatable; default 1 each; 0 drains the group)", collect(parseWeight)),
  ).action(async (options: RebalanceFlags, command: Command) => {
    const weights = options.weight === undefined ? undefined : Object.fromEntries(options.weight);
    await withAdmin(command, async (admin, { cluster }) => {
      const table = await admin.readTable();
      if (table !== null && table.migrations.length > 0) {
        ctx.hints.set("ERR_TOPOLOGY", "`shardis migration status` shows it; `shardis migration resume` finishes it, then plan again");
      }
      const plan = await admin.planRebalance(weights === undefined ? {} : { weights });
      for (const line of planLines(plan, cluster, options.apply === true)) ctx.out(line);
      if (options.apply !== true) {
        ctx.out(`this is a plan only: nothing was changed${plan.moves.length > 0 ? "; add --apply to carry it out" : ""}`);
        return;
      }
      if (plan.moves.length === 0) return;
      const rest = "Then run `shardis rebalance --apply` again for the moves not made yet.";
      setMigrationHints(ctx, rest);
      const reports = await showMigration(
        ctx,
        (hooks) => admin.rebalance({ ...(weights === undefined ? {} : { weights }), ...runOptions(options), ...hooks }),
        { moves: plan.moves.length, afterStop: rest },
      );
      if (reports === null) return;
      for (const report of reports) ctx.out(summaryLine(report));
      const slots = reports.reduce((sum, r) => sum + r.slots.reduce((n, [a, b]) => n + b - a + 1, 0), 0);
      const keys = reports.reduce((sum, r) => sum + r.moved, 0);
      const ms = reports.reduce((sum, r) => sum + r.ms, 0);
      const version = reports.at(-1)?.tableVersion;
      ctx.out(
        `cluster ${cluster} rebalanced: ${plural(slots, "slot")} in ${plural(reports.length, "move")}, ${plural(keys, "key")} moved in ${duration(ms)}` +
          (version === undefined ? "" : `; table version ${version}`),
      );
    });
  });
}

/** The plan: the moves, then who owns what after them. */
function planLines(plan: RebalancePlan, cluster: string, apply: boolean): string[] {
  const lines: string[] = [];
  if (plan.moves.length === 0) {
    lines.push(`cluster ${cluster} (table version ${plan.version}) is balanced: no slot ${apply ? "moves" : "would move"}`);
    return lines;
  }
  lines.push(`cluster ${cluster} (table version ${plan.version}): ${plural(plan.moved, "slot")} ${apply ? "move" : "would move"}, in ${plural(plan.moves.length, "move")}`);
  lines.push(
    ...columns([
      ["from", "to", "slots", "ranges"],
      ...plan.moves.map((move) => [`group ${move.from}`, `group ${move.to}`, `${move.count}`, move.slots.map(([from, to]) => spanText(from, to)).join(", ")]),
    ]),
  );
  lines.push("after the moves:");
  const owners = new Map<number, { count: number; ranges: string[] }>();
  // Groups drained by weight 0 own nothing afterwards, but are listed.
  for (const move of plan.moves) owners.set(move.from, { count: 0, ranges: [] });
  for (const range of plan.target) {
    const entry = owners.get(range.group) ?? { count: 0, ranges: [] };
    entry.count += range.to - range.from + 1;
    entry.ranges.push(spanText(range.from, range.to));
    owners.set(range.group, entry);
  }
  lines.push(
    ...columns([
      ["group", "slots", "ranges"],
      ...[...owners].sort(([a], [b]) => a - b).map(([group, { count, ranges }]) => [`${group}`, `${count}`, ranges.length > 0 ? ranges.join(", ") : "-"]),
    ]),
  );
  return lines;
}
