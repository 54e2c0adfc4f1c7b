// The client registry (`…:clients`) as the admin sees it: entries with their
// age on the coordinator's clock, and removal of entries whose lease ran out
// long ago — only if they are still exactly what was read.
import type { Redis } from "ioredis";
import type { CoordinatorKeys } from "../coordinator/keys.js";
import { LuaScript, parseClientEntry } from "../coordinator/scripts.js";

/** How long past its lease an entry is kept before status() removes it. */
export const CLIENT_EXPIRY_GRACE_MS = 5000;

/** One registered client, as status() reports it. */
export interface ClientStatus {
  /** The client id (the registry's hash field). */
  readonly id: string;
  /** The table version it last reported as applied. */
  readonly version: number;
  /** Coordinator ms since its last confirmation. */
  readonly ageMs: number;
  readonly leaseMs: number;
  /** Its lease ran out more than CLIENT_EXPIRY_GRACE_MS ago. */
  readonly expired: boolean;
  /** status() removed its entry (it was expired and unchanged since read). */
  readonly removed: boolean;
  readonly host: string;
  readonly pid: number;
  /** Its connection name on every group: `shardis:<clientId>`. */
  readonly name: string;
}

/** The registry read at one moment of the coordinator's clock. */
export interface RegistrySnapshot {
  /** clientId → stored entry text. */
  readonly entries: Readonly<Record<string, string>>;
  /** Coordinator time in ms. */
  readonly now: number;
}

/** Reads the registry and the coordinator's clock in one MULTI. */
export async function readRegistry(redis: Redis, keys: CoordinatorKeys): Promise<RegistrySnapshot> {
  const replies = await redis.multi().hgetall(keys.clients).time().exec();
  if (replies === null) throw new Error("the MULTI reading the client registry was aborted");
  const [[hashError, hash], [timeError, time]] = replies as [[Error | null, Record<string, string>], [Error | null, [string, string]]];
  if (hashError) throw hashError;
  if (timeError) throw timeError;
  return { entries: hash, now: Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000) };
}

/**
 * Each readable entry with its age, sorted by id; and the expired ones
 * (now > at + leaseMs + grace) with their stored text, for removal.
 * Entries that are not registry entries are left out and left alone.
 */
export function clientStatuses(snapshot: RegistrySnapshot): { clients: ClientStatus[]; expired: [id: string, entry: string][] } {
  const clients: ClientStatus[] = [];
  const expired: [string, string][] = [];
  for (const id of Object.keys(snapshot.entries).sort()) {
    const text = snapshot.entries[id]!;
    const entry = parseClientEntry(text);
    if (entry === null) continue;
    const isExpired = snapshot.now > entry.at + entry.leaseMs + CLIENT_EXPIRY_GRACE_MS;
    if (isExpired) expired.push([id, text]);
    clients.push({
      id,
      version: entry.version,
      ageMs: Math.max(0, snapshot.now - entry.at),
      leaseMs: entry.leaseMs,
      expired: isExpired,
      removed: false,
      host: entry.host,
      pid: entry.pid,
      name: entry.name,
    });
  }
  return { clients, expired };
}

/**
 * Removes each given entry only if it is still the text that was read (a
 * client that confirmed since has a new `at`, so its entry stays), and
 * announces each removal on the acks channel as DEREGISTER does.
 * KEYS: clients, acks. ARGV: id1, entry1, id2, entry2, ... Returns the ids removed.
 */
const REMOVE_UNCHANGED = new LuaScript(`
local removed = {}
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    redis.call('HDEL', KEYS[1], ARGV[i])
    redis.call('PUBLISH', KEYS[2], ARGV[i] .. ' gone')
    removed[#removed + 1] = ARGV[i]
  end
end
return removed
`);

export async function removeUnchanged(redis: Redis, keys: CoordinatorKeys, entries: readonly (readonly [string, string])[]): Promise<string[]> {
  if (entries.length === 0) return [];
  const removed = await REMOVE_UNCHANGED.run(redis, [keys.clients, keys.acks], entries.flat());
  return (removed as unknown[]).map(String);
}
