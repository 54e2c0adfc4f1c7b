// Readiness probe over a raw TCP socket (no ioredis: the harness stays
// dependency-free and must not depend on the client it is used to test).
import { connect } from 'node:net';

/** Encode one command as a RESP array (safe for passwords with spaces). */
function encode(args: string[]): string {
  let out = `*${args.length}\r\n`;
  for (const arg of args) out += `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`;
  return out;
}

/** Outcome of one probe: ready, or a short reason why not (for debug logs). */
export type ProbeResult = { ready: true } | { ready: false; reason: string };

export interface ProbeOptions {
  port: number;
  password: string | undefined;
  /** Pid the answering server must report; guards against a port race where
   * another process's redis-server answers on "our" port. */
  expectedPid: number | undefined;
  timeoutMs: number;
}

/**
 * Sends `[AUTH pw] PING INFO server` and checks for `+PONG` and our pid.
 * Never rejects: connection errors are just "not ready yet".
 */
export function probe(options: ProbeOptions): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const { port, password, expectedPid } = options;
    const socket = connect({ host: '127.0.0.1', port });
    let buffer = '';
    let done = false;

    const finish = (result: ProbeResult): void => {
      if (done) return;
      done = true;
      socket.destroy();
      resolve(result);
    };

    socket.setTimeout(options.timeoutMs, () => finish({ ready: false, reason: 'probe timed out' }));
    socket.on('error', (err) => finish({ ready: false, reason: err.message }));
    socket.on('close', () => finish({ ready: false, reason: 'connection closed' }));
    socket.on('connect', () => {
      let payload = '';
      if (password !== undefined) payload += encode(['AUTH', password]);
      payload += encode(['PING']) + encode(['INFO', 'server']);
      socket.write(payload);
    });
    socket.on('data', (chunk) => {
      buffer += chunk.toString('latin1');
      const result = parseReplies(buffer, password !== undefined, expectedPid);
      if (result !== undefined) finish(result);
    });
  });
}

/** Returns undefined while more bytes are needed. */
function parseReplies(
  buffer: string,
  withAuth: boolean,
  expectedPid: number | undefined,
): ProbeResult | undefined {
  let rest = buffer;
  const line = (): string | undefined => {
    const end = rest.indexOf('\r\n');
    if (end < 0) return undefined;
    const text = rest.slice(0, end);
    rest = rest.slice(end + 2);
    return text;
  };

  if (withAuth) {
    const auth = line();
    if (auth === undefined) return undefined;
    if (auth !== '+OK') return { ready: false, reason: `AUTH: ${auth}` };
  }
  const pong = line();
  if (pong === undefined) return undefined;
  if (pong !== '+PONG') return { ready: false, reason: `PING: ${pong}` };

  const header = line();
  if (header === undefined) return undefined;
  if (!header.startsWith('$')) return { ready: false, reason: `INFO: ${header}` };
  const length = Number(header.slice(1));
  // Bulk length is in bytes; latin1 decoding keeps one char per byte.
  if (rest.length < length) return undefined;
  const info = rest.slice(0, length);

  if (expectedPid !== undefined && !new RegExp(`^process_id:${expectedPid}\\r?$`, 'm').test(info)) {
    return { ready: false, reason: 'another process answered on this port' };
  }
  return { ready: true };
}
