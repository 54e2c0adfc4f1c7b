import * as CRC32 from "crc-32";

/** Number of slots, as in Codis. */
export const SLOT_COUNT = 1024;
const SLOT_MASK = SLOT_COUNT - 1;

// The CRC-32/IEEE table that crc-32 ships; we walk it ourselves so that a
// hash tag inside a string or Buffer can be hashed in place, without slicing.
const TABLE: Int32Array = (CRC32 as unknown as { table: Int32Array }).table;

const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;

/**
 * The slot of a key: CRC-32/IEEE of its raw bytes (UTF-8 for strings) modulo
 * 1024, hashing only the hash tag when there is one. Codis's rule: the first
 * `{` counts; with a `}` after it only the bytes between them are hashed (an
 * empty tag `{}` hashes the empty string); with no `}` the whole key is hashed.
 */
export function slotOf(key: string | Buffer | Uint8Array): number {
  if (typeof key === "string") return slotOfString(key);
  if (key instanceof Uint8Array) return slotOfBytes(key);
  throw new TypeError(`slotOf expects a string or Buffer key, got ${describe(key)}`);
}

function slotOfString(key: string): number {
  let start = 0;
  let end = key.length;
  // `{` and `}` are ASCII, and UTF-8 never uses ASCII bytes inside a multi-byte
  // sequence, so finding them in UTF-16 code units finds the same byte spans.
  const open = key.indexOf("{");
  if (open !== -1) {
    const close = key.indexOf("}", open + 1);
    if (close !== -1) {
      start = open + 1;
      end = close;
    }
  }
  return crc32Utf8(key, start, end) & SLOT_MASK;
}

function slotOfBytes(key: Uint8Array): number {
  let start = 0;
  let end = key.length;
  const open = key.indexOf(OPEN_BRACE);
  if (open !== -1) {
    const close = key.indexOf(CLOSE_BRACE, open + 1);
    if (close !== -1) {
      start = open + 1;
      end = close;
    }
  }
  let crc = -1;
  for (let i = start; i < end; i++) crc = (crc >>> 8) ^ TABLE[(crc ^ key[i]!) & 0xff]!;
  return ~crc & SLOT_MASK;
}

/**
 * CRC-32 of the UTF-8 encoding of `s[start, end)`, computed from UTF-16 code
 * units without allocating. Lone surrogates are encoded as U+FFFD, exactly as
 * Buffer.from(s) (and so ioredis on the wire) encodes them.
 */
function crc32Utf8(s: string, start: number, end: number): number {
  let crc = -1;
  for (let i = start; i < end; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      crc = (crc >>> 8) ^ TABLE[(crc ^ c) & 0xff]!;
      continue;
    }
    if (c < 0x800) {
      crc = (crc >>> 8) ^ TABLE[(crc ^ (0xc0 | (c >> 6))) & 0xff]!;
      crc = (crc >>> 8) ^ TABLE[(crc ^ (0x80 | (c & 0x3f))) & 0xff]!;
      continue;
    }
    if (c >= 0xd800 && c <= 0xdfff) {
      const next = i + 1 < end ? s.charCodeAt(i + 1) : 0;
      if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        const cp = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00);
        i++;
        crc = (crc >>> 8) ^ TABLE[(crc ^ (0xf0 | (cp >> 18))) & 0xff]!;
        crc = (crc >>> 8) ^ TABLE[(crc ^ (0x80 | ((cp >> 12) & 0x3f))) & 0xff]!;
        crc = (crc >>> 8) ^ TABLE[(crc ^ (0x80 | ((cp >> 6) & 0x3f))) & 0xff]!;
        crc = (crc >>> 8) ^ TABLE[(crc ^ (0x80 | (cp & 0x3f))) & 0xff]!;
        continue;
      }
      c = 0xfffd; // lone surrogate
    }
    crc = (crc >>> 8) ^ TABLE[(crc ^ (0xe0 | (c >> 12))) & 0xff]!;
    crc = (crc >>> 8) ^ TABLE[(crc ^ (0x80 | ((c >> 6) & 0x3f))) & 0xff]!;
    crc = (crc >>> 8) ^ TABLE[(crc ^ (0x80 | (c & 0x3f))) & 0xff]!;
  }
  return ~crc;
}

/** CRC-32/IEEE (zlib's) of a string's UTF-8 bytes or of a Buffer, unsigned. */
export function crc32(data: string | Uint8Array): number {
  if (typeof data === "string") return crc32Utf8(data, 0, data.length) >>> 0;
  let crc = -1;
  for (let i = 0; i < data.length; i++) crc = (crc >>> 8) ^ TABLE[(crc ^ data[i]!) & 0xff]!;
  return ~crc >>> 0;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value;
}
