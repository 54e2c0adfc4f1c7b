// Text the CLI prints: tables of groups, clients and migrations, a rebalance
// plan. Pure functions from values to lines; the commands write them out.
import { tableToJson, type ClusterTable } from "../topology/format.js";
import { groupLabel, type SlotTable } from "../topology/table.js";

/** Left-aligned columns, two spaces apart; the first row is the header. */
export function columns(rows: readonly (readonly string[])[], indent = "  "): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => (indent + row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join("  ")).trimEnd());
}

/** The slot ranges `group` owns in `table`, e.g. "0..340, 1000..1023", and how many slots that is. */
export function slotsOf(table: SlotTable, group: number): { ranges: string; count: number } {
  const owned = table.slots.filter((range) => range.group === group);
  return {
    ranges: owned.length === 0 ? "-" : owned.map((range) => spanText(range.from, range.to)).join(", "),
    count: owned.reduce((sum, range) => sum + range.to - range.from + 1, 0),
  };
}

export function spanText(from: number, to: number): string {
  return from === to ? `${from}` : `${from}..${to}`;
}

/** One line per group: id, master (or "sentinel <name>"), replicas, slot count and ranges. */
export function tableLines(table: SlotTable): string[] {
  return columns([
    ["group", "master", "replicas", "slots", "ranges"],
    ...table.groups.map((group) => {
      const { ranges, count } = slotsOf(table, group.id);
      return [`${group.id}`, groupLabel(group), group.replicas?.length ? group.replicas.join(",") : "-", `${count}`, ranges];
    }),
  ]);
}

/** "sentinels: host:port, ..." when the table lists Sentinels (for its Sentinel-named groups); nothing when not. */
export function sentinelLines(table: SlotTable): string[] {
  return table.sentinels !== undefined && table.sentinels.length > 0 ? [`sentinels: ${table.sentinels.join(", ")}`] : [];
}

/** The migrations in a table, one line each, or "none". */
export function migrationLines(table: SlotTable): string[] {
  if (table.migrations.length === 0) return ["  none"];
  return table.migrations.map((m) => {
    const count = m.slots.reduce((sum, [from, to]) => sum + to - from + 1, 0);
    return `  ${m.slots.map(([from, to]) => spanText(from, to)).join(", ")} (${count} slots): group ${m.from} -> group ${m.to}, ${m.state}`;
  });
}

/** The table as stored in the coordinator (format 1), as a plain object for JSON output. */
export function storedTable(table: ClusterTable): unknown {
  return JSON.parse(tableToJson(table, table.cluster));
}

/** 1536 -> "1.5 KB" */
export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return "?";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** 1500 -> "1.5s", 90000 -> "1m30s" */
export function duration(ms: number): string {
  if (!Number.isFinite(ms)) return "?";
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const minutes = Math.floor(ms / 60_000);
  if (minutes < 60) return `${minutes}m${Math.floor((ms % 60_000) / 1000)}s`;
  return `${Math.floor(minutes / 60)}h${minutes % 60}m`;
}

/** A JSON.stringify replacer that writes typed arrays (e.g. a table's `owner`) as plain arrays. */
export function jsonReplacer(_key: string, value: unknown): unknown {
  return ArrayBuffer.isView(value) && !(value instanceof DataView) ? Array.from(value as unknown as ArrayLike<number>) : value;
}
