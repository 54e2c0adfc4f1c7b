// Moved keys are on a replica of the target before the source's copies go.
// Replication is asynchronous: a target master that fails over right after
// MIGRATE returned can lose the keys MIGRATE had just deleted from the
// source, acknowledged writes among them. So, when the target has replicas,
// keys move with MIGRATE ... COPY, then this link confirms them, then the
// source's copies are deleted.
//
// The source ran the RESTOREs over a connection of its own, so WAIT is not
// ours to call there. On our own connection to the same target master, a
// PUBLISH (replicated, it moves this connection's replication offset past
// the RESTOREs) and then WAIT n do it. That connection must have been up
// before the MIGRATE and still be the same one after the WAIT: then it
// reached the very server the keys went to (a promoted replica, or a
// restarted process, would be another connection).
import IORedis, { type Redis, type RedisOptions } from "ioredis";
import createDebug from "debug";
import { closeQuietly } from "../../coordinator/connection.js";
import type { HostPort } from "../../topology/master-address.js";
import { existsEach } from "../group-probe.js";
import { ReplicaWaitError } from "./retry.js";

const debug = createDebug("shardis:migrator");

/** What the confirming PUBLISH goes to (nobody needs to listen). */
export const CONFIRM_CHANNEL = "shardis:migrate-confirm";

export interface TargetLinkOptions {
  /** Credentials, TLS, db: as for the other group connections. */
  readonly redisOptions: RedisOptions;
  readonly connectTimeoutMs: number;
  /** WAIT's own timeout, in ms. */
  readonly waitMs: number;
  /** The connection's name. */
  readonly name: string;
  /** The target group, for messages. */
  readonly group: number;
}

/** A MIGRATE's hold on its target, taken before the MIGRATE. */
export interface TargetHold {
  /** Which of `keys` the target has already (EXISTS): their copies there are the newer ones. */
  has(keys: readonly Buffer[]): Promise<boolean[]>;
  /** Resolves once `replicas` replicas of the target have everything written to it so far; a ReplicaWaitError (transient) otherwise. */
  confirm(replicas: number): Promise<void>;
}

/** The migrator's connection to the target master, to confirm moved keys. One at a time; a new one when the target's address changes or the link dropped. */
export class TargetLink {
  private redis: Redis | null = null;
  private address = "";

  constructor(private readonly options: TargetLinkOptions) {}

  /** A connection to `target` that is up now: take it before the MIGRATE to `target` that confirm() is for. */
  async hold(target: HostPort): Promise<TargetHold> {
    const redis = await this.connectionTo(target);
    const stream = redis.stream;
    const same = () => redis.status === "ready" && redis.stream === stream;
    const where = `group ${this.options.group}'s master ${target.host}:${target.port}`;
    return {
      has: (keys) => existsEach(redis, keys),
      confirm: async (replicas) => {
        if (!same()) throw new ReplicaWaitError(`the connection to ${where} dropped after MIGRATE; the keys are moved again`);
        let replies: [Error | null, unknown][];
        try {
          replies = (await redis.pipeline().publish(CONFIRM_CHANNEL, "").call("WAIT", String(replicas), String(this.options.waitMs)).exec()) ?? [];
        } catch (error) {
          // The link dropped (the target died, or was demoted and its clients killed): another try, with the keys moved again.
          throw new ReplicaWaitError(`${where}: ${(error as Error).message}`, { cause: error });
        }
        const [waitError, acked] = replies[1] ?? [new Error("no reply to WAIT"), null];
        if (waitError) {
          // A replica now (WAIT is refused there), or a dropped link: another try.
          if (/replica|Connection is closed|aborted|timed? ?out/i.test(waitError.message)) throw new ReplicaWaitError(`${where}: ${waitError.message}`, { cause: waitError });
          throw waitError;
        }
        if (!same()) throw new ReplicaWaitError(`the connection to ${where} dropped while waiting for its replicas; the keys are moved again`);
        if (Number(acked) < replicas) {
          throw new ReplicaWaitError(
            `${where}: WAIT answered ${Number(acked)} of ${replicas} replicas within ${this.options.waitMs} ms after MIGRATE ... COPY; ` +
              `the keys stay on the source until a replica has them. Is a replica of group ${this.options.group} up? (the waitReplicas: 0 option, or --wait-replicas 0 on the command line, moves without waiting)`,
          );
        }
      },
    };
  }

  async close(): Promise<void> {
    const redis = this.redis;
    this.redis = null;
    if (redis !== null) await closeQuietly(redis);
  }

  private async connectionTo(target: HostPort): Promise<Redis> {
    const address = `${target.host}:${target.port}`;
    if (this.redis !== null && this.address === address && this.redis.status === "ready") return this.redis;
    await this.close();
    // A fixed address, never Sentinel mode, and no reconnect: a dropped link is a new connection (see confirm()).
    const { sentinels: _sentinels, name: _name, role: _role, path: _path, ...rest } = this.options.redisOptions;
    const redis = new IORedis({
      ...rest,
      host: target.host,
      port: target.port,
      keyPrefix: undefined,
      lazyConnect: true,
      enableOfflineQueue: false,
      retryStrategy: () => null,
      maxRetriesPerRequest: 0,
      connectTimeout: this.options.connectTimeoutMs,
      commandTimeout: this.options.waitMs + this.options.connectTimeoutMs,
      enableAutoPipelining: false,
      autoResendUnfulfilledCommands: false,
      connectionName: this.options.name,
    });
    redis.on("error", (error: Error) => debug("group %d (%s), confirming link: %s", this.options.group, address, error.message));
    try {
      await redis.connect();
    } catch (error) {
      redis.disconnect();
      throw error;
    }
    this.redis = redis;
    this.address = address;
    return redis;
  }
}
