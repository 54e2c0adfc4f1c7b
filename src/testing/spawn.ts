// Spawns one redis-server process and waits until it answers PING.
// Configuration is passed on the command line only: no config file to manage.
import { spawn, type ChildProcess } from 'node:child_process';
import { RedisServerNotFoundError } from './errors.js';
import { log } from './log.js';
import { OutputBuffer } from './output-buffer.js';
import { probe } from './probe.js';

/** Internal: redis-server could not bind its port (another process took it). */
export class PortInUseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PortInUseError';
  }
}

export interface SpawnOptions {
  binary: string;
  port: number;
  password: string | undefined;
  args: readonly string[];
  dataDir: string;
  startTimeoutMs: number;
  /** Replaces the built arguments whole (redis-sentinel: just its config file). */
  argv?: readonly string[];
  /** The error for a missing binary. @default RedisServerNotFoundError */
  notFound?: (binary: string) => Error;
  /** Process name in messages. @default 'redis-server' */
  label?: string;
}

export interface SpawnedRedis {
  child: ChildProcess;
  output: OutputBuffer;
  /** Resolves when the process has exited (never rejects). */
  exited: Promise<void>;
  /** Resolves when the server answers PING; rejects (after killing it) otherwise. */
  ready: Promise<void>;
}

const PROBE_INTERVAL_MS = 50;
const PROBE_TIMEOUT_MS = 1000;

export function buildArgs(options: SpawnOptions): string[] {
  const args = [
    '--port', String(options.port),
    '--bind', '127.0.0.1',
    '--save', '',
    '--appendonly', 'no',
    '--dir', options.dataDir,
    '--daemonize', 'no',
    '--protected-mode', 'no',
    '--loglevel', 'warning',
  ];
  if (options.password !== undefined) args.push('--requirepass', options.password);
  // Last, so callers can override any default above.
  return [...args, ...options.args];
}

/** Spawns synchronously (so the caller can track the pid at once); readiness is async. */
export function spawnRedis(options: SpawnOptions): SpawnedRedis {
  const args = options.argv !== undefined ? [...options.argv] : buildArgs(options);
  const commandLine = `${options.binary} ${args.map((a) => (a === '' ? '""' : a)).join(' ')}`;
  log('spawning %s', commandLine);

  const output = new OutputBuffer();
  const child = spawn(options.binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const onData = (chunk: Buffer): void => {
    output.append(chunk);
    log('[%d] %s', options.port, chunk.toString().trimEnd());
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  // A ChildProcess 'error' without listeners would crash the test process.
  child.on('error', (err) => log('[%d] child error: %s', options.port, err.message));

  // 'exit' is not emitted when spawn itself fails; 'close' always is.
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const ready = waitUntilReady(child, output, options, commandLine);
  return { child, output, exited, ready };
}

function waitUntilReady(
  child: ChildProcess,
  output: OutputBuffer,
  options: SpawnOptions,
  commandLine: string,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    let lastReason = 'no attempt yet';

    const fail = (err: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      // Never leave a half-started server behind.
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
      }
      reject(err);
    };

    // Spawn failures (ENOENT, EACCES) arrive as 'error' followed by 'close'.
    child.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') fail(options.notFound?.(options.binary) ?? new RedisServerNotFoundError(options.binary));
      else fail(new Error(`Could not spawn ${options.binary}: ${err.message}`));
    });

    // 'close' (not 'exit') so stdout is fully read and the reason is in `output`.
    child.once('close', (code, signal) => {
      if (child.pid === undefined) return; // spawn failure, handled by 'error'
      const text = output.describe();
      const why = `${options.label ?? 'redis-server'} exited during startup (code ${code}, signal ${signal}).\nCommand: ${commandLine}\nOutput:\n${text}`;
      if (/address already in use/i.test(text)) {
        fail(new PortInUseError(`Port ${options.port} is already in use. ${why}`));
      } else {
        fail(new Error(why));
      }
    });

    const timer = setTimeout(() => {
      fail(
        new Error(
          `${options.label ?? 'redis-server'} on 127.0.0.1:${options.port} did not answer PING within ${options.startTimeoutMs}ms ` +
            `(last probe: ${lastReason}).\nCommand: ${commandLine}\nOutput:\n${output.describe()}`,
        ),
      );
    }, options.startTimeoutMs);

    const loop = async (): Promise<void> => {
      while (!settled) {
        const result = await probe({
          port: options.port,
          password: options.password,
          expectedPid: child.pid,
          timeoutMs: PROBE_TIMEOUT_MS,
        });
        if (settled) return;
        if (result.ready) {
          settled = true;
          clearTimeout(timer);
          log('redis-server pid %d ready on 127.0.0.1:%d', child.pid, options.port);
          resolve();
          return;
        }
        lastReason = result.reason;
        await new Promise((r) => setTimeout(r, PROBE_INTERVAL_MS));
      }
    };
    // No pid means spawn failed: the 'error' handler above will reject.
    if (child.pid !== undefined) void loop();
  });
}
