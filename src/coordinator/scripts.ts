import { createHash } from "node:crypto";
import type { Redis } from "ioredis";
import type { CoordinatorKeys } from "./keys.js";

/**
 * A Lua script run with EVALSHA, falling back to EVAL once when the server
 * does not know it yet. Kept off the caller's connection object (no
 * defineCommand), since that connection may be the user's own.
 */
export class LuaScript {
  readonly sha: string;

  constructor(readonly source: string) {
    this.sha = createHash("sha1").update(source).digest("hex");
  }

  async run(redis: Redis, keys: readonly (string | Buffer)[], args: readonly (string | number)[]): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith("NOSCRIPT")) throw error;
      return redis.eval(this.source, keys.length, ...keys, ...args);
    }
  }
}

// The table's version without decoding the whole JSON on every call: shardis
// writes "version" as the first key of that name, and cluster names and
// numbers cannot contain it. Readers cross-check it against the parsed table.
const READ_VERSION = `
local function table_version(raw)
  if not raw then return 0 end
  local version = tonumber(string.match(raw, '"version"%s*:%s*(%d+)'))
  if not version or version < 1 then return -1 end
  return version
end
`;

/**
 * Confirm (DESIGN §4): stamps the client's registry entry with its applied
 * version and the coordinator's clock, and answers the current version, with
 * the table when it is newer than the one the client knows — in one step, so
 * no client can hold a table the registry does not know about.
 *
 * KEYS: table, clients, acks. ARGV: clientId, applied, known, host, pid, name, leaseMs.
 * Returns [version (0: no table, -1: unreadable), coordinator ms, table JSON or nil].
 */
export const CONFIRM = new LuaScript(`${READ_VERSION}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local applied = tonumber(ARGV[2])
local previous = redis.call('HGET', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], cjson.encode({version = applied, at = now, host = ARGV[4], pid = tonumber(ARGV[5]), name = ARGV[6], leaseMs = tonumber(ARGV[7])}))
local changed = true
if previous then
  local ok, entry = pcall(cjson.decode, previous)
  changed = not ok or type(entry) ~= 'table' or entry.version ~= applied
end
if changed then redis.call('PUBLISH', KEYS[3], ARGV[1] .. ' ' .. ARGV[2]) end
local raw = redis.call('GET', KEYS[1])
local version = table_version(raw)
if version ~= 0 and (version < 0 or version > tonumber(ARGV[3])) then return {version, now, raw} end
return {version, now, false}
`);

// The compare-and-set of the table on its version (KEYS[1], ARGV[1]: the
// version expected), then SET of ARGV[2] and PUBLISH on KEYS[2] of the new
// version ARGV[3] followed by the table itself ("<version> <json>"), so that
// subscribers can apply it without reading it back.
const CHECK_VERSION = `
local current = table_version(redis.call('GET', KEYS[1]))
if current ~= tonumber(ARGV[1]) then
  return redis.error_reply('VERSIONCONFLICT the table is at version ' .. current .. ', not ' .. ARGV[1])
end
`;
const SET_AND_PUBLISH = `
redis.call('SET', KEYS[1], ARGV[2])
redis.call('PUBLISH', KEYS[2], ARGV[3] .. ' ' .. ARGV[2])
return current
`;

/**
 * Compare-and-set of the table on its version, then PUBLISH of the new version and table.
 * KEYS: table, events. ARGV: expected version (0: no table yet, -1: unreadable), JSON, new version.
 * Returns the version replaced; a VERSIONCONFLICT error when the table is not at the expected version.
 */
export const WRITE_TABLE = new LuaScript(`${READ_VERSION}${CHECK_VERSION}${SET_AND_PUBLISH}`);

/**
 * WRITE_TABLE for the migrator: only while the migration lock holds the
 * caller's value, and saving the migration job (or deleting it) in the same
 * step, so a job never lags the table it drives and a migrator that lost its
 * lock cannot write the table at all.
 * KEYS: table, events, lock, migration. ARGV: as WRITE_TABLE, then lock value, job JSON ("" deletes the job).
 * Errors: NOTLOCKED when the lock is not the caller's, VERSIONCONFLICT as WRITE_TABLE.
 */
export const WRITE_TABLE_AND_JOB = new LuaScript(`${READ_VERSION}
if redis.call('GET', KEYS[3]) ~= ARGV[4] then
  return redis.error_reply('NOTLOCKED the migration lock is not held by this migrator')
end${CHECK_VERSION}
if ARGV[5] == '' then redis.call('DEL', KEYS[4]) else redis.call('SET', KEYS[4], ARGV[5]) end${SET_AND_PUBLISH}`);

/**
 * Removes a client's registry entry (on quit), and announces it on the acks channel.
 * KEYS: clients, acks. ARGV: clientId.
 */
export const DEREGISTER = new LuaScript(`
if redis.call('HDEL', KEYS[1], ARGV[1]) == 1 then redis.call('PUBLISH', KEYS[2], ARGV[1] .. ' gone') end
return 1
`);

/** A client's registry entry as the confirm script writes it. */
export interface ClientEntry {
  /** The table version the client has applied (and drained). */
  readonly version: number;
  /** Coordinator time (ms) of its last confirmation. */
  readonly at: number;
  readonly host: string;
  readonly pid: number;
  /** Its connection name on every group: `shardis:<clientId>`. */
  readonly name: string;
  readonly leaseMs: number;
}

export interface Confirmation {
  /** The table version in the coordinator: 0 when there is none, -1 when it is unreadable. */
  readonly version: number;
  /** Coordinator time (ms) of the confirmation. */
  readonly at: number;
  /** The table JSON, when newer than the version the client said it knows (or unreadable). */
  readonly tableJson: string | null;
}

export interface ConfirmArgs {
  readonly clientId: string;
  readonly applied: number;
  readonly known: number;
  readonly host: string;
  readonly pid: number;
  readonly name: string;
  readonly leaseMs: number;
}

export async function confirm(redis: Redis, keys: CoordinatorKeys, args: ConfirmArgs): Promise<Confirmation> {
  const reply = (await CONFIRM.run(
    redis,
    [keys.table, keys.clients, keys.acks],
    [args.clientId, args.applied, args.known, args.host, args.pid, args.name, args.leaseMs],
  )) as [number, number, string | Buffer | null];
  const [version, at, json] = reply;
  return { version: Number(version), at: Number(at), tableJson: json === null || json === undefined ? null : String(json) };
}

/** Parses a registry entry, or null when it is not one. */
export function parseClientEntry(text: string): ClientEntry | null {
  try {
    const entry = JSON.parse(text) as Partial<ClientEntry> | null;
    if (entry === null || typeof entry !== "object") return null;
    if (typeof entry.version !== "number" || typeof entry.at !== "number" || typeof entry.leaseMs !== "number") return null;
    return {
      version: entry.version,
      at: entry.at,
      host: String(entry.host ?? ""),
      pid: Number(entry.pid ?? 0),
      name: String(entry.name ?? ""),
      leaseMs: entry.leaseMs,
    };
  } catch {
    return null;
  }
}
