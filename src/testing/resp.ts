// One command over a raw TCP socket, with a minimal RESP2 reply parser: the
// harness asks sentinels and replicas about their state without ioredis.
import { connect } from 'node:net';

/** A RESP2 reply: status/bulk strings, integers, null, arrays; errors reject. */
export type RespReply = string | number | null | RespReply[];

function encode(args: readonly string[]): string {
  let out = `*${args.length}\r\n`;
  for (const arg of args) out += `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`;
  return out;
}

/** Parses one reply at `offset`; undefined while more bytes are needed. */
function parse(buf: Buffer, offset: number): { value: RespReply | Error; end: number } | undefined {
  const lineEnd = buf.indexOf('\r\n', offset);
  if (lineEnd < 0) return undefined;
  const type = String.fromCharCode(buf[offset]!);
  const line = buf.toString('utf8', offset + 1, lineEnd);
  const next = lineEnd + 2;
  switch (type) {
    case '+':
      return { value: line, end: next };
    case '-':
      return { value: new Error(line), end: next };
    case ':':
      return { value: Number(line), end: next };
    case '$': {
      const length = Number(line);
      if (length < 0) return { value: null, end: next };
      if (buf.length < next + length + 2) return undefined;
      return { value: buf.toString('utf8', next, next + length), end: next + length + 2 };
    }
    case '*': {
      const count = Number(line);
      if (count < 0) return { value: null, end: next };
      const items: RespReply[] = [];
      let at = next;
      for (let i = 0; i < count; i++) {
        const item = parse(buf, at);
        if (item === undefined) return undefined;
        if (item.value instanceof Error) return item;
        items.push(item.value);
        at = item.end;
      }
      return { value: items, end: at };
    }
    default:
      return { value: new Error(`unexpected RESP type ${JSON.stringify(type)}`), end: buf.length };
  }
}

/** Sends `args` to 127.0.0.1:`port` (after AUTH when `password` is given) and resolves with the reply. */
export function respCommand(port: number, args: readonly string[], options: { password?: string; timeoutMs?: number } = {}): Promise<RespReply> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let buffer = Buffer.alloc(0);
    let skip = options.password === undefined ? 0 : 1;
    let done = false;
    const finish = (error: Error | null, value?: RespReply): void => {
      if (done) return;
      done = true;
      socket.destroy();
      if (error) reject(error);
      else resolve(value ?? null);
    };
    socket.setTimeout(options.timeoutMs ?? 2000, () => finish(new Error(`127.0.0.1:${port}: ${args[0]} timed out`)));
    socket.on('error', (err) => finish(err));
    socket.on('close', () => finish(new Error(`127.0.0.1:${port}: connection closed before the reply`)));
    socket.on('connect', () => {
      const auth = options.password === undefined ? '' : encode(['AUTH', options.password]);
      socket.write(auth + encode(args));
    });
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        const reply = parse(buffer, 0);
        if (reply === undefined) return;
        buffer = buffer.subarray(reply.end);
        if (skip > 0) {
          skip -= 1;
          if (reply.value instanceof Error) return finish(new Error(`AUTH: ${reply.value.message}`));
          continue;
        }
        if (reply.value instanceof Error) return finish(reply.value);
        return finish(null, reply.value);
      }
    });
  });
}

/** A flat [k1, v1, k2, v2, …] reply (SENTINEL MASTER) as an object. */
export function pairs(reply: RespReply): Record<string, string> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  if (!Array.isArray(reply)) return out;
  for (let i = 0; i + 1 < reply.length; i += 2) out[String(reply[i])] = String(reply[i + 1]);
  return out;
}
