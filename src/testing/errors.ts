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
