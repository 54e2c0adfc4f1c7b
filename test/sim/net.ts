// The simulated network: every connection is a FIFO link (TCP keeps order
// within a connection) that delivers its head only when a scheduler step
// picks it. Any link may stall for a while (a slow or partitioned path), so
// messages on different links overtake one another without bound.

export class Link<T> {
  readonly queue: T[] = [];
  /** The link delivers nothing before this time (a stall). */
  stalledUntil = 0;

  constructor(readonly name: string) {}

  push(message: T): void {
    this.queue.push(message);
  }

  /** True when a step may deliver the head now. */
  ready(now: number): boolean {
    return this.queue.length > 0 && now >= this.stalledUntil;
  }

  shift(): T {
    const head = this.queue.shift();
    if (head === undefined) throw new Error(`nothing to deliver on ${this.name}`);
    return head;
  }
}
