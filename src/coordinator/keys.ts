import { ArgumentError } from "../errors.js";

/** The coordinator keys of one cluster (DESIGN §2). The braces keep them in one Redis Cluster slot. */
export interface CoordinatorKeys {
  /** String: the slot table as JSON. */
  readonly table: string;
  /** Pub/sub channel: the new version, published after every table change. */
  readonly events: string;
  /** Pub/sub channel: `<clientId> <version>`, published when a client reports a new applied version. */
  readonly acks: string;
  /** Hash: clientId → registry entry (JSON). */
  readonly clients: string;
  /** String: the migration job in progress. */
  readonly migration: string;
  /** String: the migrator's lock. */
  readonly lock: string;
}

const CLUSTER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Checks a cluster name: letters, digits, `.`, `_` and `-`, at most 64 characters. */
export function checkClusterName(cluster: unknown): string {
  if (typeof cluster !== "string" || !CLUSTER_NAME.test(cluster)) {
    throw new ArgumentError(
      `cluster must be a name of letters, digits, ".", "_" or "-" (at most 64, starting with a letter or digit), got ${JSON.stringify(cluster)}`,
    );
  }
  return cluster;
}

export function coordinatorKeys(cluster: string): CoordinatorKeys {
  const prefix = `shardis:{${checkClusterName(cluster)}}:`;
  return {
    table: `${prefix}table`,
    events: `${prefix}events`,
    acks: `${prefix}acks`,
    clients: `${prefix}clients`,
    migration: `${prefix}migration`,
    lock: `${prefix}lock`,
  };
}
