// Errors raised by the harness. Kept separate so callers can `instanceof` them
// without pulling in the process-management code.

export const REDIS_SERVER_INSTALL_HINT =
  'redis-server was not found on PATH. Install it: sudo apt-get install -y redis-server redis-sentinel redis-tools (Debian/Ubuntu), brew install redis (macOS), or set SHARDIS_REDIS_SERVER to its path.';

/** The redis-server binary could not be spawned because it does not exist (ENOENT). */
export class RedisServerNotFoundError extends Error {
  readonly code = 'ERR_REDIS_SERVER_NOT_FOUND';
  /** The path or command name that was tried. */
  readonly redisServerPath: string;

  constructor(redisServerPath: string) {
    const tried = redisServerPath === 'redis-server' ? '' : ` (tried "${redisServerPath}")`;
    super(`${REDIS_SERVER_INSTALL_HINT}${tried}`);
    this.name = 'RedisServerNotFoundError';
    this.redisServerPath = redisServerPath;
  }
}

export const REDIS_SENTINEL_INSTALL_HINT =
  'redis-sentinel was not found on PATH. Install it: sudo apt-get install -y redis-sentinel redis-server redis-tools (Debian/Ubuntu), brew install redis (macOS, which ships redis-sentinel), or set SHARDIS_REDIS_SENTINEL to its path.';

/** The redis-sentinel binary could not be spawned because it does not exist (ENOENT). */
export class RedisSentinelNotFoundError extends Error {
  readonly code = 'ERR_REDIS_SENTINEL_NOT_FOUND';
  /** The path or command name that was tried. */
  readonly redisSentinelPath: string;

  constructor(redisSentinelPath: string) {
    const tried = redisSentinelPath === 'redis-sentinel' ? '' : ` (tried "${redisSentinelPath}")`;
    super(`${REDIS_SENTINEL_INSTALL_HINT}${tried}`);
    this.name = 'RedisSentinelNotFoundError';
    this.redisSentinelPath = redisSentinelPath;
  }
}
