// RedisServer: lifecycle of one throwaway redis-server for tests
// (start on a free port, stop, crash via kill, restart on the same port).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { log } from './log.js';
import { findFreePort } from './ports.js';
import { track, trackedServers, untrack } from './registry.js';
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
const STOP_GRACE_MS = 2000;

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
  private exited: Promise<void> = Promise.resolve();
  private stopping: Promise<void> | undefined;

  private constructor(port: number, options: ResolvedOptions) {
    super(port);
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

  /** Graceful stop (SIGTERM, SIGKILL after ~2s), removes the data dir. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await this.terminate('SIGTERM', STOP_GRACE_MS);
      await this.removeDir();
      untrack(this);
    })();
    return this.stopping;
  }

  /** SIGKILL now, simulating a crash. The data dir is kept for restart(). */
  async kill(): Promise<void> {
    await this.terminate('SIGKILL');
  }

  /** Starts again on the same port with the same options (stops it first if running). */
  async restart(): Promise<void> {
    if (this.stopping !== undefined) await this.stopping;
    else await this.terminate('SIGTERM', STOP_GRACE_MS);
    this.stopping = undefined;
    await this.launch();
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

  /** Sends `signal`, escalates to SIGKILL after `killAfterMs`, resolves once exited. */
  private async terminate(signal: NodeJS.Signals, killAfterMs?: number): Promise<void> {
    const child = this.child;
    if (child === undefined) return;
    if (this.running) {
      log('sending %s to redis-server pid %d (%s)', signal, child.pid, this.address);
      child.kill(signal);
    }
    const timer =
      killAfterMs === undefined
        ? undefined
        : setTimeout(() => {
            log('redis-server pid %d ignored %s for %dms; sending SIGKILL', child.pid, signal, killAfterMs);
            child.kill('SIGKILL');
          }, killAfterMs);
    await this.exited;
    clearTimeout(timer);
    // A forked grandchild could hold the pipes open; make sure no handle survives.
    child.stdout?.destroy();
    child.stderr?.destroy();
  }

  private async removeDir(): Promise<void> {
    const dir = this.dir;
    this.dir = undefined;
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
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
