// Specification of src/client/deadline.ts: a command's commandTimeout is armed
// once, at its first stop, and later stops (ioredis' own sendCommand
// included) keep that deadline. It relies on ioredis' Command keeping its
// timer in `_commandTimeoutTimer`; these tests open no socket and fail first
// if an ioredis upgrade changes that.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { Command } from 'ioredis';
import { armPart, armTimeout, deadlineOf, disarm, isArmed, routeTimeoutError } from '../../src/client/deadline.js';
import { CommandTimeoutError } from '../../src/index.js';

const route = { id: 2, address: '10.0.0.2:6379', send() {} };

async function outcome(command: Command): Promise<string> {
  try {
    return `resolved ${String(await command.promise)}`;
  } catch (error) {
    return `rejected ${(error as Error).message}`;
  }
}

describe('armTimeout', () => {
  test('rejects an unsettled command with the given error when the time is up', async () => {
    const command = new Command('get', ['k']);
    armTimeout(command, 20, () => new Error('ours'));
    assert.ok(isArmed(command));
    const started = performance.now();
    assert.equal(await outcome(command), 'rejected ours');
    assert.ok(performance.now() - started >= 15);
  });

  test('arms once: a second arming (or ioredis\' own setTimeout) keeps the first deadline', async () => {
    const command = new Command('get', ['k']);
    armTimeout(command, 20, () => new Error('first'));
    armTimeout(command, 5, () => new Error('second'));
    command.setTimeout(1); // what ioredis' sendCommand does with commandTimeout
    assert.equal(await outcome(command), 'rejected first');
  });

  test('a command that settles first clears the timer (ioredis\' _clearTimers)', async () => {
    const command = new Command('get', ['k'], { replyEncoding: 'utf8' });
    armTimeout(command, 20, () => new Error('late'));
    command.resolve(Buffer.from('v'));
    assert.equal(await outcome(command), 'resolved v');
    assert.equal(isArmed(command), false);
  });

  test('disarm removes it: ioredis may arm its own again', async () => {
    const command = new Command('get', ['k']);
    armTimeout(command, 5, () => new Error('ours'));
    disarm(command);
    assert.equal(isArmed(command), false);
    command.setTimeout(10);
    assert.equal(await outcome(command), 'rejected Command timed out');
  });
});

describe('deadlines handed to the parts of a split command', () => {
  test('armPart gives a part its parent\'s deadline and an error naming the part\'s group', async () => {
    const part = new Command('mget', ['a', 'b']);
    const deadline = { at: performance.now() + 30, timeoutMs: 300 };
    armPart(part, route, deadline);
    assert.equal(deadlineOf(part), deadline);
    const started = performance.now();
    const error = await part.promise.then(() => null, (e: Error) => e);
    assert.ok(error instanceof CommandTimeoutError, String(error));
    assert.equal(error.group, 2);
    assert.equal(error.address, '10.0.0.2:6379');
    assert.equal(error.command, 'mget');
    assert.equal(error.timeoutMs, 300);
    assert.ok(performance.now() - started < 200, 'by the parent\'s deadline, not a fresh timeout');
  });

  test('a deadline already past fails the part at once', async () => {
    const part = new Command('get', ['a']);
    armPart(part, route, { at: performance.now() - 5, timeoutMs: 100 });
    assert.match(await outcome(part), /did not answer GET within 100 ms/);
  });

  test('routeTimeoutError adds what the command waited for', () => {
    const error = routeTimeoutError(route, 'set', 250, 'its slot was moving from group 1 to group 2');
    assert.match(error.message, /^group 2 \(10\.0\.0\.2:6379\) did not answer SET within 250 ms \(commandTimeout\); its slot was moving from group 1 to group 2; /);
  });
});
