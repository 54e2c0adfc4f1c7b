// Specification of many client processes following one coordinator (DESIGN
// §4): a table change reaches every process within 100 ms through events, and
// within refreshMs when their event connections are killed; a process frozen
// past its lease (as a serverless function is between invocations) confirms
// the table before its next command, and no acknowledged write is lost.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import type { GroupSpec } from '../../src/index.js';
import { RedisServer, keygen, startRedisServers, stopAllRedisServers } from '../../src/testing/index.js';
import { childEnv, direct, sleep, until } from '../fixtures/integration-kit.js';
import { registry, uniqueCluster, writeTable } from '../fixtures/coordinator-kit.js';

const fixture = join(__dirname, '..', 'fixtures', 'follower-child.ts');
const key = keygen('followers');

interface Message {
  type: string;
  at: number;
  to?: number;
  n?: number;
  value?: number;
  message?: string;
}

/** A follower process and everything it has said. */
interface Follower {
  readonly child: ChildProcess;
  readonly messages: Message[];
  readonly exited: Promise<number | null>;
}

let coordinatorServer: RedisServer;
let servers: RedisServer[] = [];
let groups: GroupSpec[] = [];
let coordinator: Redis;
const raw: Redis[] = [];
const children: Follower[] = [];

function follow(cluster: string, refreshMs: number, leaseMs: number, env: Record<string, string> = {}): Follower {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', fixture, `redis://${coordinatorServer.address}`, cluster, String(refreshMs), String(leaseMs)],
    { env: childEnv(env), stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const messages: Message[] = [];
  let buffered = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const line of lines) if (line.trim()) messages.push(JSON.parse(line) as Message);
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const follower = { child, messages, exited };
  children.push(follower);
  return follower;
}

function topologyAt(follower: Follower, version: number): number | undefined {
  return follower.messages.find((m) => m.type === 'topology' && m.to === version)?.at;
}

async function stop(follower: Follower): Promise<void> {
  if (follower.child.exitCode === null && follower.child.signalCode === null) follower.child.kill('SIGTERM');
  await Promise.race([follower.exited, sleep(5000)]);
  if (follower.child.exitCode === null) follower.child.kill('SIGKILL');
}

before(async () => {
  [coordinatorServer, ...servers] = await startRedisServers(3);
  groups = servers.map((s, i) => ({ id: i + 1, master: s.address }));
  coordinator = direct(coordinatorServer);
  raw.push(coordinator);
});

after(async () => {
  await Promise.all(children.map(stop));
  await Promise.all(raw.map((r) => r.quit().catch(() => r.disconnect())));
  await stopAllRedisServers();
});

describe('several client processes', () => {
  test('a table change reaches every process within 100 ms through events', async () => {
    const cluster = uniqueCluster('procs');
    await writeTable(coordinator, cluster, 1, { groups });
    // Polling every 5 s, so only events can be this fast.
    const followers = [0, 1, 2].map(() => follow(cluster, 5000, 10_000));
    await until(20_000, 'every process ready', () => followers.every((f) => f.messages.some((m) => m.type === 'ready')));
    await sleep(100);
    for (let version = 2; version <= 4; version++) {
      const written = Date.now();
      await writeTable(coordinator, cluster, version, { groups, slots: [{ from: 0, to: 1023, group: (version % 2) + 1 }] });
      await until(2000, `version ${version} everywhere`, () => followers.every((f) => topologyAt(f, version) !== undefined));
      const delays = followers.map((f) => topologyAt(f, version)! - written);
      assert.ok(Math.max(...delays) <= 100, `delays ${delays.join(', ')} ms`);
    }
    // And every process acked the last version in the registry.
    await until(2000, 'acks of version 4', async () => [...(await registry(coordinator, cluster)).values()].filter((e) => e.version === 4).length === 3);
    await Promise.all(followers.map(stop));
  });

  test('with their event connections killed, the change still arrives within refreshMs', async () => {
    const cluster = uniqueCluster('procs');
    await writeTable(coordinator, cluster, 1, { groups });
    const refreshMs = 400;
    const followers = [0, 1, 2].map(() => follow(cluster, refreshMs, 10_000));
    await until(20_000, 'every process ready', () => followers.every((f) => f.messages.some((m) => m.type === 'ready')));
    const killed = Number(await coordinator.call('CLIENT', 'KILL', 'TYPE', 'pubsub'));
    assert.ok(killed >= 3, `killed ${killed} pub/sub connections`);
    const written = Date.now();
    await writeTable(coordinator, cluster, 2, { groups, slots: [{ from: 0, to: 1023, group: 2 }] });
    await until(3000, 'version 2 everywhere', () => followers.every((f) => topologyAt(f, 2) !== undefined));
    const delays = followers.map((f) => topologyAt(f, 2)! - written);
    assert.ok(Math.max(...delays) <= refreshMs + 100, `delays ${delays.join(', ')} ms, refreshMs ${refreshMs}`);
    await Promise.all(followers.map(stop));
  });

  test('a process frozen past its lease confirms before its next command; every acknowledged INCR is counted', async () => {
    const cluster = uniqueCluster('frozen');
    await writeTable(coordinator, cluster, 1, { groups, slots: [{ from: 0, to: 1023, group: 1 }] });
    const counter = key();
    const f = follow(cluster, 200, 800, { COUNTER: counter });
    await until(20_000, 'counting', () => f.messages.filter((m) => m.type === 'incr').length >= 5);
    const [old, moved] = [direct(servers[0]!), direct(servers[1]!)];
    raw.push(old, moved);

    f.child.kill('SIGSTOP');
    await writeTable(coordinator, cluster, 2, { groups, slots: [{ from: 0, to: 1023, group: 2 }] });
    await sleep(1500); // well past the 800 ms lease
    const onOldBeforeThaw = Number(await old.get(counter));
    f.child.kill('SIGCONT');
    const seen = f.messages.length;
    await until(5000, 'counting after the thaw', () => f.messages.slice(seen).filter((m) => m.type === 'incr').length >= 10);
    await stop(f);

    assert.deepEqual(f.messages.filter((m) => m.type === 'incr-error'), [], 'no command failed');
    assert.equal(Number(await old.get(counter)), onOldBeforeThaw, 'nothing reached the old owner after the thaw');
    const acked = f.messages.filter((m) => m.type === 'incr').length;
    const counted = Number(await old.get(counter)) + Number(await moved.get(counter));
    assert.equal(counted, acked, 'every acknowledged INCR is on one of the groups, exactly once');
    assert.ok(Number(await moved.get(counter)) >= 10);
  });
});
