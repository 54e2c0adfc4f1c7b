// `shardis slots assign`: gives slots to a group by rewriting the table; no
// key moves (that is live migration), so the admin refuses slots that hold keys.
import type { Command } from "commander";
import { parseGroupId, parseSlotList, type SlotSpan } from "./args.js";
import { withAdmin, type CliContext } from "./context.js";
import { spanText, tableLines } from "./format.js";

export function registerSlots(program: Command, ctx: CliContext): void {
  const slots = program.command("slots").description("change who owns which slots").summary("give slots to a group (slots assign)");

  slots
    .command("assign")
    .summary("give empty slots to a group, in the table only")
    .description(
      "make <group> the owner of the slots given, in the table only: keys are not moved, so this is refused while the slots hold keys on their current owner",
    )
    .argument("<slots>", "slots and ranges, e.g. 0-99,512 (0..1023)", parseSlotList)
    .argument("<group>", "the group that gets them", parseGroupId)
    .option("--skip-key-check", "do not check that the slots hold no keys (their keys become unreachable)")
    .action(async (ranges: SlotSpan[], group: number, options: { skipKeyCheck?: boolean }, command: Command) => {
      ctx.hints.set("ERR_GROUP_UNAVAILABLE", "--skip-key-check skips the check (keys left in those slots become unreachable)");
      await withAdmin(command, async (admin, { cluster }) => {
        const before = await admin.readTable();
        const table = await admin.assignSlots(ranges, group, { skipKeyCheck: options.skipKeyCheck === true });
        const slots = ranges.map((r) => spanText(r.from, r.to)).join(", ");
        if (table.version === before?.version) {
          ctx.out(`group ${group} already owns slots ${slots} in cluster ${cluster}; nothing was changed (table version ${table.version})`);
          return;
        }
        const count = new Set(ranges.flatMap((r) => Array.from({ length: r.to - r.from + 1 }, (_, i) => r.from + i))).size;
        ctx.out(`slots ${slots} (${count}) assigned to group ${group} in cluster ${cluster} (table version ${table.version})`);
        for (const line of tableLines(table)) ctx.out(line);
      });
    });
}
