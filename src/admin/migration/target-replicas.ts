// How many replicas of the target must have moved keys before the source's
// copies are deleted (waitReplicas). "auto": one when the group is meant to
// have replicas — listed in the table, known to its Sentinels (down ones
// too: right after a failover the only replica is the old master, still
// down), or connected to its master now — else none (a plain MIGRATE, as a
// group without replicas has nothing to wait for).
import type { Redis } from "ioredis";
import createDebug from "debug";
import type { GroupSpec } from "../../topology/table.js";
import { oneShotSentinelConnection, sentinelAskOptions, type HostPort } from "../../topology/master-address.js";
import { parseAddress } from "../../topology/table.js";
import { withMaster, type ProbeOptions } from "../group-probe.js";

const debug = createDebug("shardis:migrator");

/** The replicas to wait for: `setting` when a number, else one if the group has a replica. */
export async function replicasToWait(setting: number | "auto", group: GroupSpec, sentinels: readonly string[] | undefined, probe: ProbeOptions): Promise<number> {
  if (setting !== "auto") return setting;
  if (group.sentinel === undefined && (group.replicas?.length ?? 0) > 0) return 1;
  if (group.sentinel !== undefined) {
    const known = await sentinelReplicaCount(group.sentinel.name, sentinels ?? [], probe);
    if (known !== null) return Math.min(1, known);
  }
  const connected = await withMaster(group, probe, connectedReplicas, sentinels);
  return Math.min(1, connected);
}

/** Replicas connected to the master `redis` is connected to (ROLE). */
export async function connectedReplicas(redis: Redis): Promise<number> {
  const role = (await redis.call("ROLE")) as unknown;
  return Array.isArray(role) && role[0] === "master" && Array.isArray(role[2]) ? role[2].length : 0;
}

/** How many replicas the first sentinel that answers knows for `name` (SENTINEL REPLICAS), or null when none answers. */
async function sentinelReplicaCount(name: string, sentinels: readonly string[], probe: ProbeOptions): Promise<number | null> {
  const options = sentinelAskOptions(probe.redisOptions);
  for (const [i, text] of sentinels.entries()) {
    const sentinel: HostPort = parseAddress(text, `sentinels[${i}]`);
    const redis = oneShotSentinelConnection(sentinel, options, probe.timeoutMs);
    try {
      await redis.connect();
      const replicas = (await redis.call("SENTINEL", "REPLICAS", name)) as unknown;
      if (Array.isArray(replicas)) return replicas.length;
    } catch (error) {
      debug("sentinel %s: SENTINEL REPLICAS %s: %s", text, name, (error as Error).message);
    } finally {
      redis.disconnect();
    }
  }
  return null;
}
