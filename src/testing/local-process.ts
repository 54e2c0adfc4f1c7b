import type { ChildProcess } from 'node:child_process';
import type { TrackedServer } from './registry.js';

export const HOST = '127.0.0.1';

/**
 * What a redis-server and a redis-sentinel started here have in common: a
 * loopback port, the child process, and its temp dir.
 */
export abstract class LocalProcess implements TrackedServer {
  readonly host: '127.0.0.1' = HOST;
  protected child: ChildProcess | undefined;
  protected dir: string | undefined;

  protected constructor(readonly port: number) {}

  abstract stop(): Promise<void>;

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
