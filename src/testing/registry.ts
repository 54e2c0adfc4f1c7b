// Module-level registry of servers this process started and has not stopped,
// plus last-resort cleanup so an aborted test run leaves no redis-server behind.
import { rmSync } from 'node:fs';
import { log } from './log.js';

/** What the registry needs from a server (avoids an import cycle with server.ts). */
export interface TrackedServer {
  readonly pid: number | undefined;
  /** Temp data dir, removed on emergency cleanup too. */
  readonly dataDir: string | undefined;
  stop(): Promise<void>;
}

const servers = new Set<TrackedServer>();
let handlersInstalled = false;

export function track(server: TrackedServer): void {
  installHandlers();
  servers.add(server);
}

export function untrack(server: TrackedServer): void {
  servers.delete(server);
}

export function trackedServers(): TrackedServer[] {
  return [...servers];
}

/** Synchronous: 'exit' handlers cannot await, so SIGKILL and rmSync only. */
function killAllSync(): void {
  for (const server of servers) {
    const { pid, dataDir } = server;
    if (pid !== undefined) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone: nothing to do.
      }
    }
    if (dataDir !== undefined) {
      try {
        rmSync(dataDir, { recursive: true, force: true });
      } catch {
        // Best effort while the process is going down.
      }
    }
  }
  servers.clear();
}

function onSignal(signal: NodeJS.Signals): void {
  log('received %s: killing %d redis-server(s)', signal, servers.size);
  killAllSync();
  process.removeListener('SIGINT', onSignal);
  process.removeListener('SIGTERM', onSignal);
  // Re-raise so the default action (terminate) still happens. If someone else
  // also listens, they already got this signal; re-raising would deliver it twice.
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}

/** Installed lazily on first start, once. Signal/exit listeners never keep the loop alive. */
function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', killAllSync);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}
