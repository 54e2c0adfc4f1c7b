import type { SlotTable } from "./table.js";

/**
 * Where a client's slot table comes from. The router only ever reads
 * `current()` and listens for replacements, so a static table and (later) the
 * coordinator feed it the same way.
 */
export interface TopologySource {
  /** The table to route by now. */
  current(): SlotTable;
  /** Calls `listener` with every new table; returns a function that stops it. */
  subscribe(listener: (table: SlotTable) => void): () => void;
  /** Releases whatever the source holds (timers, connections). */
  close(): Promise<void>;
}

/** A table given once in options; it never changes. */
export class StaticTopology implements TopologySource {
  constructor(private readonly table: SlotTable) {}

  current(): SlotTable {
    return this.table;
  }

  subscribe(): () => void {
    return () => {};
  }

  async close(): Promise<void> {}
}
