// How a migration's progress is shown. On a terminal: one line with a bar,
// redrawn in place; in a pipe or a log: one plain line per phase and at most
// one progress line per second. The lines themselves are pure functions of a
// MigrationProgress; ProgressPrinter decides when and where they go.
import type { MigrationProgress, MigrationReport } from "../admin/index.js";
import { duration, spanText } from "./format.js";

/** A terminal to draw on (stdout when it is a TTY). */
export interface Terminal {
  write(text: string): void;
  /** Its width in characters. */
  columns(): number;
}

export interface ProgressPrinterOptions {
  /** A finished line (a phase change, a plain progress line). */
  readonly out: (line: string) => void;
  /** Where the bar is drawn; null: no bar, plain lines only. */
  readonly terminal: Terminal | null;
  /** A monotonic clock in ms. */
  readonly now: () => number;
}

/** The bar is redrawn at most this often. */
const REDRAW_MS = 100;
/** A plain progress line at most this often... */
const LINE_MS = 1000;
/** ...and when nothing changed, at most this often (a sign of life in long waits). */
const SAME_LINE_MS = 10_000;
const BAR_WIDTH = 20;
const CLEAR_LINE = "\r\x1b[K";

/** "0..99, 200" */
export function slotsText(slots: MigrationProgress["slots"]): string {
  return slots.map(([from, to]) => spanText(from, to)).join(", ");
}

/** "1 key", "2 keys" */
export function plural(n: number, word: string, words = `${word}s`): string {
  return `${n} ${n === 1 ? word : words}`;
}

export function slotCount(slots: MigrationProgress["slots"]): number {
  return slots.reduce((sum, [from, to]) => sum + to - from + 1, 0);
}

/** The first line printed for a migration. */
export function headerLine(p: Pick<MigrationProgress, "id" | "slots" | "from" | "to">): string {
  return `migration ${p.id}: slots ${slotsText(p.slots)} (${plural(slotCount(p.slots), "slot")}) from group ${p.from} to group ${p.to}`;
}

/** The line printed when a migration enters `p.phase`. */
export function phaseLine(p: MigrationProgress): string {
  switch (p.phase) {
    case "pending":
      return "pending: the table announces the migration; waiting for every client to acknowledge it";
    case "preparing":
      return "preparing: clients hold their commands for these slots; waiting for their acks";
    case "migrating":
      return `migrating: moving the keys from group ${p.from} to group ${p.to}${p.moved > 0 ? ` (${p.moved} moved before)` : ""}`;
    case "verifying":
      return `verifying: ${p.moved} keys moved; checking that group ${p.from} holds no key of these slots any more`;
    case "done":
      return `done: giving the slots to group ${p.to}`;
  }
}

/** Keys to move in all, estimated from the speed and the time left; null without an estimate. */
export function estimatedTotal(p: MigrationProgress): number | null {
  if (p.etaMs === null || !(p.keysPerSec > 0)) return null;
  return p.moved + Math.round((p.etaMs * p.keysPerSec) / 1000);
}

/** "[########------------]" for `fraction` in 0..1; all "-" when unknown. */
export function bar(fraction: number | null, width = BAR_WIDTH): string {
  const filled = fraction === null ? 0 : Math.round(Math.min(1, Math.max(0, fraction)) * width);
  return `[${"#".repeat(filled)}${"-".repeat(width - filled)}]`;
}

/** "1 client to acknowledge: abc" / "3 clients to acknowledge: a, b, c" (at most 5 named). */
function waitingText(ids: readonly string[]): string {
  const shown = ids.slice(0, 5).join(", ") + (ids.length > 5 ? `, ... (${ids.length} in all)` : "");
  return `${plural(ids.length, "client")} to acknowledge: ${shown}`;
}

/** `n` to 3 significant digits: 44302 -> 44300 (estimates are no more precise). */
function roughly(n: number): number {
  if (n < 1000) return n;
  const step = 10 ** (Math.floor(Math.log10(n)) - 2);
  return Math.round(n / step) * step;
}

/** "4210/~10000 keys" (no estimate: "4210 keys"). */
function keysText(p: MigrationProgress, total: number | null): string {
  return total === null ? `${p.moved} keys` : `${p.moved}/~${Math.max(p.moved, roughly(total))} keys`;
}

function etaText(p: MigrationProgress): string {
  return p.etaMs === null ? "ETA ?" : `ETA ${duration(p.etaMs)}`;
}

/** The plain progress line (pipes, logs); `waitedMs`: how long the current wait has lasted. */
export function progressLine(p: MigrationProgress, waitedMs = 0): string {
  if (p.waitingFor.length > 0) return `${p.phase}: waiting ${duration(waitedMs)} for ${waitingText(p.waitingFor)}`;
  if (p.phase === "migrating") return `migrating: ${keysText(p, estimatedTotal(p))} moved, ${p.keysPerSec} keys/s, ${etaText(p)}`;
  if (p.phase === "verifying") return `verifying: ${p.moved} keys moved, ${p.scanned} scanned`;
  return `${p.phase}:`;
}

