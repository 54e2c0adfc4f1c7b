export { ShardedRedis, type ShardedRedisEvents, type GroupHandle } from "./client/sharded-redis.js";
export type { ShardedRedisOptions, StaticTableOptions, CoordinatorOptions, FromGroupsOptions, RoutingOptions } from "./client/options.js";
export type { PipelineResult } from "./client/pipeline.js";
export { ShardedScanStream } from "./client/scan-stream.js";
export { slotOf, crc32, SLOT_COUNT } from "./slot.js";
export {
  validateTable,
  evenSlotRanges,
  type GroupSpec,
  type MasterGroupSpec,
  type SentinelGroupSpec,
  type SlotRange,
  type SlotTable,
  type SlotTableInput,
  type Migration,
  type MigrationState,
} from "./topology/table.js";
export { TABLE_FORMAT, parseTableJson, tableToJson, type ClusterTable } from "./topology/format.js";
export type { TopologySource } from "./topology/source.js";
export type { CoordinatorLocation } from "./coordinator/connection.js";
export type { StaleTopologyPolicy } from "./client/lease-gate.js";
export { jitteredRetryStrategy, type BackoffOptions } from "./backoff.js";
export type { ReadFrom, ReadFromFunction, ReadFromGroup } from "./client/read-from.js";
export type { ReplicaStatus } from "./client/replica-reads.js";
export {
  ShardisError,
  TopologyError,
  CrossSlotError,
  GroupUnavailableError,
  PartialFailureError,
  CommandNotAllowedError,
  UnknownCommandError,
  ArgumentError,
  StaleTopologyError,
  VersionConflictError,
  CoordinatorUnavailableError,
  ClusterExistsError,
  SlotsNotEmptyError,
  MigrationLockedError,
  MigrationInProgressError,
  TargetNotEmptyError,
  AckTimeoutError,
  MigrationStoppedError,
  MigrationStateError,
  CommandTimeoutError,
  GroupQueueFullError,
  type GroupOutcome,
  type LockHolder,
  type SlotKey,
} from "./errors.js";
