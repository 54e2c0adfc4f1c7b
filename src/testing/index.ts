// Public entry point of `shardis/testing`: throwaway real redis-server
// processes for tests. Stands alone: imports nothing from the rest of src/.
export { RedisServer, startRedisServers, stopAllRedisServers, type RedisServerOptions } from './server.js';
export { RedisServerNotFoundError, RedisSentinelNotFoundError } from './errors.js';
export {
  RedisSentinel,
  startSentinels,
  startReplica,
  type RedisSentinelOptions,
  type SentinelMonitor,
  type SentinelSet,
  type SentinelSetOptions,
  type SentinelGroupServers,
} from './sentinel.js';
export { keygen } from './keygen.js';
export { findFreePort } from './ports.js';
