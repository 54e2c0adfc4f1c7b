// Smoke test of the BUILT package (dist/), as a user gets it: resolved by its
// name through package.json "exports", under require and import, and by the
// TypeScript compiler. Needs `npm run build` first (`npm test` does it).
// The package is linked into a temp dir as node_modules/shardis -> repo root.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);
const root = join(__dirname, "..", "..");
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string };
const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
let dir = "";

before(() => {
  assert.ok(existsSync(join(root, "dist", "cjs", "index.js")), "dist/ is missing: run `npm run build` first (npm test does)");
  dir = mkdtempSync(join(tmpdir(), "shardis-package-"));
  mkdirSync(join(dir, "node_modules"));
  symlinkSync(root, join(dir, "node_modules", "shardis"), "dir");
});

after(() => {
  if (dir !== "") rmSync(dir, { recursive: true, force: true });
});

/** Runs a command in `cwd` (default: the temp dir) and returns its stdout; fails with its output. */
async function run(file: string, args: string[], cwd = dir): Promise<string> {
  try {
    const { stdout } = await execFileAsync(file, args, { cwd, timeout: 10_000, env: { ...process.env, NODE_OPTIONS: "" } });
    return stdout;
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    assert.fail(`${file} ${args.join(" ")} failed:\n${stdout ?? ""}${stderr ?? ""}\n${String(error)}`);
  }
}

/** Runs a CommonJS snippet with `node -e` and parses the JSON it prints. */
async function cjs(code: string): Promise<Record<string, unknown>> {
  return JSON.parse(await run(process.execPath, ["-e", code])) as Record<string, unknown>;
}

/** Runs an ESM snippet (`require` is available too) and parses the JSON it prints. */
async function esm(code: string): Promise<Record<string, unknown>> {
  const prelude = `import { createRequire } from "node:module"; const require = createRequire(process.cwd() + "/");\n`;
  return JSON.parse(await run(process.execPath, ["--input-type=module", "-e", prelude + code])) as Record<string, unknown>;
}

const MAIN_EXPORTS = ["ShardedRedis", "ShardedScanStream", "slotOf", "crc32", "SLOT_COUNT", "validateTable", "evenSlotRanges"];
const ERROR_CLASSES = [
  "ShardisError",
  "TopologyError",
  "CrossSlotError",
  "GroupUnavailableError",
  "PartialFailureError",
  "CommandNotAllowedError",
  "UnknownCommandError",
  "ArgumentError",
];

test("require('shardis') loads the CommonJS build", async () => {
  const out = await cjs(`
    const s = require("shardis");
    let deepImport = "allowed";
    try { require("shardis/dist/cjs/slot.js"); } catch (e) { deepImport = e.code; }
    let thrown;
    try { new s.ShardedRedis({ groups: [] }); } catch (e) { thrown = { topology: e instanceof s.TopologyError, base: e instanceof s.ShardisError, code: e.code }; }
    console.log(JSON.stringify({
      file: require.resolve("shardis"),
      names: Object.keys(s).filter((k) => k !== "__esModule").sort(),
      types: Object.fromEntries(Object.entries(s).map(([k, v]) => [k, typeof v])),
      foo: s.slotOf("foo"), tagged: s.slotOf("{user1000}.following"),
      thrown, version: require("shardis/package.json").version, deepImport,
    }));`);
  assert.match(String(out.file), /dist[\\/]cjs[\\/]index\.js$/);
  for (const name of [...MAIN_EXPORTS, ...ERROR_CLASSES]) assert.ok((out.names as string[]).includes(name), `missing export ${name}`);
  assert.equal((out.types as Record<string, string>).ShardedRedis, "function");
  assert.equal(out.foo, 289);
  assert.equal(out.tagged, 870);
  assert.deepEqual(out.thrown, { topology: true, base: true, code: "ERR_TOPOLOGY" });
  assert.equal(out.version, pkg.version);
  assert.equal(out.deepImport, "ERR_PACKAGE_PATH_NOT_EXPORTED", "only the entry points in package.json exports are public");
});

test("import('shardis') gives the same objects as require('shardis')", async () => {
  const out = await esm(`
    const esm = await import("shardis");
    const { ShardedRedis, TopologyError, slotOf } = esm;
    const cjs = require("shardis");
    const esmNames = Object.keys(esm).sort();
    const cjsNames = Object.keys(cjs).filter((k) => k !== "__esModule").sort();
    let thrown;
    try { new ShardedRedis({ groups: [] }); } catch (e) { thrown = { cjsClass: e instanceof cjs.TopologyError, esmClass: e instanceof TopologyError, base: e instanceof cjs.ShardisError }; }
    console.log(JSON.stringify({
      file: import.meta.resolve("shardis"),
      esmNames, cjsNames,
      same: esmNames.filter((k) => esm[k] === cjs[k]),
      foo: slotOf("foo"), thrown,
    }));`);
  assert.match(String(out.file), /dist\/esm\/index\.mjs$/);
  assert.deepEqual(out.esmNames, out.cjsNames, "ESM re-exports every named export of the CJS build");
  assert.deepEqual(out.same, out.cjsNames, "every export is the very same object under import and require");
  assert.equal(out.foo, 289);
  assert.deepEqual(out.thrown, { cjsClass: true, esmClass: true, base: true });
});

