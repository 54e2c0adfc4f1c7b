// Unique key names per test, so tests sharing servers (or running in parallel
// processes) never step on each other's data.
import { randomBytes } from 'node:crypto';

// Shared by every generator in this process: two generators with the same
// prefix still never produce the same key here.
let counter = 0;

function randomTag(): string {
  // 6 chars of [0-9a-z] from crypto randomness; combined with the pid this
  // separates concurrent test processes.
  const alphabet = '0123456789abcdefghijklmnopqrstuvwxyz';
  let tag = '';
  for (const byte of randomBytes(6)) tag += alphabet[byte % alphabet.length];
  return tag;
}

/**
 * Returns a function producing keys like `${prefix}:${random6}:${counter}:${name}`.
 * The random part is drawn once per generator (plus the pid, base36).
 */
export function keygen(prefix = 'test'): (name?: string) => string {
  const tag = `${randomTag()}${process.pid.toString(36)}`;
  return (name?: string): string => {
    counter += 1;
    const base = `${prefix}:${tag}:${counter}`;
    return name === undefined || name === '' ? base : `${base}:${name}`;
  };
}
