// RedisServer: lifecycle of one throwaway redis-server for tests
// (start on a free port, stop, crash via kill, restart on the same port).
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { log } from './log.js';
import { findFreePort } from './ports.js';
import { track, trackedServers } from './registry.js';
import { PortInUseError, spawnRedis } from './spawn.js';
import { LocalProcess } from './local-process.js';

export interface RedisServerOptions {
  /** Default: a free loopback port (re-picked if another process grabs it first). */
  port?: number;
  /** Sets `requirepass`. */
  password?: string;
  /** Extra redis-server arguments, e.g. `['--maxmemory', '10mb']`. */
  args?: string[];
  /** Default: env SHARDIS_REDIS_SERVER, else `redis-server` from PATH. */
  redisServerPath?: string;
  /** Default 10000. */
  startTimeoutMs?: number;
}

interface ResolvedOptions {
  binary: string;
  password: string | undefined;
  args: readonly string[];
  startTimeoutMs: number;
}

const PORT_RACE_ATTEMPTS = 5;

function resolveOptions(options: RedisServerOptions): ResolvedOptions {
  const fromEnv = process.env['SHARDIS_REDIS_SERVER'];
  return {
    binary: options.redisServerPath ?? (fromEnv !== undefined && fromEnv !== '' ? fromEnv : 'redis-server'),
    password: options.password,
    args: [...(options.args ?? [])],
    startTimeoutMs: options.startTimeoutMs ?? 10_000,
  };
}

export class RedisServer extends LocalProcess {
  readonly password: string | undefined;

  private readonly options: ResolvedOptions;
  private constructor(port: number, options: ResolvedOptions) {
    super(port, 'redis-server');
    this.password = options.password;
    this.options = options;
  }

  /** Starts a server and resolves once it answers PING. */
  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    const resolved = resolveOptions(options);
    const explicitPort = options.port;
    if (explicitPort !== undefined && !(Number.isInteger(explicitPort) && explicitPort > 0 && explicitPort < 65536)) {
      throw new RangeError(`Invalid port: ${explicitPort}`);
    }
    // Retrying only makes sense when we chose the port ourselves.
    const attempts = explicitPort === undefined ? PORT_RACE_ATTEMPTS : 1;
    for (let attempt = 1; ; attempt += 1) {
      const server = new RedisServer(explicitPort ?? (await findFreePort()), resolved);
      try {
        await server.launch();
        return server;
      } catch (err) {
        // The user never gets this instance: clean it up completely.
        await server.stop();
        if (err instanceof PortInUseError && attempt < attempts) {
          log('port %d was taken before redis-server bound it; retrying (%d/%d)', server.port, attempt, attempts);
          continue;
        }
        throw err;
      }
    }
  }

  protected override relaunch(): Promise<void> {
    return this.launch();
  }

  private async launch(): Promise<void> {
    this.dir ??= await mkdtemp(join(tmpdir(), 'shardis-redis-'));
    // Tracked before spawning so a signal during startup still kills the child.
    track(this);
    const spawned = spawnRedis({ ...this.options, port: this.port, dataDir: this.dir });
    this.child = spawned.child;
    this.exited = spawned.exited;
    await spawned.ready;
  }
}

/** Starts `count` servers in parallel; if any fails, the others are stopped. */
export async function startRedisServers(
  count: number,
  options: Omit<RedisServerOptions, 'port'> = {},
): Promise<RedisServer[]> {
  if (!Number.isInteger(count) || count < 0) throw new RangeError(`Invalid server count: ${count}`);
  const results = await Promise.allSettled(Array.from({ length: count }, () => RedisServer.start(options)));
  const started = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failure !== undefined) {
    await Promise.all(started.map((s) => s.stop()));
    throw failure.reason;
  }
  return started;
}

/** Stops every server this process started and has not stopped yet. */
export async function stopAllRedisServers(): Promise<void> {
  await Promise.all(trackedServers().map((s) => s.stop()));
}
