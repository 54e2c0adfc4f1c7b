/**
 * One client process of benchmarks/migration.ts (the hold in preparing): a
 * ShardedRedis following the coordinator with default options, doing steady
 * GET/SET traffic on the keys of the slots it is told are about to move.
 *
 *   node --import tsx benchmarks/migration-client.ts <coordinator url> <cluster> <key prefix> <keys in pool> <commands per second>
 *
 * JSON lines on stdin: {"type":"slots","slots":[...]} (traffic moves to the
 * keys of these slots; answers {"type":"ok"}), {"type":"report"} (answers
 * with what it measured since the last report). Exits when stdin closes, or
 * after 15 minutes whatever happens.
 *
 * What it measures, on its own clock:
 * - the hold window: from applying a table in which a migration is
 *   "preparing" (the client holds commands for its slots from then on) to
 *   applying the next table (migrating, or the migration gone), read from the
 *   `topology` event and `slotTable`; reported as [start, end] on the
 *   machine's clock, so the parent can line the clients up;
 * - held commands: for every command sent inside such a window, the time
 *   from its send to the window's end (its release), and from its send to its
 *   reply (released into the migrating path: MIGRATE of its key, then the
 *   command on the target); send → reply of every other command.
 */
import { performance } from "node:perf_hooks";
import { createInterface } from "node:readline";
import { ShardedRedis, slotOf } from "../dist/cjs/index.js";

const [url, cluster, prefix, poolText, rateText] = process.argv.slice(2);
const POOL = Number(poolText);
const RATE = Number(rateText);
const say = (message: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(message)}\n`);

setTimeout(() => process.exit(3), 15 * 60_000).unref();

// slot → keys of the pool in it (the parent loaded the same pool).
const keysOfSlot = new Map<number, string[]>();
for (let i = 0; i < POOL; i++) {
  const key = `${prefix}${i}`;
  const slot = slotOf(key);
  const list = keysOfSlot.get(slot) ?? [];
  list.push(key);
  keysOfSlot.set(slot, list);
}

const client = new ShardedRedis({ coordinator: url!, cluster: cluster! });
client.on("error", (error) => process.stderr.write(`migration-client: ${error.message}\n`));

let holdingSince: number | null = null;
/** Each hold as [start, end], in ms since the epoch with sub-ms precision (comparable across processes). */
let windows: [number, number][] = [];
let held: number[] = [];
/** Send times of the commands sent in the hold in progress; at its end, each one's time held (send → release). */
let sentInHold: number[] = [];
let heldFor: number[] = [];
let other: number[] = [];
let errors: string[] = [];
let cpuFrom = process.cpuUsage();
let wallFrom = performance.now();

client.on("topology", () => {
  const now = performance.now();
  const preparing = client.slotTable.migrations.some((m) => m.state === "preparing");
  if (preparing && holdingSince === null) holdingSince = now;
  else if (!preparing && holdingSince !== null) {
    windows.push([performance.timeOrigin + holdingSince, performance.timeOrigin + now]);
    for (const sentAt of sentInHold) heldFor.push(now - sentAt);
    sentInHold = [];
    holdingSince = null;
  }
});

let current: string[] = [];
let sent = 0;
function one(): void {
  if (current.length === 0) return;
  const key = current[Math.floor(Math.random() * current.length)]!;
  const inHold = holdingSince !== null;
  const start = performance.now();
  if (inHold) sentInHold.push(start);
  const reply = sent++ % 2 === 0 ? client.get(key) : client.set(key, "v");
  reply.then(
    () => (inHold ? held : other).push(performance.now() - start),
    (error: Error) => errors.length < 20 && errors.push(`${error.name}: ${error.message}`),
  );
}

// Paced: every TICK_MS sends what is due at RATE per second (no bursts after a
// stall beyond 50 ms). A tick of 10 ms keeps the load generator's own timer
// wakeups (not the system under test) from crowding 10 processes onto 2 cores.
const TICK_MS = Number(process.env.BENCH_HOLD_TICK_MS ?? 10);
let due = 0;
let last = performance.now();
const tick = setInterval(() => {
  const now = performance.now();
  due = Math.min(due + ((now - last) * RATE) / 1000, RATE / 20);
  last = now;
  while (due >= 1) {
    one();
    due -= 1;
  }
}, TICK_MS);

createInterface({ input: process.stdin }).on("line", (line) => {
  const message = JSON.parse(line) as { type: string; slots?: number[] };
  if (message.type === "slots") {
    current = (message.slots ?? []).flatMap((s) => keysOfSlot.get(s) ?? []);
    say({ type: "ok", keys: current.length });
  } else if (message.type === "report") {
    const cpu = process.cpuUsage(cpuFrom);
    // This process's CPU use since the last report, as a share of one core.
    const cpuShare = (cpu.user + cpu.system) / 1000 / (performance.now() - wallFrom);
    say({ type: "report", windows, held, heldFor, other, errors, cpuShare });
    cpuFrom = process.cpuUsage();
    wallFrom = performance.now();
    windows = [];
    held = [];
    heldFor = [];
    other = [];
    errors = [];
  }
});
process.stdin.on("end", () => {
  clearInterval(tick);
  void client.quit().finally(() => process.exit(0));
});

client.connect().then(
  () => {
    cpuFrom = process.cpuUsage();
    wallFrom = performance.now();
    say({ type: "ready" });
  },
  (error: Error) => say({ type: "error", message: error.message }),
);
