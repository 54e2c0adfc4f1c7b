// The `shardis` admin commands and `sandbox` end to end, from the BUILT
// package (bin/shardis.js -> dist/cjs/cli.js) in child processes, against real
// redis-server processes. Each test works on a cluster name of its own.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import IORedis, { type Redis } from 'ioredis';
import { planRebalance } from '../../src/admin/rebalance.js';
import { coordinatorKeys } from '../../src/coordinator/keys.js';
import { slotOf } from '../../src/slot.js';
import { parseTableJson } from '../../src/topology/format.js';
import { startRedisServers, startSentinels, type RedisServer } from '../../src/testing/index.js';

const root = join(__dirname, '..', '..');
const bin = join(root, 'bin', 'shardis.js');
// The CLI runs the build, not the sources; `npm test` builds first.
const notBuilt = existsSync(join(root, 'dist', 'cjs', 'cli.js')) ? false : 'dist/cjs/cli.js is missing: run `npm run build` (npm test does)';
const RUN_TIMEOUT_MS = 30_000;

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

interface RunOptions {
  /** Added to a clean environment (no SHARDIS_* from the parent). */
  env?: Record<string, string>;
  /** Sees the output so far and may act on the child (e.g. signal it). */
  onStdout?: (text: string, kill: (signal: NodeJS.Signals) => void) => void;
}

/** Runs the CLI to its end (SIGKILL after RUN_TIMEOUT_MS). */
async function runCli(args: string[], options: RunOptions = {}): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env, ...options.env };
  for (const name of ['SHARDIS_COORDINATOR', 'SHARDIS_CLUSTER']) if (options.env?.[name] === undefined) delete env[name];
  const child = spawn(process.execPath, [bin, ...args], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    options.onStdout?.(stdout, (signal) => child.kill(signal));
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  clearTimeout(timer);
  return { code, signal, stdout, stderr };
}

function show(run: Run): string {
  return `exit ${run.code} ${run.signal ?? ''}\n--- stdout\n${run.stdout}--- stderr\n${run.stderr}`;
}

async function refused(port: number): Promise<boolean> {
  const socket = connect({ host: '127.0.0.1', port });
  try {
    await once(socket, 'connect');
    return false;
  } catch {
    return true;
  } finally {
    socket.destroy();
  }
}

let servers: RedisServer[] = [];
/** The coordinator; groups are servers[1..]. */
let coordinatorUrl = '';
let coordinator: Redis;
let clusterCount = 0;

/** A cluster name no other test uses. */
function uniqueCluster(): string {
  return `cli-${process.pid}-${++clusterCount}`;
}

/** Runs the CLI on `cluster` at the test coordinator, given through the environment. */
function shardis(cluster: string, args: string[]): Promise<Run> {
  return runCli(args, { env: { SHARDIS_COORDINATOR: coordinatorUrl, SHARDIS_CLUSTER: cluster } });
}

async function storedTable(cluster: string) {
  const text = await coordinator.get(coordinatorKeys(cluster).table);
  assert.ok(text !== null, `no table stored for ${cluster}`);
  return parseTableJson(text, cluster);
}

function group(i: number): string {
  return servers[i]!.address;
}

before(async () => {
  if (notBuilt) return;
  servers = await startRedisServers(6);
  coordinatorUrl = `redis://${servers[0]!.address}`;
  coordinator = new IORedis(servers[0]!.port, '127.0.0.1');
});

after(async () => {
  coordinator?.disconnect();
  await Promise.all(servers.map((server) => server.stop()));
});

test('init writes version 1, and status --json shows it as stored', { skip: notBuilt }, async () => {
  const cluster = uniqueCluster();
  const init = await shardis(cluster, ['init', '--group', `1=${group(1)}`, '--group', `2=${group(2)}`, '--group', `3=${group(3)},${group(4)}`]);
  assert.equal(init.code, 0, show(init));
  assert.match(init.stdout, new RegExp(`^cluster ${cluster} initialized at ${coordinatorUrl}: table version 1, 3 groups$`, 'm'));

  const table = await storedTable(cluster);
  assert.equal(table.version, 1);
  assert.deepEqual(
    table.slots.map((r) => [r.from, r.to, r.group]),
    [[0, 341, 1], [342, 682, 2], [683, 1023, 3]],
  );
  assert.deepEqual(table.groups[2]!.replicas, [group(4)]);

  const run = await shardis(cluster, ['status', '--json']);
  assert.equal(run.code, 0, show(run));
  const status = JSON.parse(run.stdout) as {
    cluster: string;
    table: Record<string, unknown>;
    groups: { id: number; master: string; slots: number; ranges: string; keys: number | null }[];
    clients: unknown[];
    migrations: unknown[];
  };
  assert.equal(status.cluster, cluster);
  // The table as stored: exactly what a client parses.
  assert.deepEqual(status.table, JSON.parse((await coordinator.get(coordinatorKeys(cluster).table))!));
  assert.equal(status.table.format, 1);
  assert.deepEqual(
    status.groups.map((g) => [g.id, g.master, g.slots, g.ranges]),
    [[1, group(1), 342, '0..341'], [2, group(2), 341, '342..682'], [3, group(3), 341, '683..1023']],
  );
  for (const g of status.groups) assert.equal(typeof g.keys, 'number');
  assert.deepEqual(status.clients, []);
  assert.deepEqual(status.migrations, []);

  const text = await shardis(cluster, ['status']);
  assert.equal(text.code, 0, show(text));
  assert.match(text.stdout, new RegExp(`^cluster ${cluster}  coordinator ${coordinatorUrl}  table version 1$`, 'm'));
  assert.match(text.stdout, /^groups \(3\):$/m);
  assert.match(text.stdout, new RegExp(`^  3 +${group(3)} +${group(4)} +341 +683\\.\\.1023 +\\d+ +\\S+ [KMG]?B$`, 'm'));
  assert.match(text.stdout, /^clients \(0\):\n  none registered$/m);
  assert.match(text.stdout, /^migrations:\n  none$/m);
});

