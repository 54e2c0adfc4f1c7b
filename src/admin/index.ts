// Public entry point of `shardis/admin`: reading and changing a cluster's slot
// table in the coordinator, rebalance planning, and live slot migration (the
// migrator). Never loaded by the client (`shardis`), and loads nothing of it.
export {
  ShardisAdmin,
  type ShardisAdminOptions,
  type InitClusterOptions,
  type AssignSlotsOptions,
  type SlotSpan,
} from "./admin.js";
export type {
  MigrateOptions,
  MigrationRunOptions,
  RebalanceRunOptions,
  MigrationProgress,
  MigrationReport,
} from "./migration/options.js";
export type { MigrationJob, MigrationPhase } from "./migration/job.js";
export { planRebalance, targetCounts, type RebalanceOptions, type RebalancePlan, type SlotMove } from "./rebalance.js";
export { CLIENT_EXPIRY_GRACE_MS, type ClientStatus } from "./registry.js";
export type { ClusterStatus, GroupReplicaStatus, GroupStatus } from "./status.js";
export type { CoordinatorLocation } from "../coordinator/connection.js";
export { TABLE_FORMAT, parseTableJson, tableToJson, type ClusterTable } from "../topology/format.js";
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
} from "../topology/table.js";
export {
  ShardisError,
  TopologyError,
  ArgumentError,
  VersionConflictError,
  ClusterExistsError,
  SlotsNotEmptyError,
  GroupUnavailableError,
  MigrationLockedError,
  MigrationInProgressError,
  TargetNotEmptyError,
  AckTimeoutError,
  MigrationStoppedError,
  MigrationStateError,
  type SlotKey,
  type LockHolder,
} from "../errors.js";
