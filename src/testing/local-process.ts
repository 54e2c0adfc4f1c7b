import type { ChildProcess } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { log } from './log.js';
import { untrack, type TrackedServer } from './registry.js';

export const HOST = '127.0.0.1';

const STOP_GRACE_MS = 2000;

/**
 * What a redis-server and a redis-sentinel started here have in common: a
 * loopback port, the child process, its temp dir, and how they are stopped,
 * killed and restarted.
 */
export abstract class LocalProcess implements TrackedServer {
  readonly host: '127.0.0.1' = HOST;
  protected child: ChildProcess | undefined;
  protected dir: string | undefined;
  /** Settles when the current child has exited. */
  protected exited: Promise<void> = Promise.resolve();
  private stopping: Promise<void> | undefined;

  protected constructor(
    readonly port: number,
    /** The binary's name, for the log. */
    private readonly label: string,
  ) {}

  /** Starts the process again on the same port, from what its temp dir holds. */
  protected abstract relaunch(): Promise<void>;

  /** Graceful stop (SIGTERM, SIGKILL after ~2s), removes the temp dir. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await this.terminate('SIGTERM', STOP_GRACE_MS);
      const dir = this.dir;
      this.dir = undefined;
      if (dir !== undefined) await rm(dir, { recursive: true, force: true });
      untrack(this);
    })();
    return this.stopping;
  }

  /** SIGKILL now, simulating a crash. The temp dir is kept for restart(). */
  async kill(): Promise<void> {
    await this.terminate('SIGKILL');
  }

  /** Starts again on the same port (stops it first if running). */
  async restart(): Promise<void> {
    if (this.stopping !== undefined) await this.stopping;
    else await this.terminate('SIGTERM', STOP_GRACE_MS);
    this.stopping = undefined;
    await this.relaunch();
  }

  /** Sends `signal`, escalates to SIGKILL after `killAfterMs`, resolves once exited. */
  private async terminate(signal: NodeJS.Signals, killAfterMs?: number): Promise<void> {
    const child = this.child;
    if (child === undefined) return;
    if (this.running) {
      log('sending %s to %s pid %d (%s)', signal, this.label, child.pid, this.address);
      child.kill(signal);
    }
    const timer =
      killAfterMs === undefined
        ? undefined
        : setTimeout(() => {
            log('%s pid %d ignored %s for %dms; sending SIGKILL', this.label, child.pid, signal, killAfterMs);
            child.kill('SIGKILL');
          }, killAfterMs);
    await this.exited;
    clearTimeout(timer);
    // A forked grandchild could hold the pipes open; make sure no handle survives.
    child.stdout?.destroy();
    child.stderr?.destroy();
  }

  /** "127.0.0.1:PORT" */
  get address(): string {
    return `${HOST}:${this.port}`;
  }

  /** Pid of the live process, undefined when not running. */
  get pid(): number | undefined {
    return this.running ? this.child?.pid : undefined;
  }

  get running(): boolean {
    const child = this.child;
    return child !== undefined && child.pid !== undefined && child.exitCode === null && child.signalCode === null;
  }

  /** @internal Temp dir (data, config), used by the registry's emergency cleanup. */
  get dataDir(): string | undefined {
    return this.dir;
  }
}
