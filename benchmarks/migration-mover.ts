/**
 * The migrator of benchmarks/migration.ts in a process of its own (as an
 * operator would run it), so that its own work does not share the event
 * loop of the client whose latency is measured.
 *
 *   node --import tsx benchmarks/migration-mover.ts <coordinator url> <cluster>
 *
 * JSON lines on stdin: {"type":"migrate","slots":[{"from":0,"to":511}],"to":2,"batchMs":10}
 * → runs admin.migrate and answers {"type":"done","report":{...}} or
 * {"type":"error","message":"..."}. Exits when stdin closes, or after 15 minutes.
 */
import { createInterface } from "node:readline";
import { ShardisAdmin } from "../dist/cjs/admin/index.js";

const [url, cluster] = process.argv.slice(2);
const say = (message: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(message)}\n`);
setTimeout(() => process.exit(3), 15 * 60_000).unref();

const admin = new ShardisAdmin({ coordinator: url!, cluster: cluster! });

interface MigrateMessage {
  type: "migrate";
  slots: { from: number; to: number }[];
  to: number;
  batchMs?: number;
  pauseMs?: number;
}

createInterface({ input: process.stdin }).on("line", (line) => {
  const message = JSON.parse(line) as MigrateMessage;
  if (message.type !== "migrate") return;
  admin.migrate({ slots: message.slots, to: message.to, ...(message.batchMs ? { batchMs: message.batchMs } : {}), ...(message.pauseMs ? { pauseMs: message.pauseMs } : {}) }).then(
    (report) => say({ type: "done", report }),
    (error: Error) => say({ type: "error", message: `${error.name}: ${error.message}` }),
  );
});
process.stdin.on("end", () => void admin.close().finally(() => process.exit(0)));
say({ type: "ready" });