test('group add, slots assign, rebalance --plan, group remove', { skip: notBuilt }, async () => {
  const cluster = uniqueCluster();
  // Global options given as flags this time, after the command.
  const cli = (args: string[]) => runCli([...args, '--coordinator', coordinatorUrl, '--cluster', cluster]);
  assert.equal((await cli(['init', '--group', `1=${group(1)}`, '--group', `2=${group(2)}`])).code, 0);

  const add = await cli(['group', 'add', '3', group(3), '--replica', group(4)]);
  assert.equal(add.code, 0, show(add));
  assert.match(add.stdout, new RegExp(`^group 3 added to cluster ${cluster} \\(table version 2\\); it owns no slots yet$`, 'm'));
  let table = await storedTable(cluster);
  assert.equal(table.version, 2);
  assert.deepEqual(table.groups.map((g) => [g.id, g.master, g.replicas]), [[1, group(1), []], [2, group(2), []], [3, group(3), [group(4)]]]);

  const assign = await cli(['slots', 'assign', '0-9,20,1000..1023', '3']);
  assert.equal(assign.code, 0, show(assign));
  assert.match(assign.stdout, /^slots 0\.\.9, 20, 1000\.\.1023 \(35\) assigned to group 3 in cluster \S+ \(table version 3\)$/m);
  table = await storedTable(cluster);
  assert.equal(table.version, 3);
  for (const slot of [0, 9, 20, 1000, 1023]) assert.equal(table.owner[slot], 3, `slot ${slot}`);
  for (const slot of [10, 19, 21, 999]) assert.notEqual(table.owner[slot], 3, `slot ${slot}`);

  const plan = await cli(['rebalance', '--plan']);
  assert.equal(plan.code, 0, show(plan));
  assert.match(plan.stdout, /^cluster \S+ \(table version 3\): \d+ slots would move, in \d+ moves$/m);
  assert.match(plan.stdout, /^  group \d +group 3 +\d+ +[\d., ]+$/m);
  assert.match(plan.stdout, /^after the moves:$/m);
  // 1024 = 342 + 341 + 341
  assert.match(plan.stdout, /^  1 +342 /m);
  assert.match(plan.stdout, /^  2 +341 /m);
  assert.match(plan.stdout, /^  3 +341 /m);
  assert.match(plan.stdout, /nothing was changed/);
  assert.equal((await storedTable(cluster)).version, 3, 'a plan changes nothing');

  const weighted = await cli(['rebalance', '--plan', '--weight', '1=0', '--weight', '3=3']);
  assert.equal(weighted.code, 0, show(weighted));
  assert.match(weighted.stdout, /^  2 +256 /m);
  assert.match(weighted.stdout, /^  3 +768 /m);
  assert.match(weighted.stdout, /^  1 +0 +-$/m, 'weight 0 drains group 1');

  // Neither --plan nor --apply: the plan, and how to carry it out.
  const bare = await cli(['rebalance']);
  assert.equal(bare.code, 0, show(bare));
  assert.match(bare.stdout, /^cluster \S+ \(table version 3\): \d+ slots would move/m);
  assert.match(bare.stdout, /^this is a plan only: nothing was changed; add --apply to carry it out$/m);
  assert.equal((await storedTable(cluster)).version, 3);

  // A group that owns slots cannot leave: a ShardisError, exit 1, message and code, no stack.
  const busy = await cli(['group', 'remove', '3']);
  assert.equal(busy.code, 1, show(busy));
  assert.match(busy.stderr, /^shardis: .*group 3.* \[ERR_[A-Z_]+\]\n$/);
  assert.doesNotMatch(busy.stderr, /\n\s+at /, 'no stack trace');

  // Give its slots back, then it can go.
  assert.equal((await cli(['slots', 'assign', '0-9,20,1000-1023', '1'])).code, 0);
  const remove = await cli(['group', 'remove', '3']);
  assert.equal(remove.code, 0, show(remove));
  assert.match(remove.stdout, new RegExp(`^group 3 removed from cluster ${cluster} \\(table version 5\\)$`, 'm'));
  table = await storedTable(cluster);
  assert.deepEqual(table.groups.map((g) => g.id), [1, 2]);
  assert.equal(table.version, 5);
});

test('slots assign refuses slots that hold keys, unless --skip-key-check', { skip: notBuilt }, async () => {
  const cluster = uniqueCluster();
  assert.equal((await shardis(cluster, ['init', '--group', `1=${group(5)}`, '--group', `2=${group(2)}`])).code, 0);
  const direct = new IORedis(servers[5]!.port, '127.0.0.1');
  try {
    await direct.set('foo', 'bar'); // slot 289, owned by group 1
    const run = await shardis(cluster, ['slots', 'assign', '289', '2']);
    assert.equal(run.code, 1, show(run));
    assert.match(run.stderr, /^shardis: .*\[ERR_[A-Z_]+\]\n$/);
    assert.match(run.stderr, /foo/, 'names the key');
    assert.equal((await storedTable(cluster)).owner[289], 1);

    const forced = await shardis(cluster, ['slots', 'assign', '289', '2', '--skip-key-check']);
    assert.equal(forced.code, 0, show(forced));
    assert.equal((await storedTable(cluster)).owner[289], 2);
  } finally {
    await direct.flushall();
    direct.disconnect();
  }
});

test('ShardisErrors exit 1 with their message and code', { skip: notBuilt }, async () => {
  const cluster = uniqueCluster();
  assert.equal((await shardis(cluster, ['init', '--group', `1=${group(1)}`])).code, 0);

  const again = await shardis(cluster, ['init', '--group', `1=${group(2)}`]);
  assert.equal(again.code, 1, show(again));
  assert.match(again.stderr, /^shardis: cluster "\S+" already has a slot table \(version 1\).* \[ERR_CLUSTER_EXISTS\]\nshardis: .*--force\n$/);
  assert.equal((await storedTable(cluster)).groups[0]!.master, group(1), 'the table is left alone');

  const forced = await shardis(cluster, ['init', '--group', `1=${group(2)}`, '--force']);
  assert.equal(forced.code, 0, show(forced));
  const table = await storedTable(cluster);
  assert.equal(table.groups[0]!.master, group(2));
  assert.equal(table.version, 2, 'the version only grows, even on --force');

  const unknown = await shardis(cluster, ['slots', 'assign', '0-10', '9']);
  assert.equal(unknown.code, 1, show(unknown));
  assert.match(unknown.stderr, /^shardis: group 9 is not in cluster .+ \[ERR_ARGUMENT\]\n$/);

  const none = await shardis(uniqueCluster(), ['status']);
  assert.equal(none.code, 1, show(none));
  assert.match(none.stderr, /has no slot table/);
  assert.match(none.stderr, /shardis init/);
});

