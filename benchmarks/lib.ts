/** Helpers shared by the benchmark scripts. */
import { execFileSync } from "node:child_process";

/** Runs `total` operations with at most `window` in flight. */
export async function inFlight(total: number, window: number, op: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < total) await op(next++);
  };
  await Promise.all(Array.from({ length: window }, worker));
}

/** Pins a process to one CPU with taskset; false when that is not possible. */
export function pin(pid: number, cpu: number): boolean {
  try {
    execFileSync("taskset", ["-pc", String(cpu), String(pid)], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
