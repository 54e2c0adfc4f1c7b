export { ShardedRedis, type ShardedRedisEvents, type GroupHandle } from "./client/sharded-redis.js";
export type { ShardedRedisOptions, FromGroupsOptions, RoutingOptions } from "./client/options.js";
export type { PipelineResult } from "./client/pipeline.js";
export { ShardedScanStream } from "./client/scan-stream.js";
export { slotOf, crc32, SLOT_COUNT } from "./slot.js";
export { validateTable, evenSlotRanges, type GroupSpec, type SlotRange, type SlotTable, type SlotTableInput } from "./topology/table.js";
export type { TopologySource } from "./topology/source.js";
export {
  ShardisError,
  TopologyError,
  CrossSlotError,
  GroupUnavailableError,
  PartialFailureError,
  CommandNotAllowedError,
  UnknownCommandError,
  ArgumentError,
  type GroupOutcome,
} from "./errors.js";
