// What the application saw, and the invariant checked against the servers at
// the end of every run: no acknowledged write is lost, nothing is applied
// twice, and no key of a slot is left on a group that does not own it.
import { keysOfSlot, SLOTS, GROUPS, type Op, type Table } from './model.js';
import type { Server } from './server.js';

export class Ledger {
  private readonly attempted = new Map<string, number>();
  private readonly acked = new Map<string, number>();
  private readonly attemptedItems = new Set<string>();
  private readonly ackedItems = new Map<string, string[]>();
  issued = 0;
  succeeded = 0;
  failed = 0;

  /** The application called the command (whatever happens next). */
  issue(op: Op): void {
    this.issued++;
    for (const w of op.writes) {
      if (w.kind === 'incr') this.attempted.set(w.key, (this.attempted.get(w.key) ?? 0) + 1);
      else this.attemptedItems.add(w.item);
    }
  }

  /** Its reply reached the application: OK. */
  ack(op: Op): void {
    this.succeeded++;
    for (const w of op.writes) {
      if (w.kind === 'incr') this.acked.set(w.key, (this.acked.get(w.key) ?? 0) + 1);
      else this.ackedItems.set(w.key, [...(this.ackedItems.get(w.key) ?? []), w.item]);
    }
  }

  /** It failed (connection killed, or it waited too long for a lease or in preparing): maybe applied, maybe not. */
  fail(): void {
    this.failed++;
  }

  /**
   * The moment a write is lost, for traces: an acknowledged increment or item
   * is on no server any more (during a move a key may be on either side, or both).
   */
  firstLoss(servers: Readonly<Record<string, Server>>): string | null {
    for (const [key, acked] of this.acked) {
      const best = Math.max(...GROUPS.map((g) => servers[g]!.data.get(key)).map((v) => (typeof v === 'number' ? v : 0)));
      if (best < acked) return `counter ${key}: ${acked} increments acknowledged, the most any server holds is ${best}`;
    }
    for (const [key, items] of this.ackedItems) {
      const held = new Set(GROUPS.flatMap((g) => (servers[g]!.data.get(key) as string[] | undefined) ?? []));
      const lost = items.filter((i) => !held.has(i));
      if (lost.length > 0) return `list ${key}: acknowledged ${lost.join(' ')} on no server`;
    }
    return null;
  }

  /** Violations of the invariant, given the final table and the servers' contents. */
  check(table: Table, servers: Readonly<Record<string, Server>>): string[] {
    const problems: string[] = [];
    if (table.migration !== null) problems.push(`the run ended with a migration in progress: ${JSON.stringify(table.migration)}`);
    for (const slot of SLOTS) {
      const owner = table.owner[slot]!;
      for (const key of keysOfSlot(slot)) {
        for (const g of GROUPS) {
          if (g !== owner && servers[g]!.data.has(key)) {
            problems.push(`key ${key} of slot ${slot} is on group ${g}, which does not own it (owner ${owner}): ${JSON.stringify(servers[g]!.data.get(key))}`);
          }
        }
        const value = servers[owner]!.data.get(key);
        if (key.startsWith('l')) problems.push(...this.checkList(key, value));
        else problems.push(...this.checkCounter(key, value));
      }
    }
    return problems;
  }

  private checkCounter(key: string, value: unknown): string[] {
    const n = value === undefined ? 0 : value;
    const acked = this.acked.get(key) ?? 0;
    const attempted = this.attempted.get(key) ?? 0;
    if (typeof n !== 'number') return [`counter ${key} holds ${JSON.stringify(n)}`];
    if (n < acked) return [`counter ${key} = ${n}, but ${acked} increments were acknowledged (lost writes)`];
    if (n > attempted) return [`counter ${key} = ${n}, but only ${attempted} increments were attempted (a write applied twice)`];
    return [];
  }

  private checkList(key: string, value: unknown): string[] {
    const items = value === undefined ? [] : value;
    if (!Array.isArray(items)) return [`list ${key} holds ${JSON.stringify(items)}`];
    const problems: string[] = [];
    const present = new Set<string>(items as string[]);
    const lost = (this.ackedItems.get(key) ?? []).filter((item) => !present.has(item));
    if (lost.length > 0) problems.push(`list ${key} lacks acknowledged items ${lost.join(' ')} (lost writes)`);
    if (present.size !== items.length) problems.push(`list ${key} holds an item twice: ${items.join(' ')}`);
    const unknown = [...present].filter((item) => !this.attemptedItems.has(item));
    if (unknown.length > 0) problems.push(`list ${key} holds items never pushed: ${unknown.join(' ')}`);
    return problems;
  }
}
