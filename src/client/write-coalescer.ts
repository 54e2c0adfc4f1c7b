import type { Writable } from "node:stream";

/**
 * Coalesces the socket writes made during one turn of the event loop into one
 * system call: the first write corks the socket and the next turn uncorks it.
 * This is what ioredis' `enableAutoPipelining` achieves, without building a
 * pipeline object per batch; commands keep their order on each connection.
 */
export class WriteCoalescer {
  private corked: Writable[] = [];
  private scheduled = false;

  /** Call before writing to `stream`; the writes stay buffered until the next turn. */
  hold(stream: Writable): void {
    // A stream corked already (by us this turn, or by its owner) needs nothing more.
    if (stream.writableCorked > 0) return;
    stream.cork();
    this.corked.push(stream);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    const streams = this.corked;
    this.corked = [];
    for (const stream of streams) stream.uncork();
  };
}
