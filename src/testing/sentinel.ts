// RedisSentinel: one throwaway redis-sentinel for tests, and startSentinels():
// masters with replicas (`--replicaof`) watched by N sentinels, ready once
// every sentinel knows every master, its replicas and the other sentinels.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RedisSentinelNotFoundError } from './errors.js';
import { log } from './log.js';
import { findFreePort } from './ports.js';
import { track } from './registry.js';
import { pairs, respCommand, type RespReply } from './resp.js';
import { RedisServer, startRedisServers, type RedisServerOptions } from './server.js';
import { PortInUseError, spawnRedis } from './spawn.js';
import { HOST, LocalProcess } from './local-process.js';

/** One master a sentinel watches. */
export interface SentinelMonitor {
  /** The Sentinel master name (what clients ask for). */
  name: string;
  /** Port of the master on 127.0.0.1. */
  port: number;
  /** Sentinels that must agree the master is down. */
  quorum: number;
  /** The master's `requirepass`, if any (`sentinel auth-pass`). */
  password?: string;
}

export interface RedisSentinelOptions {
  masters: readonly SentinelMonitor[];
  /** Default: a free loopback port. */
  port?: number;
  /** `sentinel down-after-milliseconds`. Default 1000 (Redis' default is 30000). */
  downAfterMs?: number;
  /** `sentinel failover-timeout`. Default 5000 (Redis' default is 180000). */
  failoverTimeoutMs?: number;
  /** Default: env SHARDIS_REDIS_SENTINEL, else `redis-sentinel` from PATH. */
  redisSentinelPath?: string;
  /** Default 10000. */
  startTimeoutMs?: number;
}

const PORT_RACE_ATTEMPTS = 5;

function sentinelBinary(path: string | undefined): string {
  const fromEnv = process.env['SHARDIS_REDIS_SENTINEL'];
  return path ?? (fromEnv !== undefined && fromEnv !== '' ? fromEnv : 'redis-sentinel');
}

function configText(port: number, dir: string, options: RedisSentinelOptions): string {
  const lines = [`port ${port}`, `bind ${HOST}`, `dir "${dir}"`, 'daemonize no', 'protected-mode no', 'loglevel warning', 'logfile ""'];
  for (const m of options.masters) {
    lines.push(
      `sentinel monitor ${m.name} ${HOST} ${m.port} ${m.quorum}`,
      `sentinel down-after-milliseconds ${m.name} ${options.downAfterMs ?? 1000}`,
      `sentinel failover-timeout ${m.name} ${options.failoverTimeoutMs ?? 5000}`,
      `sentinel parallel-syncs ${m.name} 1`,
    );
    if (m.password !== undefined) lines.push(`sentinel auth-pass ${m.name} ${m.password}`);
  }
  return `${lines.join('\n')}\n`;
}

export class RedisSentinel extends LocalProcess {
  private readonly options: RedisSentinelOptions;
  private constructor(port: number, options: RedisSentinelOptions) {
    super(port, 'redis-sentinel');
    this.options = options;
  }

  /** Starts a sentinel and resolves once it answers PING (it may not know the other sentinels yet). */
  static async start(options: RedisSentinelOptions): Promise<RedisSentinel> {
    const attempts = options.port === undefined ? PORT_RACE_ATTEMPTS : 1;
    for (let attempt = 1; ; attempt += 1) {
      const sentinel = new RedisSentinel(options.port ?? (await findFreePort()), options);
      try {
        await sentinel.launch(true);
        return sentinel;
      } catch (err) {
        await sentinel.stop();
        if (err instanceof PortInUseError && attempt < attempts) continue;
        throw err;
      }
    }
  }

  /** Sends one command (e.g. `SENTINEL MASTER g1`) and resolves with the raw reply. */
  command(...args: string[]): Promise<RespReply> {
    return respCommand(this.port, args);
  }