/** The bar line for a terminal, cut to `width` characters. */
export function barLine(p: MigrationProgress, width: number, waitedMs = 0): string {
  const phase = p.phase.padEnd(9);
  let text: string;
  if (p.waitingFor.length > 0) {
    text = `${phase} waiting ${duration(waitedMs)} for ${waitingText(p.waitingFor)}`;
  } else if (p.phase === "migrating") {
    const total = estimatedTotal(p);
    const fraction = total === null || total === 0 ? null : p.moved / total;
    text = `${phase} ${bar(fraction)} ${keysText(p, total)}  ${p.keysPerSec} keys/s  ${etaText(p)}`;
  } else if (p.phase === "verifying" || p.phase === "done") {
    text = `${phase} ${bar(1)} ${p.moved} keys moved`;
  } else {
    text = `${phase} ${bar(null)}`;
  }
  text = `${text}  slots ${slotsText(p.slots)} ${p.from}->${p.to}`;
  const max = Math.max(20, width - 1);
  return text.length > max ? `${text.slice(0, max - 3)}...` : text;
}

/** One line saying what a finished migration did. */
export function summaryLine(report: MigrationReport): string {
  const parts = [
    `migration ${report.id} done: ${plural(report.moved, "key")} of slots ${slotsText(report.slots)} (${plural(slotCount(report.slots), "slot")}) ` +
      `moved from group ${report.from} to group ${report.to} in ${duration(report.ms)}`,
    `${report.keysPerSec} keys/s`,
    plural(report.verifyPasses, "verify pass", "verify passes"),
    `table version ${report.tableVersion}`,
  ];
  if (report.resumed) parts.push("resumed");
  if (report.cleared > 0) parts.push(`${plural(report.cleared, "key")} cleared on group ${report.to} first`);
  if (report.busy > 0) parts.push(`${plural(report.busy, "source copy", "source copies")} dropped (group ${report.to} had the newer one)`);
  if (report.largeKeys > 0) parts.push(`${plural(report.largeKeys, "large key")} moved alone`);
  if (report.waitedOut.length > 0) {
    parts.push(
      `${plural(report.waitedOut.length, "client")} waited out (lease ran out), ${plural(report.fencedConnections, "connection")} of theirs killed on group ${report.from}`,
    );
  }
  return parts.join(", ");
}

/**
 * Shows the progress of one or more migrations (a rebalance runs several,
 * one after the other), told through update().
 */
export class ProgressPrinter {
  private last: MigrationProgress | null = null;
  /** Migrations seen, in order (a new id prints a header). */
  private readonly ids: string[] = [];
  /** The bar is on screen (the cursor is at its end). */
  private drawn = false;
  private drawnAt = -Infinity;
  private lineAt = -Infinity;
  private lineKey = "";
  /** When the current wait for acks began. */
  private waitingSince: number | null = null;

  constructor(
    private readonly options: ProgressPrinterOptions,
    /** For a rebalance: how many moves are planned, shown in the headers ("move 2/3"). */
    private readonly moves: number | null = null,
  ) {}

  /** The last progress told, if any. */
  get latest(): MigrationProgress | null {
    return this.last;
  }

  update(p: MigrationProgress): void {
    const now = this.options.now();
    const previous = this.last;
    this.last = p;
    const newJob = previous === null || previous.id !== p.id;
    if (p.waitingFor.length === 0) this.waitingSince = null;
    else this.waitingSince ??= now;
    if (newJob || previous.phase !== p.phase) {
      const lines: string[] = [];
      if (newJob) {
        this.ids.push(p.id);
        const move = this.moves === null ? "" : `move ${this.ids.length}${this.ids.length <= this.moves ? `/${this.moves}` : ""}: `;
        lines.push(move + headerLine(p));
      }
      lines.push(phaseLine(p));
      for (const line of lines) this.line(line);
      this.lineAt = now;
      this.lineKey = this.keyOf(p);
      this.draw(p, now);
      return;
    }
    if (this.options.terminal !== null) {
      if (now - this.drawnAt >= REDRAW_MS) this.draw(p, now);
      return;
    }
    const key = this.keyOf(p);
    const since = now - this.lineAt;
    if (since >= LINE_MS && (key !== this.lineKey || since >= SAME_LINE_MS)) {
      this.options.out(progressLine(p, this.waited(now)));
      this.lineAt = now;
      this.lineKey = key;
    }
  }

  /** A line of the command's own between updates (e.g. "stopping..."). */
  note(line: string): void {
    this.line(line);
    if (this.last !== null) this.draw(this.last, this.options.now());
  }

  /**
   * Takes the bar off the screen: erased (`keep` false, e.g. before the
   * summary), or left as the last line (`keep`, e.g. before an error).
   */
  close(keep: boolean): void {
    if (!this.drawn) return;
    // Kept, it shows the latest state (the last redraw may have been skipped).
    if (keep && this.last !== null) this.draw(this.last, this.options.now());
    this.options.terminal!.write(keep ? "\n" : CLEAR_LINE);
    this.drawn = false;
  }

  /** What a plain progress line says, without the times (a line is printed again only when this changes, or after a while). */
  private keyOf(p: MigrationProgress): string {
    return `${p.phase} ${p.moved} ${p.waitingFor.join(",")}`;
  }

  private waited(now: number): number {
    return this.waitingSince === null ? 0 : now - this.waitingSince;
  }

  /** A finished line, above the bar. */
  private line(text: string): void {
    if (this.drawn) {
      this.options.terminal!.write(CLEAR_LINE);
      this.drawn = false;
    }
    this.options.out(text);
  }

  private draw(p: MigrationProgress, now: number): void {
    const terminal = this.options.terminal;
    if (terminal === null) return;
    terminal.write(CLEAR_LINE + barLine(p, terminal.columns(), this.waited(now)));
    this.drawn = true;
    this.drawnAt = now;
  }
}
