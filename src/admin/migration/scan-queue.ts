// The keys found by SCAN and not yet moved, with the cursor to save: a
// migrator that dies resumes from a cursor at which every key not yet moved
// can still be found (keys may be seen twice; moving a key twice is harmless,
// MIGRATE answers NOKEY). No I/O.

interface Chunk {
  /** The cursor SCAN was called with to find these keys. */
  readonly before: string;
  readonly keys: Buffer[];
}

export class ScanQueue {
  private readonly chunks: Chunk[] = [];
  private next: string;
  private ended = false;
  private queued = 0;

  /** `cursor`: where the pass starts ("0": from the beginning, or a saved cursor). */
  constructor(cursor: string) {
    this.next = cursor;
  }

  /** The cursor to call SCAN with next. */
  get nextCursor(): string {
    return this.next;
  }

  /** SCAN came back to cursor 0: the pass has found everything it will. */
  get scanEnded(): boolean {
    return this.ended;
  }

  /** The pass ended and every key found was taken. */
  get done(): boolean {
    return this.ended && this.queued === 0;
  }

  /** Keys found and not yet taken. */
  get length(): number {
    return this.queued;
  }

  /**
   * The cursor from which every key not yet taken can be found again: the
   * one that found the oldest chunk still queued, else the next one to call
   * ("0" once the pass ended with nothing queued).
   */
  get resumeCursor(): string {
    return this.chunks[0]?.before ?? (this.ended ? "0" : this.next);
  }

  /** What one SCAN call answered: the cursor it was called with, the next cursor, and the keys kept. */
  push(before: string, next: string, keys: readonly Buffer[]): void {
    if (this.ended) throw new Error("the SCAN pass has ended; start a new queue for a new pass");
    if (before !== this.next) throw new Error(`SCAN answered for cursor ${before}, but the queue is at ${this.next}`);
    if (keys.length > 0) {
      this.chunks.push({ before, keys: [...keys] });
      this.queued += keys.length;
    }
    this.next = next;
    if (next === "0") this.ended = true;
  }

  /** Up to `count` keys from the front, removed from the queue. */
  take(count: number): Buffer[] {
    const taken: Buffer[] = [];
    while (taken.length < count && this.chunks.length > 0) {
      const chunk = this.chunks[0]!;
      const part = chunk.keys.splice(0, count - taken.length);
      taken.push(...part);
      if (chunk.keys.length === 0) this.chunks.shift();
    }
    this.queued -= taken.length;
    return taken;
  }
}
