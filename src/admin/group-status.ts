// One group as status() reports it: keys and memory of its master, where the
// master is (for a Sentinel-named group, as its sentinels say now), and each
// replica's link and lag from `INFO replication` on the master and on it.
// Short-lived connections, one attempt each; nothing here throws for a server
// that is down: it is reported.
import { GroupUnavailableError } from "../errors.js";
import type { ClusterTable } from "../topology/format.js";
import { askSentinels, connectedPeer, formatHostPort, oneShotSentinelConnection, sentinelAskOptions, type HostPort } from "../topology/master-address.js";
import { parseSentinelReplicas } from "../topology/sentinel-replicas.js";
import { parseAddress, type GroupSpec } from "../topology/table.js";
import { serverStats, withMaster, type ProbeOptions } from "./group-probe.js";
import { groupOutline, parseReplicationInfo, replicaStatus, type GroupStatus, type ReplicationInfo } from "./status.js";

export async function probeGroupStatus(table: ClusterTable, group: GroupSpec, probe: ProbeOptions): Promise<GroupStatus> {
  const outline = groupOutline(table, group);
  let master: { keys: number; usedMemory: number | null; replication: ReplicationInfo; address: string | null } | null = null;
  let error: string | undefined;
  try {
    master = await withMaster(
      group,
      probe,
      async (redis) => {
        const [stats, info] = await Promise.all([serverStats(redis), redis.info("replication")]);
        const peer = connectedPeer(redis);
        return { ...stats, replication: parseReplicationInfo(info), address: peer === null ? null : formatHostPort(peer) };
      },
      table.sentinels,
    );
  } catch (failure) {
    error = reasonOf(failure);
  }

  let masterAddress: string | null = group.sentinel === undefined ? group.master : (master?.address ?? null);
  let replicaAddresses: readonly string[] = group.replicas ?? [];
  if (group.sentinel !== undefined) {
    const sentinels = (table.sentinels ?? []).map((s, i) => parseAddress(s, `sentinels[${i}]`));
    const options = { ...sentinelAskOptions(probe.redisOptions), timeoutMs: probe.timeoutMs };
    if (masterAddress === null) masterAddress = await askSentinels(sentinels, group.sentinel.name, options).then(formatHostPort, () => null);
    const known = await sentinelReplicas(sentinels, group.sentinel.name, probe);
    replicaAddresses = known ?? master?.replication.replicas.map((r) => r.address) ?? [];
    // After a failover the sentinels may still list the new master among the replicas.
    replicaAddresses = replicaAddresses.filter((a) => a !== masterAddress);
  }

  const replicas = await Promise.all(
    replicaAddresses.map(async (address) => {
      const info = await withMaster({ id: group.id, master: address }, probe, async (redis) => parseReplicationInfo(await redis.info("replication"))).catch(
        (failure: unknown) => ({ error: reasonOf(failure) }),
      );
      return replicaStatus(address, info, master?.replication ?? null);
    }),
  );
  const stats = master === null ? { keys: null, usedMemory: null } : { keys: master.keys, usedMemory: master.usedMemory };
  return { ...outline, masterAddress, ...stats, replicas, ...(error === undefined ? {} : { error }) };
}

/** The replicas the first sentinel that answers knows for `name` (SENTINEL REPLICAS), or null when none answers. */
async function sentinelReplicas(sentinels: readonly HostPort[], name: string, probe: ProbeOptions): Promise<string[] | null> {
  const ask = sentinelAskOptions(probe.redisOptions);
  for (const sentinel of sentinels) {
    const redis = oneShotSentinelConnection(sentinel, ask, probe.timeoutMs);
    try {
      await redis.connect();
      const reply = await redis.call("SENTINEL", "REPLICAS", name);
      if (!Array.isArray(reply)) continue;
      return parseSentinelReplicas(reply).map((replica) => replica.address);
    } catch {
      // The next sentinel, then the master's own list.
    } finally {
      redis.disconnect();
    }
  }
  return null;
}

function reasonOf(failure: unknown): string {
  return failure instanceof GroupUnavailableError ? failure.reason : failure instanceof Error ? failure.message : String(failure);
}
