// Specification of src/slot.ts: which slot a key lands in (DESIGN §1).
//
// Expected values come from test/unit/fixtures/slot-vectors.json, made by
// make-slot-vectors.py with Python's zlib.crc32 and the hash-tag rule written
// out again in Python, so they do not depend on the code under test.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SLOT_COUNT, crc32, slotOf } from '../../src/slot.js';

interface StringVector { key: string; utf8: string; hashed: string; slot: number; note: string }
interface BufferVector { hex: string; hashed: string; slot: number; note: string }
interface CrcVector { hex: string; crc32: number; note: string }
interface Vectors { seed: number; slotCount: number; crc32: CrcVector[]; strings: StringVector[]; buffers: BufferVector[] }

const vectors = JSON.parse(readFileSync(join(__dirname, 'fixtures', 'slot-vectors.json'), 'utf8')) as Vectors;

/** A readable name for a key in assertion messages. */
function show(key: string): string {
  return JSON.stringify(key).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

describe('SLOT_COUNT', () => {
  test('is 1024, as in Codis', () => {
    assert.equal(SLOT_COUNT, 1024);
    assert.equal(vectors.slotCount, SLOT_COUNT);
  });
});

describe('crc32: CRC-32/IEEE, the same function as zlib.crc32', () => {
  test('the standard check value: crc32("123456789") = 0xCBF43926', () => {
    assert.equal(crc32('123456789'), 0xcbf43926);
    assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
  });

  test('the empty input gives 0', () => {
    assert.equal(crc32(''), 0);
    assert.equal(crc32(Buffer.alloc(0)), 0);
  });

  test('the result is unsigned (0..2^32-1), never negative', () => {
    // 0xCBF43926 has its top bit set: a signed implementation would return a negative number.
    for (const v of vectors.crc32) {
      const got = crc32(Buffer.from(v.hex, 'hex'));
      assert.ok(Number.isInteger(got) && got >= 0 && got <= 0xffffffff, `${v.note}: ${got}`);
    }
  });

  test(`matches zlib.crc32 on ${vectors.crc32.length} byte strings (fixture)`, () => {
    for (const v of vectors.crc32) assert.equal(crc32(Buffer.from(v.hex, 'hex')), v.crc32, `${v.note} (${v.hex})`);
  });

  test('of a string is the CRC of its UTF-8 bytes (never of UTF-16 code units)', () => {
    for (const v of vectors.strings) assert.equal(crc32(v.key), crc32(Buffer.from(v.utf8, 'hex')), `${v.note}: ${show(v.key)}`);
  });

  test('accepts a plain Uint8Array as well as a Buffer', () => {
    assert.equal(crc32(new Uint8Array([0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39])), 0xcbf43926);
  });
});

describe('slotOf: crc32 of the key (or of its hash tag) modulo 1024', () => {
  test('the checks listed in DESIGN §1', () => {
    assert.equal(slotOf('foo'), 289);
    assert.equal(slotOf('bar'), 170);
    assert.equal(slotOf('{user1000}.following'), 870);
    assert.equal(slotOf('foo{bar'), 407);
    assert.equal(slotOf('a{b}c{d}e'), 1017);
  });

  test('the empty key goes to slot 0', () => {
    assert.equal(slotOf(''), 0);
    assert.equal(slotOf(Buffer.alloc(0)), 0);
  });

  test('an empty tag {} hashes the empty string: slot 0, wherever it is (Codis rule, unlike Redis Cluster)', () => {
    for (const key of ['{}', '{}foo', 'foo{}bar', 'foo{}', '{}{x}', 'x{}}']) assert.equal(slotOf(key), 0, key);
  });

  test('a hash tag: only the bytes between the first { and the first } after it count', () => {
    const tag = slotOf('user1000');
    assert.equal(slotOf('{user1000}.following'), tag);
    assert.equal(slotOf('{user1000}.followers'), tag);
    assert.equal(slotOf('prefix{user1000}'), tag);
    assert.equal(slotOf('a{user1000}b{other}c'), tag, 'a second tag is ignored');
  });

  test('only the first { counts, even when a later { has a }', () => {
    assert.equal(slotOf('{{a}}'), crc32('{a') % 1024, 'the tag of {{a}} is "{a"');
    assert.equal(slotOf('{a{b}'), crc32('a{b') % 1024, 'the tag of {a{b} is "a{b"');
    assert.equal(slotOf('a{b}c{d}e'), slotOf('b'));
  });

  test('a } before the first { is ignored', () => {
    assert.equal(slotOf('a}b{c}'), slotOf('c'));
  });

  test('with no } after the first {, the whole key is hashed', () => {
    for (const key of ['foo{bar', '{', 'abc{', '{abc', 'abc{def{ghi', '}{']) {
      assert.equal(slotOf(key), crc32(key) % 1024, key);
    }
  });

  test(`${vectors.strings.length} string keys match the Python vectors (fixed cases, non-ASCII, random unicode)`, () => {
    for (const v of vectors.strings) assert.equal(slotOf(v.key), v.slot, `${v.note}: ${show(v.key)}`);
  });

  test(`${vectors.buffers.length} Buffer keys match the Python vectors (tags, invalid UTF-8, random bytes)`, () => {
    for (const v of vectors.buffers) assert.equal(slotOf(Buffer.from(v.hex, 'hex')), v.slot, `${v.note}: ${v.hex}`);
  });

  test('the hashed part of each vector is exactly what Python hashed (fixture self-check)', () => {
    for (const v of [...vectors.strings, ...vectors.buffers]) {
      assert.equal(crc32(Buffer.from(v.hashed, 'hex')) % 1024, v.slot, v.note);
    }
  });

  test('non-ASCII keys: é, 中文, 😀, combining characters, tags with non-ASCII inside', () => {
    const cases: Array<[string, string]> = [
      ['é', 'c3a9'],
      ['中文', 'e4b8ade69687'],
      ['😀', 'f09f9880'],
      ['e\u0301', '65cc81'],
    ];
    for (const [key, utf8] of cases) assert.equal(slotOf(key), crc32(Buffer.from(utf8, 'hex')) % 1024, key);
    assert.notEqual(slotOf('caf\u00e9'), slotOf('cafe\u0301'), 'keys are bytes: NFC and NFD forms are different keys');
    assert.equal(slotOf('{中文}:profile'), slotOf('中文'));
    assert.equal(slotOf('x{😀}y'), slotOf('😀'));
  });

  test('a string key and Buffer.from(key) always land in the same slot', () => {
    for (const v of vectors.strings) {
      const buf = Buffer.from(v.key);
      assert.equal(buf.toString('hex'), v.utf8, `fixture encoding: ${show(v.key)}`);
      assert.equal(slotOf(v.key), slotOf(buf), `${v.note}: ${show(v.key)}`);
    }
  });

  test('a lone surrogate hashes as U+FFFD, exactly as Buffer.from writes it (and so as ioredis sends it)', () => {
    const keys = ['a\uD800b', 'a\uDC00b', '\uD83D', 'x\uD83D', '\uDE00x', '{\uD800}', '{a\uD83D}b', '\uDC00\uD800', '\uD83D\uD83D\uDE00'];
    for (const key of keys) {
      assert.equal(slotOf(key), slotOf(Buffer.from(key)), show(key));
      assert.equal(crc32(key), crc32(Buffer.from(key)), show(key));
    }
    assert.equal(slotOf('a\uD800b'), slotOf('a\uFFFDb'));
    assert.equal(slotOf('\uD83D\uD83D\uDE00'), slotOf('\uFFFD😀'), 'a high surrogate followed by a full pair');
  });

  test('a surrogate pair is one astral character, not two lone surrogates', () => {
    assert.equal(slotOf('\uD83D\uDE00'), slotOf('😀'));
    assert.notEqual(crc32('\uD83D\uDE00'), crc32('\uFFFD\uFFFD'));
  });

  test('Buffer keys are hashed as raw bytes, with tags found by byte value', () => {
    assert.equal(slotOf(Buffer.from('{user1000}.following')), 870);
    assert.equal(slotOf(Buffer.from([0x80, 0x7b, 0xff, 0xfe, 0x7d, 0x80])), crc32(Buffer.from([0xff, 0xfe])) % 1024);
    assert.equal(slotOf(Buffer.from([0x7b, 0x7d, 0xff])), 0);
  });

  test('a Buffer that is a view into a larger ArrayBuffer hashes only its own bytes', () => {
    const big = Buffer.from('xxxx{user1000}.followingyyyy');
    const view = big.subarray(4, 4 + '{user1000}.following'.length);
    assert.equal(slotOf(view), 870);
    assert.equal(slotOf(Buffer.from('zz{}zz').subarray(2, 4)), 0);
  });

  test('a plain Uint8Array is hashed like the Buffer with the same bytes', () => {
    const bytes = new Uint8Array(Buffer.from('{user1000}.following'));
    assert.equal(slotOf(bytes), 870);
  });

  test('the result is always an integer in 0..1023', () => {
    for (const v of vectors.strings) {
      const slot = slotOf(v.key);
      assert.ok(Number.isInteger(slot) && slot >= 0 && slot < SLOT_COUNT, `${show(v.key)} -> ${slot}`);
    }
    for (const v of vectors.buffers) {
      const slot = slotOf(Buffer.from(v.hex, 'hex'));
      assert.ok(Number.isInteger(slot) && slot >= 0 && slot < SLOT_COUNT, `${v.hex} -> ${slot}`);
    }
  });

  test('keys spread over the slots (10,000 sequential keys reach more than 1000 distinct slots)', () => {
    const seen = new Set<number>();
    for (let i = 0; i < 10_000; i++) seen.add(slotOf(`key:${i}`));
    assert.ok(seen.size > 1000, `only ${seen.size} slots`);
  });

  test('a key that is not a string or Buffer is a TypeError, not a silent slot', () => {
    const bad: unknown[] = [123, null, undefined, {}, ['a'], true, 12n, Symbol('k')];
    for (const key of bad) {
      assert.throws(() => slotOf(key as unknown as string), TypeError, String(typeof key));
    }
    assert.throws(() => slotOf(null as unknown as string), /got null/);
    assert.throws(() => slotOf(123 as unknown as string), /string or Buffer/);
  });
});