test('usage errors exit 2 with the usage; --help and --version exit 0', { skip: notBuilt }, async () => {
  const cluster = uniqueCluster();
  const cases: [string[], RegExp][] = [
    [[], /Usage: shardis/],
    [['nonsense'], /unknown command 'nonsense'/],
    [['init'], /required option '--group/],
    [['init', '--group', 'x'], /<id>=<host:port>/],
    [['slots', 'assign', '0-2000', '1'], /slot 2000 is out of range/],
    [['slots', 'assign', '0-10'], /missing required argument 'group'/],
    [['group', 'add', '4'], /missing group 4's master: give its <host:port>, or --sentinel <name>/],
    [['group', 'add', '4', '127.0.0.1:7000', '--sentinel', 'g4'], /either its master <host:port> or --sentinel <name>, not both/],
    [['group', 'add', '4', '--sentinel', 'g4', '--replica', '127.0.0.1:7001'], /--replica does not go with --sentinel/],
    [['init', '--group', '1=127.0.0.1:7000', '--group', '2=sentinel:g2'], /group 2 \(sentinel:g2\) is named by Sentinel: add --sentinels/],
    [['init', '--group', '2=sentinel:g2,127.0.0.1:7001', '--sentinels', '127.0.0.1:26379'], /lists no replicas/],
    [['init', '--group', '2=sentinel:g2', '--sentinels', '127.0.0.1'], /must be "host:port"/],
    [['status', '--bogus'], /unknown option '--bogus'/],
    [['--coordinator', '127.0.0.1:6379', 'status'], /redis:\/\//],
    [['--cluster', 'no spaces', 'status'], /cluster must be a name/],
    [['sandbox', '--groups', '0'], /--groups must be an integer from 1 to 16/],
    [['sandbox', '--coordinator', coordinatorUrl], /--coordinator does not apply/],
    [['sandbox', '--replicas', '4'], /--replicas must be an integer from 0 to 3/],
    [['sandbox', '--sentinels', '2'], /--sentinels must be 0 or an odd number from 3 to 9/],
    [['migrate', '--slots', '0-2000', '--to', '2'], /slot 2000 is out of range/],
    [['migrate', '--slots', '0-x', '--to', '2'], /expected slots like 0-99,512/],
    [['migrate', '--slots', '10-5', '--to', '2'], /goes backwards/],
    [['migrate', '--to', '2'], /required option '--slots/],
    [['migrate', '--slots', '0-9'], /required option '--to/],
    [['migrate', '--slots', '0-9', '--to', '2', '--batch-ms', '0'], /--batch-ms must be a number of ms above 0/],
    [['rebalance', '--plan', '--apply'], /'--apply' cannot be used with option '--plan'/],
    [['migration', 'resume', '--ack-timeout-ms', 'soon'], /--ack-timeout-ms must be an integer/],
    [['migration', 'bogus'], /unknown command 'bogus'/],
  ];
  for (const [args, pattern] of cases) {
    const run = await shardis(cluster, args);
    assert.equal(run.code, 2, `${args.join(' ')}\n${show(run)}`);
    assert.match(run.stderr, pattern, args.join(' '));
    assert.equal(run.stdout, '', `${args.join(' ')}: usage errors go to stderr`);
  }
  const help = await runCli(['--help']);
  assert.equal(help.code, 0);
  for (const command of ['sandbox', 'init', 'status', 'group', 'slots', 'rebalance', 'migrate', 'migration', 'demo']) {
    assert.match(help.stdout, new RegExp(`^  ${command}\\b`, 'm'), command);
  }
  assert.match(help.stdout, /SHARDIS_COORDINATOR/);
  const version = await runCli(['--version']);
  assert.equal(version.code, 0);
  assert.match(version.stdout, /^\d+\.\d+\.\d+/);
  // Nothing was written by any of the above.
  assert.equal(await coordinator.exists(coordinatorKeys(cluster).table), 0);
});

test('init and group add with Sentinel-named groups: the table names them and lists the sentinels; status resolves them', { skip: notBuilt }, async () => {
  // One sentinel (quorum 1) watching two masters without replicas: enough to resolve names, quick to start.
  const ha = await startSentinels({ masters: ['s1', 's2'], replicas: 0, sentinels: 1 });
  try {
    const [sentinel] = ha.addresses;
    const cluster = uniqueCluster();
    const init = await shardis(cluster, ['init', '--group', '1=sentinel:s1', '--group', `2=${group(1)}`, '--sentinels', sentinel!]);
    assert.equal(init.code, 0, show(init));
    assert.match(init.stdout, /^  1 +sentinel s1 +- +512 +0\.\.511$/m);
    assert.match(init.stdout, new RegExp(`^  2 +${group(1)} +- +512 +512\\.\\.1023$`, 'm'));
    assert.match(init.stdout, new RegExp(`^sentinels: ${sentinel}$`, 'm'));

    // The table's sentinels are kept when group add gives none.
    const add = await shardis(cluster, ['group', 'add', '3', '--sentinel', 's2']);
    assert.equal(add.code, 0, show(add));
    assert.match(add.stdout, /^  3 +sentinel s2 +- +0 +-$/m);

    const run = await shardis(cluster, ['status', '--json']);
    assert.equal(run.code, 0, show(run));
    const status = JSON.parse(run.stdout) as StatusJson & { table: { sentinels: string[]; groups: { id: number; master?: string; sentinel?: unknown }[] } };
    assert.deepEqual(
      status.table.groups.map((g) => [g.id, g.master, g.sentinel]),
      [[1, undefined, { name: 's1' }], [2, group(1), undefined], [3, undefined, { name: 's2' }]],
    );
    assert.deepEqual(status.table.sentinels, [sentinel]);
    assert.deepEqual(
      status.groups.map((g) => [g.id, g.sentinel, g.masterAddress, g.error]),
      [[1, 's1', ha.group('s1').master.address, undefined], [2, undefined, group(1), undefined], [3, 's2', ha.group('s2').master.address, undefined]],
    );

    // A table without sentinels: group add --sentinel needs --sentinels, which sets them.
    const plain = uniqueCluster();
    assert.equal((await shardis(plain, ['init', '--group', `1=${group(2)}`])).code, 0);
    const refused = await shardis(plain, ['group', 'add', '2', '--sentinel', 's1']);
    assert.equal(refused.code, 2, show(refused));
    assert.match(refused.stderr, /lists no Sentinels yet: add --sentinels <host:port,\.\.\.> \(the Sentinels that watch s1\)/);
    assert.equal((await storedTable(plain)).version, 1, 'nothing written');
    const added = await shardis(plain, ['group', 'add', '2', '--sentinel', 's1', '--sentinels', sentinel!]);
    assert.equal(added.code, 0, show(added));
    assert.match(added.stdout, new RegExp(`^sentinels: ${sentinel}$`, 'm'));
    const table = await storedTable(plain);
    assert.deepEqual(table.groups.map((g) => [g.id, g.master, g.sentinel?.name]), [[1, group(2), undefined], [2, undefined, 's1']]);
    assert.deepEqual(table.sentinels, [sentinel]);
  } finally {
    await ha.stop();
  }
});

test('an unreachable coordinator fails with exit 1 in bounded time', { skip: notBuilt }, async () => {
  const down = servers[0]!.port === 1 ? 2 : 1; // nothing listens on port 1 or 2 of loopback
  const started = Date.now();
  const run = await runCli(['status', '--coordinator', `redis://127.0.0.1:${down}`]);
  assert.equal(run.code, 1, show(run));
  assert.match(run.stderr, /^shardis: /);
  assert.ok(Date.now() - started < 20_000, 'gives up within seconds');
});

/** Sandbox output: the coordinator's and groups' addresses. */
function sandboxPorts(stdout: string): { coordinator: number; groups: number[] } {
  const coordinator = Number(/^coordinator: 127\.0\.0\.1:(\d+)$/m.exec(stdout)?.[1]);
  const groups = [...stdout.matchAll(/^group \d+: 127\.0\.0\.1:(\d+)$/gm)].map((m) => Number(m[1]));
  return { coordinator, groups };
}

test('sandbox starts a cluster, prints how to connect, and stops every server on SIGINT (exit 0)', { skip: notBuilt }, async () => {
  const cluster = uniqueCluster();
  let checked: Promise<void> | undefined;
  const run = await runCli(['sandbox', '--groups', '2', '--cluster', cluster], {
    // An exported SHARDIS_COORDINATOR (e.g. from an earlier sandbox) does not get in the way.
    env: { SHARDIS_COORDINATOR: coordinatorUrl },
    onStdout: (text, kill) => {
      if (checked !== undefined || !/^sandbox ready/m.test(text)) return;
      checked = (async () => {
        try {
          const { coordinator: port, groups } = sandboxPorts(text);
          const redis = new IORedis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 1 });
          try {
            await redis.connect();
            const table = parseTableJson((await redis.get(coordinatorKeys(cluster).table))!, cluster);
            assert.equal(table.version, 1);
            assert.deepEqual(table.groups.map((g) => g.master), groups.map((p) => `127.0.0.1:${p}`));
            assert.deepEqual(table.slots.map((r) => [r.from, r.to, r.group]), [[0, 511, 1], [512, 1023, 2]]);
          } finally {
            redis.disconnect();
          }
        } finally {
          kill('SIGINT');
        }
      })();
    },
  });
  assert.ok(checked, `never ready\n${show(run)}`);
  await checked;
  assert.equal(run.code, 0, show(run));
  const { coordinator: port, groups } = sandboxPorts(run.stdout);
  assert.equal(groups.length, 2, run.stdout);
  assert.match(run.stdout, new RegExp(`new ShardedRedis\\(\\{ coordinator: "redis://127\\.0\\.0\\.1:${port}", cluster: "${cluster}" \\}\\)`));
  assert.match(run.stdout, new RegExp(`^  export SHARDIS_COORDINATOR=redis://127\\.0\\.0\\.1:${port}$`, 'm'));
  assert.match(run.stdout, new RegExp(`^  export SHARDIS_CLUSTER=${cluster}$`, 'm'));
  assert.match(run.stdout, /^SIGINT: stopping the sandbox$/m);
  assert.match(run.stdout, /^stopped 3 redis-server processes$/m);
  for (const p of [port, ...groups]) assert.ok(await refused(p), `redis-server on port ${p} still answers after SIGINT`);
});

test('the CLI works on a sandbox with the variables it printed; SIGTERM stops it (exit 0)', { skip: notBuilt }, async () => {
  let status: Promise<Run> | undefined;
  const run = await runCli(['sandbox', '--groups', '1'], {
    // The sandbox's cluster is "sandbox" unless --cluster is given, whatever SHARDIS_CLUSTER says.
    env: { SHARDIS_CLUSTER: 'elsewhere' },
    onStdout: (text, kill) => {
      if (status !== undefined || !/^sandbox ready/m.test(text)) return;
      const env = Object.fromEntries([...text.matchAll(/^  export (SHARDIS_\w+)=(\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
      status = runCli(['status', '--json'], { env }).finally(() => kill('SIGTERM'));
    },
  });
  assert.ok(status, `never ready\n${show(run)}`);
  const done = await status;
  assert.equal(done.code, 0, show(done));
  const json = JSON.parse(done.stdout) as { cluster: string; table: { version: number }; groups: unknown[] };
  assert.equal(json.cluster, 'sandbox');
  assert.equal(json.table.version, 1);
  assert.equal(json.groups.length, 1);
  assert.equal(run.code, 0, show(run));
  assert.match(run.stdout, /^cluster sandbox: table version 1$/m);
  assert.match(run.stdout, /^SIGTERM: stopping the sandbox$/m);
  assert.match(run.stdout, /^stopped 2 redis-server processes$/m);
  const { coordinator: port, groups } = sandboxPorts(run.stdout);
  for (const p of [port, ...groups]) assert.ok(await refused(p), `redis-server on port ${p} still answers`);
});

test('sandbox --exit-after stops by itself (exit 0)', { skip: notBuilt }, async () => {
  const run = await runCli(['sandbox', '--groups', '1', '--exit-after', '200']);
  assert.equal(run.code, 0, show(run));
  assert.match(run.stdout, /^sandbox ready: 2 redis-server processes on 127\.0\.0\.1; stopping them in 200 ms$/m);
  assert.match(run.stdout, /^--exit-after 200: stopping the sandbox$/m);
  assert.match(run.stdout, /^stopped 2 redis-server processes$/m);
  const { coordinator: port, groups } = sandboxPorts(run.stdout);
  for (const p of [port, ...groups]) assert.ok(await refused(p), `redis-server on port ${p} still answers`);
});

/** Every "host:port" of 127.0.0.1 a sandbox printed on its address lines (servers, replicas, sentinels). */
function printedPorts(stdout: string): number[] {
  return [...stdout.matchAll(/^(?:coordinator|group \d+)(?: replica)?: 127\.0\.0\.1:(\d+)$|^sentinel: 127\.0\.0\.1:(\d+)$/gm)].map((m) => Number(m[1] ?? m[2]));
}

interface StatusJson {
  groups: {
    id: number;
    master: string;
    sentinel?: string;
    masterAddress: string | null;
    keys: number | null;
    error?: string;
    replicas: { address: string; link: string; lagBytes: number | null; lastIoSeconds: number | null; error?: string }[];
  }[];
}

/** Runs a sandbox with `args`; once ready, runs `status --json` and `status` with the variables it printed, then SIGINTs it. */
async function sandboxStatus(args: string[]): Promise<{ run: Run; json: Run; text: Run }> {
  let statuses: Promise<[Run, Run]> | undefined;
  const run = await runCli(['sandbox', ...args], {
    onStdout: (stdout, kill) => {
      if (statuses !== undefined || !/^sandbox ready/m.test(stdout)) return;
      const env = Object.fromEntries([...stdout.matchAll(/^  export (SHARDIS_\w+)=(\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
      statuses = Promise.all([runCli(['status', '--json'], { env }), runCli(['status'], { env })]).finally(() => kill('SIGINT'));
    },
  });
  assert.ok(statuses, `never ready\n${show(run)}`);
  const [json, text] = await statuses;
  return { run, json, text };
}

test('sandbox --replicas 1: the table lists the replicas; status shows each link up with its lag; SIGINT stops them all', { skip: notBuilt }, async () => {
  const { run, json, text } = await sandboxStatus(['--groups', '2', '--replicas', '1']);
  assert.equal(run.code, 0, show(run));
  assert.equal(json.code, 0, show(json));
  const replicaLines = [...run.stdout.matchAll(/^group (\d+) replica: (127\.0\.0\.1:\d+)$/gm)].map((m) => [Number(m[1]), m[2]!]);
  assert.equal(replicaLines.length, 2, run.stdout);
  assert.match(run.stdout, /^  const redis = new ShardedRedis\(\{ coordinator: "redis:\/\/127\.0\.0\.1:\d+", cluster: "sandbox", readFrom: "replica" \}\);$/m);
  const status = JSON.parse(json.stdout) as StatusJson;
  assert.deepEqual(
    status.groups.map((g) => [g.id, g.replicas.map((r) => r.address)]),
    replicaLines.map(([id, address]) => [id, [address]]),
  );
  for (const g of status.groups) {
    assert.equal(g.error, undefined);
    assert.equal(g.masterAddress, g.master);
    const [replica] = g.replicas;
    assert.equal(replica!.link, 'up', JSON.stringify(g));
    assert.equal(typeof replica!.lagBytes, 'number');
    assert.ok(replica!.lagBytes! >= 0);
    assert.equal(typeof replica!.lastIoSeconds, 'number');
    assert.equal(replica!.error, undefined);
  }
  assert.equal(text.code, 0, show(text));
  assert.match(text.stdout, /^replication \(2 replicas\):$/m);
  assert.match(text.stdout, /^  1 +127\.0\.0\.1:\d+ +up +\d+(\.\d)? [KMG]?B +\d+s ago$/m);
  assert.match(run.stdout, /^stopped 5 redis-server processes$/m);
  const ports = printedPorts(run.stdout);
  assert.equal(ports.length, 5, run.stdout);
  for (const p of ports) assert.ok(await refused(p), `port ${p} still answers after SIGINT`);
});

test('sandbox --replicas 1 --sentinels 3: Sentinel-named groups, status resolves their masters; SIGINT stops them all', { skip: notBuilt }, async () => {
  const { run, json, text } = await sandboxStatus(['--groups', '2', '--replicas', '1', '--sentinels', '3']);
  assert.equal(run.code, 0, show(run));
  assert.match(run.stdout, /^sandbox ready: 6 redis-server and 3 redis-sentinel processes on 127\.0\.0\.1; press Ctrl-C to stop them$/m);
  const sentinels = [...run.stdout.matchAll(/^sentinel: 127\.0\.0\.1:(\d+)$/gm)].map((m) => Number(m[1]));
  assert.equal(sentinels.length, 3, run.stdout);
  const list = sentinels.map((p) => `\\{ host: "127\\.0\\.0\\.1", port: ${p} \\}`).join(', ');
  assert.match(run.stdout, new RegExp(`new ShardedRedis\\(\\{ coordinator: \\{ sentinels: \\[${list}\\], name: "coord" \\}, cluster: "sandbox" \\}\\)`));
  assert.match(run.stdout, /^  1 +sentinel g1 +- +512 +0\.\.511$/m);

  assert.equal(json.code, 0, show(json));
  const status = JSON.parse(json.stdout) as StatusJson & { table: { sentinels: string[]; groups: unknown[] } };
  assert.deepEqual(status.table.groups, [{ id: 1, sentinel: { name: 'g1' } }, { id: 2, sentinel: { name: 'g2' } }]);
  assert.deepEqual(status.table.sentinels, sentinels.map((p) => `127.0.0.1:${p}`));
  for (const g of status.groups) {
    const printed = new RegExp(`^group ${g.id}: (\\S+)$`, 'm').exec(run.stdout)?.[1];
    const replica = new RegExp(`^group ${g.id} replica: (\\S+)$`, 'm').exec(run.stdout)?.[1];
    assert.deepEqual([g.master, g.sentinel, g.masterAddress, g.error], [`sentinel g${g.id}`, `g${g.id}`, printed, undefined]);
    assert.deepEqual(g.replicas.map((r) => [r.address, r.link, typeof r.lagBytes]), [[replica, 'up', 'number']]);
  }
  assert.equal(text.code, 0, show(text));
  assert.match(text.stdout, /^  1 +127\.0\.0\.1:\d+ \(sentinel g1\) +127\.0\.0\.1:\d+ +512 /m);

  assert.match(run.stdout, /^stopped 6 redis-server processes and 3 redis-sentinel processes$/m);
  const ports = printedPorts(run.stdout);
  assert.equal(ports.length, 9, run.stdout);
  for (const p of ports) assert.ok(await refused(p), `port ${p} still answers after SIGINT`);
});

test('status reports a replica that is down, without failing', { skip: notBuilt }, async () => {
  const cluster = uniqueCluster();
  const down = servers[0]!.port === 1 ? 2 : 1; // nothing listens there
  assert.equal((await shardis(cluster, ['init', '--group', `1=${group(1)},127.0.0.1:${down}`])).code, 0);
  const run = await shardis(cluster, ['status', '--json']);
  assert.equal(run.code, 0, show(run));
  const [g] = (JSON.parse(run.stdout) as StatusJson).groups;
  assert.equal(g!.error, undefined);
  assert.equal(g!.replicas.length, 1);
  const [replica] = g!.replicas;
  assert.deepEqual([replica!.address, replica!.link, replica!.lagBytes, replica!.lastIoSeconds], [`127.0.0.1:${down}`, 'down', null, null]);
  assert.match(replica!.error ?? '', /ECONNREFUSED/);
});

// Live migration from the command line: keys written straight to the groups'
// servers, checked there afterwards.

/** `count` key names starting with `prefix` whose slot passes `accept`. */
function keysWhere(prefix: string, count: number, accept: (slot: number) => boolean): string[] {
  const keys: string[] = [];
  for (let i = 0; keys.length < count; i++) {
    const key = `${prefix}:${i}`;
    if (accept(slotOf(key))) keys.push(key);
  }
  return keys;
}

/** Connections to the groups' servers (servers[1..5]), by server index; flushed and closed by `done`. */
function groupServers(): { at: (i: number) => Redis; done: () => Promise<void> } {
  const open = new Map<number, Redis>();
  return {
    at(i) {
      let redis = open.get(i);
      if (redis === undefined) open.set(i, (redis = new IORedis(servers[i]!.port, '127.0.0.1')));
      return redis;
    },
    async done() {
      await Promise.all([...open.values()].map((redis) => redis.flushall()));
      for (const redis of open.values()) redis.disconnect();
    },
  };
}

async function writeKeys(redis: Redis, keys: readonly string[]): Promise<void> {
  for (let i = 0; i < keys.length; i += 500) await redis.mset(keys.slice(i, i + 500).flatMap((key) => [key, `v:${key}`]));
}

/** The keys of `keys` that `redis` holds, with the right value. */
async function present(redis: Redis, keys: readonly string[]): Promise<string[]> {
  if (keys.length === 0) return [];
  const values = await redis.mget(...keys);
  return keys.filter((key, i) => values[i] === `v:${key}`);
}

/** A client entry that stays live (fresh, long lease) but never applies a newer table. */
async function stuckClient(cluster: string): Promise<void> {
  const [seconds, micros] = await coordinator.time();
  const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  const entry = { version: 1, at: now, host: 'elsewhere', pid: 1, name: 'shardis:stuck', leaseMs: 600_000 };
  await coordinator.hset(coordinatorKeys(cluster).clients, 'stuck', JSON.stringify(entry));
}

test('migrate moves the keys of the slots to the target group; migration status shows no job after', { skip: notBuilt }, async () => {
  const cluster = uniqueCluster();
  const g = groupServers();
  try {
    assert.equal((await shardis(cluster, ['init', '--group', `1=${group(1)}`, '--group', `2=${group(2)}`])).code, 0);
    const moving = keysWhere('mv', 3000, (slot) => slot <= 99 || slot === 200);
    const staying = keysWhere('st', 500, (slot) => slot >= 100 && slot <= 511 && slot !== 200);
    await writeKeys(g.at(1), [...moving, ...staying]);

    const run = await shardis(cluster, ['migrate', '--slots', '0-99,200', '--to', '2', '--max-batch-keys', '200', '--batch-ms', '5']);
    assert.equal(run.code, 0, show(run));
    assert.equal(run.stderr, '');
    // Not a terminal: plain lines, one per phase, no bar.
    assert.match(run.stdout, /^migration [0-9a-f]+: slots 0\.\.99, 200 \(101 slots\) from group 1 to group 2$/m);
    for (const phase of ['pending', 'preparing', 'migrating', 'verifying', 'done']) assert.match(run.stdout, new RegExp(`^${phase}: `, 'm'), phase);
    assert.doesNotMatch(run.stdout, /\r|\x1b\[/, 'no terminal control characters in a pipe');
    assert.match(
      run.stdout,
      /^migration [0-9a-f]+ done: 3000 keys of slots 0\.\.99, 200 \(101 slots\) moved from group 1 to group 2 in \S+, \d+ keys\/s, 1 verify pass, table version 5$/m,
    );

    // On the servers: every moved key on group 2 with its value, none left on group 1; the others stay.
    assert.deepEqual(await present(g.at(2), moving), moving);
    assert.deepEqual(await present(g.at(1), moving), []);
    assert.deepEqual(await present(g.at(1), staying), staying);
    assert.equal(await g.at(2).dbsize(), moving.length);
    const table = await storedTable(cluster);
    for (const slot of [0, 50, 99, 200]) assert.equal(table.owner[slot], 2, `slot ${slot}`);
    for (const slot of [100, 199, 201, 511]) assert.equal(table.owner[slot], 1, `slot ${slot}`);
    assert.deepEqual(table.migrations, []);

    const status = await shardis(cluster, ['migration', 'status']);
    assert.equal(status.code, 0, show(status));
    assert.equal(status.stdout, `cluster ${cluster}: no migration job\n`);
    const json = await shardis(cluster, ['migration', 'status', '--json']);
    assert.equal(json.code, 0, show(json));
    assert.deepEqual(JSON.parse(json.stdout), { cluster, job: null, lock: null, migrations: [] });
  } finally {
    await g.done();
  }
});

test('rebalance --apply after group add moves the planned slots to the new group', { skip: notBuilt }, async () => {
  const cluster = uniqueCluster();
  const g = groupServers();
  try {
    assert.equal((await shardis(cluster, ['init', '--group', `1=${group(1)}`, '--group', `2=${group(2)}`])).code, 0);
    // Each key on the group that owns its slot (0..511: group 1, 512..1023: group 2).
    const keys = keysWhere('rb', 4000, () => true);
    await writeKeys(g.at(1), keys.filter((key) => slotOf(key) < 512));
    await writeKeys(g.at(2), keys.filter((key) => slotOf(key) >= 512));
    assert.equal((await shardis(cluster, ['group', 'add', '3', group(3)])).code, 0);
    const plan = planRebalance(await storedTable(cluster));
    assert.equal(plan.moves.length, 2);

    const run = await shardis(cluster, ['rebalance', '--apply']);
    assert.equal(run.code, 0, show(run));
    assert.match(run.stdout, /^cluster \S+ \(table version 2\): 341 slots move, in 2 moves$/m);
    assert.match(run.stdout, /^move 1\/2: migration [0-9a-f]+: slots \S+ \(\d+ slots\) from group 1 to group 3$/m);
    assert.match(run.stdout, /^move 2\/2: migration [0-9a-f]+: slots \S+ \(\d+ slots\) from group 2 to group 3$/m);
    assert.equal(run.stdout.match(/^migration [0-9a-f]+ done: /gm)?.length, 2, run.stdout);
    const onGroup3 = keys.filter((key) => plan.target.some((r) => r.group === 3 && slotOf(key) >= r.from && slotOf(key) <= r.to));
    assert.ok(onGroup3.length > 1000, `${onGroup3.length} keys move`);
    assert.match(run.stdout, new RegExp(`^cluster ${cluster} rebalanced: 341 slots in 2 moves, ${onGroup3.length} keys moved in \\S+; table version \\d+$`, 'm'));

    const table = await storedTable(cluster);
    assert.deepEqual(table.slots.map((r) => [r.from, r.to, r.group]), plan.target.map((r) => [r.from, r.to, r.group]));
    assert.deepEqual(table.migrations, []);
    // Every key is on the group that now owns its slot, and only there.
    for (const id of [1, 2, 3]) {
      const owned = keys.filter((key) => table.owner[slotOf(key)] === id);
      assert.deepEqual(await present(g.at(id), owned), owned, `group ${id}`);
      assert.equal(await g.at(id).dbsize(), owned.length, `group ${id} holds only its own keys`);
    }
    const again = await shardis(cluster, ['rebalance', '--apply']);
    assert.equal(again.code, 0, show(again));
    assert.match(again.stdout, /is balanced: no slot moves/);
  } finally {
    await g.done();
  }
});

test('migrate refuses a target that holds keys of the slots (exit 1, --clear-target hint); --clear-target deletes them', { skip: notBuilt }, async () => {
  const cluster = uniqueCluster();
  const g = groupServers();
  try {
    assert.equal((await shardis(cluster, ['init', '--group', `1=${group(1)}`, '--group', `2=${group(2)}`])).code, 0);
    await g.at(1).set('foo', 'v:foo'); // slot 289, owned by group 1
    await g.at(2).set('{foo}:stale', 'old');

    const run = await shardis(cluster, ['migrate', '--slots', '289', '--to', '2']);
    assert.equal(run.code, 1, show(run));
    assert.match(run.stderr, /^shardis: group 2 already holds keys in slots it is to receive, e\.g\. \{foo\}:stale \(slot 289\).* \[ERR_TARGET_NOT_EMPTY\]\nshardis: .*--clear-target.*\n$/);
    assert.equal(run.stdout, '');
    assert.equal((await storedTable(cluster)).version, 1, 'nothing was changed');
    assert.equal(await coordinator.exists(coordinatorKeys(cluster).migration), 0, 'no job');

    const cleared = await shardis(cluster, ['migrate', '--slots', '289', '--to', '2', '--clear-target']);
    assert.equal(cleared.code, 0, show(cleared));
    assert.match(cleared.stdout, /^migration \S+ done: 1 key of slots 289 \(1 slot\) moved .*, 1 key cleared on group 2 first$/m);
    assert.equal(await g.at(2).get('foo'), 'v:foo');
    assert.equal(await g.at(2).exists('{foo}:stale'), 0);
    assert.equal(await g.at(1).exists('foo'), 0);
  } finally {
    await g.done();
  }
});

test('Ctrl-C while a client does not ack: exit 130, the job is kept; migration status, resume and abort', { skip: notBuilt }, async () => {
  const cluster = uniqueCluster();
  const keys = coordinatorKeys(cluster);
  const g = groupServers();
  try {
    assert.equal((await shardis(cluster, ['init', '--group', `1=${group(1)}`, '--group', `2=${group(2)}`])).code, 0);
    const moving = keysWhere('int', 300, (slot) => slot <= 9);
    await writeKeys(g.at(1), moving);
    await stuckClient(cluster);

    // Stopped while it waits for the stuck client; meanwhile status sees the job and the lock held.
    let during: Promise<Run> | undefined;
    const env = { SHARDIS_COORDINATOR: coordinatorUrl, SHARDIS_CLUSTER: cluster };
    const run = await runCli(['migrate', '--slots', '0-9', '--to', '2', '--ack-timeout-ms', '600000'], {
      env,
      onStdout: (text, kill) => {
        if (during !== undefined || !/^pending: waiting \S+ for 1 client to acknowledge: stuck$/m.test(text)) return;
        during = shardis(cluster, ['migration', 'status', '--json']).finally(() => kill('SIGINT'));
      },
    });
    assert.ok(during, `never waited for the client\n${show(run)}`);
    assert.equal(run.code, 130, show(run));
    assert.match(run.stdout, /^SIGINT: stopping after the current step/m);
    assert.match(run.stderr, /^shardis: SIGINT: migration [0-9a-f]+ stopped cleanly in phase pending \(0 keys moved so far\); the job is saved in the coordinator: `shardis migration resume` continues it, or `shardis migration abort` puts the slots back on group 1\n$/);
    const seen = JSON.parse((await during).stdout) as { job: { phase: string } | null; lock: { holder: { pid: number } | null; ttlMs: number } | null };
    assert.equal(seen.job?.phase, 'pending');
    assert.ok(seen.lock !== null && seen.lock.holder !== null && seen.lock.ttlMs > 0, 'the running migrator holds the lock');

    const json = await shardis(cluster, ['migration', 'status', '--json']);
    assert.equal(json.code, 0, show(json));
    const status = JSON.parse(json.stdout) as {
      cluster: string;
      job: { id: string; phase: string; slots: number[][]; from: number; to: number; moved: number };
      lock: unknown;
      migrations: { slots: number[][]; state: string }[];
    };
    assert.equal(status.cluster, cluster);
    assert.deepEqual([status.job.phase, status.job.slots, status.job.from, status.job.to, status.job.moved], ['pending', [[0, 9]], 1, 2, 0]);
    assert.equal(status.lock, null, 'the lock was released');
    assert.deepEqual(status.migrations.map((m) => [m.slots, m.state]), [[[[0, 9]], 'pending']]);
    const text = await shardis(cluster, ['migration', 'status']);
    assert.equal(text.code, 0, show(text));
    assert.match(text.stdout, new RegExp(`^cluster ${cluster}: migration ${status.job.id}: slots 0\\.\\.9 \\(10 slots\\) from group 1 to group 2$`, 'm'));
    assert.match(text.stdout, /^  phase +pending \(table version 2\)$/m);
    assert.match(text.stdout, /^  migrator +none is running it: `shardis migration resume` continues it/m);

    // One migration at a time.
    const other = await shardis(cluster, ['migrate', '--slots', '20', '--to', '2']);
    assert.equal(other.code, 1, show(other));
    assert.match(other.stderr, /\[ERR_MIGRATION_IN_PROGRESS\]\nshardis: `shardis migration status` shows it; `shardis migration resume` finishes it/);

    const plan = await shardis(cluster, ['rebalance']);
    assert.equal(plan.code, 1, show(plan));
    assert.match(plan.stderr, /a migration is in flight.*\[ERR_TOPOLOGY\]\nshardis: `shardis migration status` shows it; `shardis migration resume` finishes it/);

    // Resuming while the client still does not ack: it times out, the job stays.
    const late = await shardis(cluster, ['migration', 'resume', '--ack-timeout-ms', '300']);
    assert.equal(late.code, 1, show(late));
    assert.match(late.stdout, new RegExp(`^resuming migration ${status.job.id} in phase pending \\(0 keys moved so far\\)$`, 'm'));
    assert.match(late.stderr, /^shardis: 1 client\(s\) did not acknowledge .*stuck.* \[ERR_ACK_TIMEOUT\]\nshardis: .*`shardis migration resume` waits again \(--ack-timeout-ms to wait longer\), or `shardis migration abort` puts the slots back\n$/);
    assert.equal(JSON.parse((await shardis(cluster, ['migration', 'status', '--json'])).stdout).job.id, status.job.id);

    // The client goes away: resume finishes the job.
    await coordinator.hdel(keys.clients, 'stuck');
    const resumed = await shardis(cluster, ['migration', 'resume']);
    assert.equal(resumed.code, 0, show(resumed));
    assert.match(resumed.stdout, new RegExp(`^migration ${status.job.id} done: 300 keys of slots 0\\.\\.9 \\(10 slots\\) moved from group 1 to group 2 in .*, resumed$`, 'm'));
    assert.deepEqual(await present(g.at(2), moving), moving);
    assert.deepEqual(await present(g.at(1), moving), []);
    assert.equal((await storedTable(cluster)).owner[5], 2);
    assert.match((await shardis(cluster, ['migration', 'status'])).stdout, /no migration job/);

    // A job that times out waiting is undone by abort: the slots stay with their group.
    await stuckClient(cluster);
    const stuck = await shardis(cluster, ['migrate', '--slots', '10-19', '--to', '2', '--ack-timeout-ms', '300']);
    assert.equal(stuck.code, 1, show(stuck));
    assert.match(stuck.stderr, /\[ERR_ACK_TIMEOUT\]\nshardis: .*`shardis migration abort`/);
    const abort = await shardis(cluster, ['migration', 'abort']);
    assert.equal(abort.code, 0, show(abort));
    assert.match(abort.stdout, /^migration [0-9a-f]+ aborted: slots 10\.\.19 stay on group 1 \(table version \d+\)$/m);
    const table = await storedTable(cluster);
    assert.deepEqual(table.migrations, []);
    assert.equal(table.owner[15], 1);
    assert.equal(await coordinator.exists(keys.migration), 0);

    const nothing = await shardis(cluster, ['migration', 'abort']);
    assert.equal(nothing.code, 1, show(nothing));
    assert.match(nothing.stderr, /^shardis: cluster \S+ has no migration job to abort; nothing was changed\n$/);
    // `shardis resume`, as the library's messages say it, is `migration resume`.
    const alias = await shardis(cluster, ['resume']);
    assert.equal(alias.code, 1, show(alias));
    assert.match(alias.stderr, /^shardis: cluster \S+ has no migration job to resume; nothing was changed\n$/);
  } finally {
    await coordinator.hdel(keys.clients, 'stuck');
    await g.done();
  }
});
