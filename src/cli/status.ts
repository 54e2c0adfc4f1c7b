// `shardis status`: the table, each group's keys and memory, the registered
// clients and the migrations, as text or (--json) as the admin returns it.
import type { Command } from "commander";
import type { ClusterStatus, GroupStatus } from "../admin/index.js";
import { EXIT_FAILED, redactUrl, withAdmin, type CliContext } from "./context.js";
import { bytes, columns, duration, jsonReplacer, migrationLines, storedTable } from "./format.js";

export function registerStatus(program: Command, ctx: CliContext): void {
  program
    .command("status")
    .summary("show the table, groups, replication, keys, memory, clients and migrations")
    .description(
      "show the cluster: table version, groups with their master (through Sentinel for Sentinel-named groups), slots, keys and memory; " +
        "each replica's link and lag (INFO replication); clients; migrations",
    )
    .option("--json", "print the status as JSON (the table as stored, format 1)")
    .action(async (options: { json?: boolean }, command: Command) => {
      await withAdmin(command, async (admin, { coordinator, cluster }) => {
        const status = await admin.status();
        if (options.json === true) {
          const json = { ...status, table: status.table === null ? null : storedTable(status.table) };
          ctx.out(JSON.stringify(json, jsonReplacer, 2));
        } else {
          for (const line of statusLines(status, redactUrl(coordinator))) ctx.out(line);
        }
        if (status.table === null) {
          ctx.err(`shardis: cluster ${cluster} has no slot table at ${redactUrl(coordinator)}; create one with \`shardis init --group 1=host:port ...\``);
          ctx.exitCode = EXIT_FAILED;
        }
      });
    });
}

/** An address group's master; a Sentinel-named group's name and the master its sentinels give now. */
function masterText(group: GroupStatus): string {
  if (group.sentinel === undefined) return group.master;
  return `${group.masterAddress ?? "?"} (sentinel ${group.sentinel})`;
}

export function statusLines(status: ClusterStatus, coordinator: string): string[] {
  const { table } = status;
  if (table === null) return [`cluster ${status.cluster}  coordinator ${coordinator}  no table`];
  const lines = [`cluster ${status.cluster}  coordinator ${coordinator}  table version ${table.version}`, "", `groups (${status.groups.length}):`];
  lines.push(
    ...columns([
      ["group", "master", "replicas", "slots", "ranges", "keys", "memory"],
      ...status.groups.map((g) => [
        `${g.id}`,
        masterText(g),
        g.replicas.length > 0 ? g.replicas.map((r) => r.address).join(",") : "-",
        `${g.slots}`,
        g.ranges === "" ? "-" : g.ranges,
        g.keys === null ? "?" : `${g.keys}`,
        bytes(g.usedMemory),
      ]),
    ]),
  );
  for (const g of status.groups) if (g.error !== undefined) lines.push(`  group ${g.id}: ${g.error}`);
  const replicas = status.groups.flatMap((g) => g.replicas.map((r) => ({ group: g.id, ...r })));
  if (replicas.length > 0) {
    lines.push("", `replication (${replicas.length} replicas):`);
    lines.push(
      ...columns([
        ["group", "replica", "link", "lag", "last io", ""],
        ...replicas.map((r) => [
          `${r.group}`,
          r.address,
          r.link,
          r.lagBytes === null ? "?" : bytes(r.lagBytes),
          r.lastIoSeconds === null ? "-" : `${r.lastIoSeconds}s ago`,
          r.error ?? "",
        ]),
      ]),
    );
  }
  lines.push("", `clients (${status.clients.length}):`);
  if (status.clients.length === 0) lines.push("  none registered");
  else {
    lines.push(
      ...columns([
        ["id", "version", "age", "lease", "host", "pid", "name"],
        ...status.clients.map((c) => [
          c.id,
          `${c.version}`,
          duration(c.ageMs),
          c.expired ? (c.removed ? "expired, removed" : "expired") : duration(c.leaseMs),
          c.host,
          `${c.pid}`,
          c.name,
        ]),
      ]),
    );
  }
  lines.push("", "migrations:", ...migrationLines(table));
  return lines;
}
