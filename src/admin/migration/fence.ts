// Fencing (DESIGN §5): before keys move, the connections on the source of
// every client that was waited out (its lease ran out instead of acking) are
// killed, so nothing it sent earlier and the source has not read yet can land
// after the move. Which clients: fenceSet (pure). Redis 7.0 has no CLIENT KILL by name: CLIENT LIST, then
// CLIENT KILL ID for each connection named `shardis:<clientId>`.
import type { Redis } from "ioredis";
import type { AckStatus } from "./acks.js";

/** The connection name a client gives its group connections. */
export function connectionName(clientId: string): string {
  return `shardis:${clientId}`;
}

/** The ids of the connections in CLIENT LIST's text whose name is one of `names`. */
export function connectionIdsNamed(clientList: string, names: ReadonlySet<string>): string[] {
  const ids: string[] = [];
  for (const line of clientList.split("\n")) {
    let id: string | undefined;
    let name: string | undefined;
    for (const field of line.trim().split(" ")) {
      if (field.startsWith("id=")) id = field.slice(3);
      else if (field.startsWith("name=")) name = field.slice(5);
    }
    if (id !== undefined && /^\d+$/.test(id) && name !== undefined && names.has(name)) ids.push(id);
  }
  return ids;
}

/** Kills on `redis`'s server every connection of the given clients; answers how many were killed. */
export async function killConnectionsOf(redis: Redis, clientIds: readonly string[]): Promise<number> {
  if (clientIds.length === 0) return 0;
  const list = String(await redis.call("CLIENT", "LIST", "TYPE", "normal"));
  const ids = connectionIdsNamed(list, new Set(clientIds.map(connectionName)));
  if (ids.length === 0) return 0;
  const pipeline = redis.pipeline();
  for (const id of ids) pipeline.call("CLIENT", "KILL", "ID", id);
  const replies = (await pipeline.exec()) ?? [];
  let killed = 0;
  for (const [error, reply] of replies) {
    // "No such client" when it went away meanwhile: nothing left to fence.
    if (error && !/no such client/i.test(error.message)) throw error;
    if (!error) killed += Number(reply);
  }
  return killed;
}

/**
 * The clients to fence before keys move: every client waited out (its lease
 * ran out) in the pending or preparing wait, and every client the pending
 * wait saw that is gone from the registry since (status() removes long
 * expired entries; one that quit has no connection left to kill) — except
 * those that acked preparing (they drained first).
 */
export function fenceSet(pendingWaitedOut: readonly string[], pendingIds: readonly string[], preparing: AckStatus): string[] {
  const acked = new Set(preparing.acked);
  const seen = new Set([...preparing.acked, ...preparing.waitedOut, ...preparing.waiting]);
  const vanished = pendingIds.filter((id) => !seen.has(id));
  return [...new Set([...pendingWaitedOut, ...preparing.waitedOut, ...vanished])].filter((id) => !acked.has(id)).sort();
}