test("shardis/testing under require and import", async (t) => {
  if (!existsSync(join(root, "dist", "cjs", "testing", "index.js"))) {
    // src/testing is written in parallel; until it is built there is nothing to check.
    t.skip("dist/cjs/testing/index.js is not built yet");
    return;
  }
  const out = await esm(`
    const esm = await import("shardis/testing");
    const cjs = require("shardis/testing");
    const names = ["RedisServer", "startRedisServers", "stopAllRedisServers"];
    console.log(JSON.stringify({
      file: import.meta.resolve("shardis/testing"),
      cjsFile: require.resolve("shardis/testing"),
      esm: names.filter((n) => typeof esm[n] === "function"),
      cjs: names.filter((n) => typeof cjs[n] === "function"),
      same: Object.keys(esm).length > 0 && Object.keys(esm).every((k) => esm[k] === cjs[k]),
    }));`);
  assert.match(String(out.file), /dist\/esm\/testing\/index\.mjs$/);
  assert.match(String(out.cjsFile), /dist[\\/]cjs[\\/]testing[\\/]index\.js$/);
  assert.deepEqual(out.esm, ["RedisServer", "startRedisServers", "stopAllRedisServers"]);
  assert.deepEqual(out.cjs, out.esm);
  assert.equal(out.same, true);
});

test("bin/shardis.js runs the built CLI", async () => {
  const out = await run(process.execPath, [join(dir, "node_modules", "shardis", "bin", "shardis.js"), "--version"]);
  assert.equal(out.trim(), pkg.version);
});

test("npm pack ships the build, the bin and the README, not the sources", async () => {
  const out = await run("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], root);
  const files = (JSON.parse(out) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path);
  for (const file of ["package.json", "README.md", "bin/shardis.js", "dist/cjs/index.js", "dist/cjs/index.d.ts", "dist/esm/index.mjs", "dist/esm/index.d.mts"]) {
    assert.ok(files.includes(file), `${file} is not in the package`);
  }
  assert.deepEqual(files.filter((f) => /^(src|test|scripts|\.ci)\//.test(f)), []);
});

/** Type-checks `source` as a consumer package of the given module type, with the repo's tsc. */
async function typecheckConsumer(name: string, type: "module" | "commonjs", source: string): Promise<string> {
  const project = join(dir, name);
  mkdirSync(project); // resolves "shardis" through the temp dir's node_modules, one level up
  writeFileSync(join(project, "package.json"), JSON.stringify({ name, private: true, type }));
  writeFileSync(
    join(project, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: { module: "nodenext", moduleResolution: "nodenext", target: "es2022", strict: true, noEmit: true, skipLibCheck: false, types: [] },
      files: ["consumer.ts"],
    }),
  );
  writeFileSync(join(project, "consumer.ts"), source);
  return run(process.execPath, [tsc, "-p", project, "--noEmit", "--explainFiles"], project);
}

const CONSUMER = `
import { ShardedRedis, TopologyError, ShardisError, slotOf, type ShardedRedisOptions } from "shardis";
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false;
const options: ShardedRedisOptions = { groups: [{ id: 1, master: "127.0.0.1:6379" }] };
const reply = new ShardedRedis(options).get("k");
export const getIsExact: Equal<typeof reply, Promise<string | null>> = true;
export const slotIsNumber: Equal<ReturnType<typeof slotOf>, number> = true;
export const codeIsString: Equal<TopologyError["code"], string> = true;
export const base: ShardisError = new TopologyError("x");
// @ts-expect-error: groups is required, so the options type is really checked
new ShardedRedis({});
`;

test("TypeScript consumers get the types under import and require", async () => {
  const testingLine = existsSync(join(root, "dist", "esm", "testing", "index.d.mts"))
    ? `import { startRedisServers, RedisServer } from "shardis/testing";\nexport const servers: Promise<RedisServer[]> = startRedisServers(1);\n`
    : ""; // shardis/testing not built yet (written in parallel)
  const [esmFiles, cjsFiles] = await Promise.all([
    typecheckConsumer("esm-consumer", "module", CONSUMER + testingLine),
    typecheckConsumer("cjs-consumer", "commonjs", CONSUMER + testingLine),
  ]);
  // The types come through the "import" / "require" condition of package.json exports.
  assert.match(esmFiles, /dist\/esm\/index\.d\.mts/);
  assert.match(cjsFiles, /dist\/cjs\/index\.d\.ts/);
  if (testingLine) assert.match(esmFiles, /dist\/esm\/testing\/index\.d\.mts/);
});
