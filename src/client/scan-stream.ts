import { Readable } from "node:stream";
import type { ScanStreamOptions } from "ioredis";

/** One SCAN call on the client: cursor and options in, next cursor and keys out. */
export type ScanPage = (cursor: string, args: (string | number)[]) => Promise<[cursor: string | Buffer, keys: (string | Buffer)[]]>;

/**
 * Every key of every group, as batches (arrays), like ioredis' scanStream.
 * It walks the groups one after the other with the client's composite SCAN
 * cursor. SCAN may return a key twice while a server resizes its tables, so
 * by default keys are de-duplicated per group (memory: one group's keys).
 */
export class ShardedScanStream extends Readable {
  private cursor = "0";
  private drained = false;
  private seen = new Set<string>();
  private readonly args: (string | number)[] = [];
  private readonly dedupe: boolean;

  constructor(
    private readonly scanPage: ScanPage,
    private readonly groupCount: () => number,
    options: ScanStreamOptions & { dedupe?: boolean } = {},
  ) {
    super({ objectMode: true });
    if (options.match) this.args.push("MATCH", options.match);
    if (options.type) this.args.push("TYPE", options.type);
    if (options.count) this.args.push("COUNT", options.count);
    this.dedupe = options.dedupe !== false;
  }

  override _read(): void {
    if (this.drained) {
      this.push(null);
      return;
    }
    this.scanPage(this.cursor, this.args).then(
      ([cursor, keys]) => {
        this.cursor = String(cursor);
        this.drained = this.cursor === "0";
        const batch = this.dedupe ? keys.filter((key) => this.firstSighting(key)) : keys;
        // A cursor below the group count means the next call starts a new group.
        if (this.dedupe && BigInt(this.cursor) < BigInt(this.groupCount())) this.seen = new Set();
        this.push(batch);
      },
      (error: Error) => this.destroy(error),
    );
  }

  /** Stops after the batch in flight, as ioredis' ScanStream.close() does. */
  close(): void {
    this.drained = true;
  }

  private firstSighting(key: string | Buffer): boolean {
    const id = typeof key === "string" ? key : key.toString("latin1");
    if (this.seen.has(id)) return false;
    this.seen.add(id);
    return true;
  }
}
