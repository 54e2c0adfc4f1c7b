// `shardis demo` end to end, from the BUILT package (bin/shardis.js -> dist/cjs/cli.js),
// against real redis-server processes it starts and stops itself.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";

const root = join(__dirname, "..", "..");
const bin = join(root, "bin", "shardis.js");
// The demo runs the build, not the sources; `npm test` builds first.
const notBuilt = existsSync(join(root, "dist", "cjs", "cli.js")) ? false : "dist/cjs/cli.js is missing: run `npm run build` (npm test does)";

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI; `onStdout` sees the output so far and may act on the child (e.g. signal it). */
async function runCli(args: string[], onStdout?: (text: string, kill: (signal: NodeJS.Signals) => void) => void): Promise<Run> {
  const child = spawn(process.execPath, [bin, ...args], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
  const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    stdout += chunk;
    onStdout?.(stdout, (signal) => child.kill(signal));
  });
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const [code, signal] = (await once(child, "close")) as [number | null, NodeJS.Signals | null];
  clearTimeout(timer);
  return { code, signal, stdout, stderr };
}

/** The ports of the servers the demo started ("servers: 127.0.0.1:PORT ..."). */
function serverPorts(stdout: string): number[] {
  const line = /^servers: (.*)$/m.exec(stdout)?.[1] ?? "";
  return [...line.matchAll(/127\.0\.0\.1:(\d+)/g)].map((m) => Number(m[1]));
}

async function refused(port: number): Promise<boolean> {
  const socket = connect({ host: "127.0.0.1", port });
  try {
    await once(socket, "connect");
    return false;
  } catch {
    return true;
  } finally {
    socket.destroy();
  }
}

test("shardis demo routes the load over 3 groups, moves slots to the empty one while it runs, and loses nothing", { skip: notBuilt }, async () => {
  const run = await runCli(["demo", "--ops", "5000"]);
  assert.equal(run.code, 0, `exit code\n${run.stdout}${run.stderr}`);
  assert.match(run.stdout, /^OK: 5000 acknowledged writes, 5000 counted, 0 lost$/m);
  assert.match(run.stdout, /^routing: every key is on the group that owns its slot$/m);
  const during = /^migration: 341 slots in \d+ moves, \d+ keys moved; (\d+) INCRs acknowledged while it ran$/m.exec(run.stdout);
  assert.ok(during, run.stdout);
  assert.ok(Number(during[1]) > 0, 'writes were acknowledged while the slots moved');
  const ports = [...serverPorts(run.stdout), Number(/^coordinator: 127\.0\.0\.1:(\d+)$/m.exec(run.stdout)?.[1])];
  assert.equal(ports.length, 4, run.stdout);
  assert.equal(run.stdout.match(/^group \d+ /gm)?.length, 3, "one line per group");
  assert.match(run.stdout, /^stopped 4 redis-server processes$/m);
  for (const port of ports) assert.ok(await refused(port), `redis-server on port ${port} still answers after the demo`);
});

test("shardis demo --groups 2 stops cleanly on SIGINT with exit code 130", { skip: notBuilt }, async () => {
  let signalled = false;
  const run = await runCli(["demo", "--groups", "2", "--ops", "10000000"], (text, kill) => {
    if (!signalled && text.includes("sending ")) {
      signalled = true;
      kill("SIGINT");
    }
  });
  assert.ok(signalled, `the load never started\n${run.stdout}${run.stderr}`);
  assert.equal(run.code, 130, `exit code\n${run.stdout}${run.stderr}`);
  assert.doesNotMatch(run.stdout, /^OK:/m);
  assert.match(run.stdout, /^stopped 3 redis-server processes$/m);
  const ports = serverPorts(run.stdout);
  assert.equal(ports.length, 2, run.stdout);
  for (const port of ports) assert.ok(await refused(port), `redis-server on port ${port} still answers after SIGINT`);
});

test("shardis demo rejects a bad option with usage and exit code 2", { skip: notBuilt }, async () => {
  const run = await runCli(["demo", "--ops", "lots"]);
  assert.equal(run.code, 2);
  assert.match(run.stderr, /--ops must be an integer/);
  assert.match(run.stderr, /Usage: shardis/);
});
