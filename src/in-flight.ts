import type { Command, Redis } from "ioredis";

/**
 * With `autoResendUnfulfilledCommands: false`, ioredis silently drops the
 * commands that were in flight when a connection closed: their promises never
 * settle. This fails them with `error()` instead, when the connection closes.
 */
export function failInFlightOnClose(redis: Redis, error: () => Error): void {
  // ioredis emits "close" on the next tick, after moving them to prevCommandQueue (internal).
  redis.on("close", () => {
    const internals = redis as unknown as { prevCommandQueue?: { shift(): { command: Command } | undefined } | null };
    const queue = internals.prevCommandQueue;
    if (!queue) return;
    internals.prevCommandQueue = null;
    let item;
    while ((item = queue.shift())) item.command.reject(error());
  });
}
