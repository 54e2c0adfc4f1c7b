// Specification of shardis/testing: real redis-server processes for tests.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import {
  RedisServer,
  RedisServerNotFoundError,
  findFreePort,
  keygen,
  startRedisServers,
  stopAllRedisServers,
} from '../../src/testing/index.js';

after(stopAllRedisServers);

/** Sends inline commands over a raw socket and returns the first `lineCount` reply lines. */
async function exchange(port: number, commands: string[], lineCount = commands.length): Promise<string[]> {
  const socket = connect({ host: '127.0.0.1', port });
  try {
    await once(socket, 'connect');
    socket.write(commands.map((c) => `${c}\r\n`).join(''));
    let text = '';
    for await (const chunk of socket) {
      text += String(chunk);
      const lines = text.split('\r\n').slice(0, -1);
      if (lines.length >= lineCount) return lines.slice(0, lineCount);
    }
    throw new Error(`connection closed after: ${JSON.stringify(text)}`);
  } finally {
    socket.destroy();
  }
}

/** One reply line per command (enough for +OK / +PONG / -ERR replies). */
function send(port: number, ...commands: string[]): Promise<string[]> {
  return exchange(port, commands);
}

/** Resolves to the connect error code, e.g. 'ECONNREFUSED', or 'connected'. */
async function connectResult(port: number): Promise<string> {
  const socket = connect({ host: '127.0.0.1', port });
  try {
    await once(socket, 'connect');
    return 'connected';
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? String(err);
  } finally {
    socket.destroy();
  }
}

/** Alive = signalable and not a zombie (an unreaped zombie is already dead). */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return true; // no /proc (macOS): trust kill(pid, 0)
  }
}

test('startRedisServers starts servers in parallel on distinct ports, each answering PING', async () => {
  const servers = await startRedisServers(3);
  assert.equal(servers.length, 3);
  assert.equal(new Set(servers.map((s) => s.port)).size, 3);
  for (const server of servers) {
    assert.equal(server.host, '127.0.0.1');
    assert.equal(server.address, `127.0.0.1:${server.port}`);
    assert.equal(server.running, true);
    assert.equal(typeof server.pid, 'number');
    assert.deepEqual(await send(server.port, 'PING'), ['+PONG']);
  }
  await Promise.all(servers.map((s) => s.stop()));
});

test('extra args reach redis-server', async () => {
  const server = await RedisServer.start({ args: ['--maxmemory', '10mb'] });
  // *2 $9 maxmemory $8 10485760
  const lines = await exchange(server.port, ['CONFIG GET maxmemory'], 5);
  assert.equal(lines[4], String(10 * 1024 * 1024));
  await server.stop();
});

test('a password server rejects unauthenticated commands and accepts the password', async () => {
  const server = await RedisServer.start({ password: 's3cret' });
  assert.equal(server.password, 's3cret');
  const [denied] = await send(server.port, 'PING');
  assert.match(denied ?? '', /^-NOAUTH/);
  assert.deepEqual(await send(server.port, 'AUTH s3cret', 'PING'), ['+OK', '+PONG']);
  await server.stop();
});

test('kill() makes the port refuse connections; restart() brings it back on the same port', async () => {
  const server = await RedisServer.start();
  const { port } = server;
  const oldPid = server.pid;
  await server.kill();
  assert.equal(server.running, false);
  assert.equal(server.pid, undefined);
  assert.equal(await connectResult(port), 'ECONNREFUSED');

  await server.restart();
  assert.equal(server.port, port);
  assert.equal(server.running, true);
  assert.notEqual(server.pid, oldPid);
  assert.deepEqual(await send(port, 'PING'), ['+PONG']);
  await server.stop();
});

test('stop() is idempotent and frees the port', async () => {
  const server = await RedisServer.start();
  await Promise.all([server.stop(), server.stop()]);
  await server.stop();
  assert.equal(server.running, false);
  assert.equal(await connectResult(server.port), 'ECONNREFUSED');
});

test('an explicit port is used as given', async () => {
  const port = await findFreePort();
  const server = await RedisServer.start({ port });
  assert.equal(server.port, port);
  assert.deepEqual(await send(port, 'PING'), ['+PONG']);
  await server.stop();
});

test('an explicit port that is already taken fails (no silent port change)', async () => {
  const first = await RedisServer.start();
  await assert.rejects(RedisServer.start({ port: first.port, startTimeoutMs: 5000 }), /already in use/);
  assert.deepEqual(await send(first.port, 'PING'), ['+PONG'], 'the first server is unaffected');
  await first.stop();
});

test('a missing binary throws RedisServerNotFoundError with install instructions', async () => {
  await assert.rejects(RedisServer.start({ redisServerPath: '/nonexistent/redis-server' }), (err: unknown) => {
    assert.ok(err instanceof RedisServerNotFoundError);
    assert.equal(err.code, 'ERR_REDIS_SERVER_NOT_FOUND');
    assert.match(err.message, /redis-server was not found on PATH/);
    assert.match(err.message, /sudo apt-get install -y redis-server redis-sentinel redis-tools/);
    assert.match(err.message, /brew install redis/);
    assert.match(err.message, /SHARDIS_REDIS_SERVER/);
    return true;
  });
});

test('a server that exits during startup fails with its output in the error', async () => {
  await assert.rejects(RedisServer.start({ args: ['--no-such-option', 'x'] }), /exited during startup[\s\S]*no-such-option/i);
});

test('keygen gives distinct, prefixed keys', () => {
  const a = keygen('harness');
  const b = keygen('harness');
  const keys = [a('user'), a('user'), b('user'), a(), b()];
  assert.equal(new Set(keys).size, keys.length);
  for (const key of keys) assert.ok(key.startsWith('harness:'), key);
  assert.match(keys[0] ?? '', /^harness:[0-9a-z]+:\d+:user$/);
});

const fixture = join(__dirname, '..', 'fixtures', 'harness-child.ts');

test('after stopAllRedisServers() nothing keeps the event loop alive', async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', fixture, 'stop-all'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (chunk) => (out += String(chunk)));
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  const [code, signal] = await once(child, 'exit');
  clearTimeout(timer);
  assert.equal(out, 'stopped\n');
  assert.deepEqual([code, signal], [0, null], 'the fixture should exit by itself');
});

test('SIGTERM to a process that started a server leaves no redis-server behind', async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', fixture], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8');
  for await (const chunk of child.stdout) {
    out += String(chunk);
    if (out.includes('\n')) break;
  }
  const redisPid = Number(out.trim());
  assert.ok(Number.isInteger(redisPid) && redisPid > 0, `fixture printed ${JSON.stringify(out)}`);
  assert.equal(isAlive(redisPid), true);

  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const [, signal] = await exited;
  assert.equal(signal, 'SIGTERM', 'the fixture should die from the re-raised signal');

  const deadline = Date.now() + 3000;
  while (isAlive(redisPid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.equal(isAlive(redisPid), false, `redis-server pid ${redisPid} is still running`);
});