  /** "host:port" this sentinel currently gives for `name`, or null when it knows none. */
  async masterAddress(name: string): Promise<string | null> {
    const reply = await this.command('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name);
    return Array.isArray(reply) && reply.length === 2 ? `${String(reply[0])}:${String(reply[1])}` : null;
  }

  /** Starts again from its rewritten config (what it learnt is kept). */
  protected override relaunch(): Promise<void> {
    return this.launch(false);
  }

  private async launch(fresh: boolean): Promise<void> {
    this.dir ??= await mkdtemp(join(tmpdir(), 'shardis-sentinel-'));
    const config = join(this.dir, 'sentinel.conf');
    // Sentinel rewrites its config with what it learns: keep it on restart.
    if (fresh) await writeFile(config, configText(this.port, this.dir, this.options));
    track(this);
    const spawned = spawnRedis({
      binary: sentinelBinary(this.options.redisSentinelPath),
      port: this.port,
      password: undefined,
      args: [],
      dataDir: this.dir,
      startTimeoutMs: this.options.startTimeoutMs ?? 10_000,
      argv: [config],
      notFound: (binary) => new RedisSentinelNotFoundError(binary),
      label: 'redis-sentinel',
    });
    this.child = spawned.child;
    this.exited = spawned.exited;
    await spawned.ready;
  }
}

/** Starts a replica of `master` (`--replicaof`, `--masterauth` when it has a password); resolves once its link is up. */
export async function startReplica(master: RedisServer, options: Omit<RedisServerOptions, 'port'> = {}): Promise<RedisServer> {
  const args = ['--replicaof', master.host, String(master.port), ...(master.password !== undefined ? ['--masterauth', master.password] : []), ...(options.args ?? [])];
  const password = options.password ?? master.password;
  const replica = await RedisServer.start({ ...options, password, args });
  try {
    await waitUntil(`replica ${replica.address} of ${master.address} to sync`, options.startTimeoutMs ?? 10_000, async () => {
      const info = await respCommand(replica.port, ['INFO', 'replication'], { password });
      return /^master_link_status:up\r?$/m.test(String(info));
    });
  } catch (err) {
    await replica.stop();
    throw err;
  }
  return replica;
}

export interface SentinelSetOptions {
  /** Sentinel master names, one group each. Default ['g1']. */
  masters?: readonly string[];
  /** Replicas per master. Default 1. */
  replicas?: number;
  /** Number of sentinels. Default 3. */
  sentinels?: number;
  /** Default: a majority of the sentinels. */
  quorum?: number;
  /** `sentinel down-after-milliseconds`. Default 1000. */
  downAfterMs?: number;
  /** `sentinel failover-timeout`. Default 5000. */
  failoverTimeoutMs?: number;
  /** Options of every master and replica (e.g. `args: ['--min-replicas-to-write', '1']`). */
  server?: Omit<RedisServerOptions, 'port'>;
  redisSentinelPath?: string;
  /** How long to wait for the sentinels to know everything. Default 30000. */
  readyTimeoutMs?: number;
}

/** The servers of one Sentinel master name, as started (a failover swaps the roles). */
export interface SentinelGroupServers {
  readonly name: string;
  readonly master: RedisServer;
  readonly replicas: readonly RedisServer[];
}

/** Masters, replicas and the sentinels watching them. */
export interface SentinelSet {
  readonly sentinels: readonly RedisSentinel[];
  /** "127.0.0.1:PORT" of each sentinel (what `sentinels: [...]` in a table takes). */
  readonly addresses: readonly string[];
  /** By master name, in the order given. */
  readonly groups: readonly SentinelGroupServers[];
  /** The servers of `name`. */
  group(name: string): SentinelGroupServers;
  /** "host:port" of `name`'s master as the running sentinels currently agree on. */
  masterAddress(name: string): Promise<string>;
  /**
   * Waits until every running sentinel names a master for `name` other than
   * `oldAddress` and that server answers ROLE as master; resolves with it.
   */
  waitForFailover(name: string, oldAddress: string, timeoutMs?: number): Promise<string>;
  /** Stops the sentinels, then every server of the set. */
  stop(): Promise<void>;
}

/** Starts masters with replicas and N sentinels watching them; resolves once the sentinels know it all. */
export async function startSentinels(options: SentinelSetOptions = {}): Promise<SentinelSet> {
  const names = options.masters ?? ['g1'];
  const replicaCount = options.replicas ?? 1;
  const sentinelCount = options.sentinels ?? 3;
  const quorum = options.quorum ?? Math.floor(sentinelCount / 2) + 1;
  if (names.length === 0 || new Set(names).size !== names.length || names.some((n) => !/^[A-Za-z0-9._-]+$/.test(n))) {
    throw new RangeError(`masters must be distinct names of letters, digits, ".", "_", "-", got ${JSON.stringify(names)}`);
  }
  if (!Number.isInteger(sentinelCount) || sentinelCount < 1) throw new RangeError(`Invalid sentinel count: ${sentinelCount}`);
  if (!Number.isInteger(quorum) || quorum < 1 || quorum > sentinelCount) throw new RangeError(`Invalid quorum ${quorum} for ${sentinelCount} sentinels`);
  if (!Number.isInteger(replicaCount) || replicaCount < 0) throw new RangeError(`Invalid replica count: ${replicaCount}`);

  const servers: RedisServer[] = [];
  const sentinels: RedisSentinel[] = [];
  const stopAll = async (): Promise<void> => {
    await Promise.all(sentinels.map((s) => s.stop()));
    await Promise.all(servers.map((s) => s.stop()));
  };
  try {
    const masters = await startRedisServers(names.length, options.server);
    servers.push(...masters);
    const groups: SentinelGroupServers[] = [];
    for (const [i, name] of names.entries()) {
      const master = masters[i]!;
      const replicas = await Promise.all(Array.from({ length: replicaCount }, () => startReplica(master, options.server)));
      servers.push(...replicas);
      groups.push(Object.freeze({ name, master, replicas: Object.freeze(replicas) }));
    }
    // Replicas are linked before sentinels start, so their first INFO of each master lists them.
    const monitors = groups.map((g) => ({ name: g.name, port: g.master.port, quorum, password: g.master.password }));
    const started = await Promise.allSettled(
      Array.from({ length: sentinelCount }, () =>
        RedisSentinel.start({
          masters: monitors,
          downAfterMs: options.downAfterMs,
          failoverTimeoutMs: options.failoverTimeoutMs,
          redisSentinelPath: options.redisSentinelPath,
        }),
      ),
    );
    for (const r of started) if (r.status === 'fulfilled') sentinels.push(r.value);
    const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;

    await waitUntil('the sentinels to know every master, replica and each other', options.readyTimeoutMs ?? 30_000, async () => {
      for (const sentinel of sentinels) {
        for (const name of names) {
          const master = pairs(await sentinel.command('SENTINEL', 'MASTER', name));
          if (master['flags'] !== 'master') return false;
          if (Number(master['num-slaves']) < replicaCount || Number(master['num-other-sentinels']) < sentinelCount - 1) return false;
          const replicas = await sentinel.command('SENTINEL', 'REPLICAS', name);
          if (!Array.isArray(replicas) || replicas.map(pairs).some((r) => r['flags'] !== 'slave' || r['master-link-status'] !== 'ok')) return false;
        }
      }
      return true;
    });
    log('sentinels %s watch %s', sentinels.map((s) => s.port).join(','), names.join(','));
    return makeSet(sentinels, groups, stopAll);
  } catch (err) {
    await stopAll();
    throw err;
  }
}

function makeSet(sentinels: RedisSentinel[], groups: SentinelGroupServers[], stop: () => Promise<void>): SentinelSet {
  const group = (name: string): SentinelGroupServers => {
    const found = groups.find((g) => g.name === name);
    if (found === undefined) throw new RangeError(`no master named ${JSON.stringify(name)}; known: ${groups.map((g) => g.name).join(', ')}`);
    return found;
  };
  const opinions = async (name: string): Promise<(string | null)[]> =>
    Promise.all(sentinels.filter((s) => s.running).map((s) => s.masterAddress(name).catch(() => null)));
  return Object.freeze({
    sentinels: Object.freeze([...sentinels]),
    addresses: Object.freeze(sentinels.map((s) => s.address)),
    groups: Object.freeze([...groups]),
    group,
    async masterAddress(name: string): Promise<string> {
      group(name);
      const answers = (await opinions(name)).filter((a): a is string => a !== null);
      const counts = new Map<string, number>();
      for (const a of answers) counts.set(a, (counts.get(a) ?? 0) + 1);
      const best = [...counts.entries()].sort((x, y) => y[1] - x[1])[0];
      if (best === undefined) throw new Error(`no running sentinel knows a master for ${JSON.stringify(name)}`);
      return best[0];
    },
    async waitForFailover(name: string, oldAddress: string, timeoutMs = 60_000): Promise<string> {
      group(name);
      let found = '';
      await waitUntil(`a failover of ${name} away from ${oldAddress}`, timeoutMs, async () => {
        const answers = await opinions(name);
        const first = answers[0];
        if (first == null || first === oldAddress || answers.some((a) => a !== first)) return false;
        const port = Number(first.slice(first.lastIndexOf(':') + 1));
        const server = groups.flatMap((g) => [g.master, ...g.replicas]).find((s) => s.port === port);
        const role = await respCommand(port, ['ROLE'], { password: server?.password }).catch(() => null);
        if (!Array.isArray(role) || role[0] !== 'master') return false;
        found = first;
        return true;
      });
      return found;
    },
    stop,
  });
}

async function waitUntil(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      if (await check()) return;
    } catch (err) {
      last = ` (last error: ${(err as Error).message})`;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}${last}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
