// Before keys move, the receiving group must hold no key of the moving slots
// (DESIGN §5): a stray key there would be taken for the newer copy and win
// over the one moved in. Refuse naming some, or (clearTarget) delete them.
import type { Redis } from "ioredis";
import { TargetNotEmptyError } from "../../errors.js";
import { findKeysInSlots } from "../group-probe.js";
import { keysInSlots } from "./slot-set.js";

/** At most this many keys are named when the target is refused. */
const KEYS_SHOWN = 10;
const SCAN_COUNT = 1000;

/** Throws a TargetNotEmptyError naming up to 10 keys of the flagged slots found on `target`. */
export async function checkTargetEmpty(target: Redis, group: number, flags: Uint8Array): Promise<void> {
  const found = await findKeysInSlots(target, flags, KEYS_SHOWN);
  if (found.length > 0) throw new TargetNotEmptyError(group, found.map(({ key, slot }) => ({ key: key.toString(), slot, group })));
}

/**
 * Deletes (UNLINK) every key of the flagged slots on `target`, in one SCAN
 * pass; answers how many. `beforeWrite` is awaited before each UNLINK: a
 * migrator paused here must not delete keys another one has moved in since.
 */
export async function clearTarget(target: Redis, flags: Uint8Array, beforeWrite: () => Promise<void>): Promise<number> {
  let cleared = 0;
  let cursor = "0";
  do {
    const [next, keys] = await target.scanBuffer(cursor, "COUNT", SCAN_COUNT);
    const doomed = keysInSlots(keys, flags);
    if (doomed.length > 0) {
      await beforeWrite();
      cleared += await target.unlink(...doomed);
    }
    cursor = String(next);
  } while (cursor !== "0");
  return cleared;
}
