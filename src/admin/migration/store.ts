// The job under `…:migration`: read by anyone, written and deleted only by
// the lock's holder (one script compares the lock's value, then writes), so a
// migrator that lost its lock cannot overwrite the job of the one that took over.
import type { Redis } from "ioredis";
import type { CoordinatorKeys } from "../../coordinator/keys.js";
import { LuaScript } from "../../coordinator/scripts.js";
import { jobToJson, parseJob, type MigrationJob } from "./job.js";

/** KEYS: lock, migration. ARGV: lock value, job JSON ("" deletes). 1 when done, 0 when the lock is not the caller's. */
const FENCED_WRITE = new LuaScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[2]) else redis.call('SET', KEYS[2], ARGV[2]) end
return 1
`);

export async function readJob(redis: Redis, keys: CoordinatorKeys): Promise<MigrationJob | null> {
  const text = await redis.get(keys.migration);
  return text === null ? null : parseJob(text, keys.migration);
}

/** Stores `job` (or deletes the job, for null) if `lockValue` still holds the lock; false when it does not. */
export async function writeJob(redis: Redis, keys: CoordinatorKeys, lockValue: string, job: MigrationJob | null): Promise<boolean> {
  const done = await FENCED_WRITE.run(redis, [keys.lock, keys.migration], [lockValue, job === null ? "" : jobToJson(job)]);
  return Number(done) === 1;
}
