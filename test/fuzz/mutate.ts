/**
 * Generic generators and mutators: random text and bytes, and small edits of a known input
 * (insert a token, delete or repeat a range, flip bits). Repeating a range many times is what
 * finds deep nesting and long lines; the dictionary tokens are what reach protocol branches
 * that random bytes almost never hit.
 */

import type { Rng } from "./rng.ts";

/** Tokens that break parsers more often than random characters: framing, numbers, escapes. */
export const COMMON_TOKENS: readonly string[] = [
  "\r",
  "\n",
  "\r\n",
  "\x00",
  "\x01",
  "\x1b[2J",
  "\t",
  " ",
  "  ",
  "\u00a0",
  "\ufeff",
  "\ufffd",
  "\ud800",
  "\udfff",
  "\u{1f600}",
  "\u202e",
  "ü",
  '"',
  "\\",
  "'",
  "(",
  ")",
  "[",
  "]",
  "{",
  "}",
  "<",
  ">",
  ":",
  ";",
  ",",
  "=",
  "==",
  ".",
  "..",
  "/",
  "@",
  "%",
  "&",
  "$",
  "-",
  "--",
  "+",
  "*",
  "0",
  "-1",
  "-0",
  "1e999",
  "-1e999",
  "1e21",
  "-1e21",
  "9007199254740993",
  "4294967296",
  "NaN",
  "Infinity",
  "0x10",
  "null",
  "true",
  "toString",
  "valueOf",
  "__proto__",
  "constructor",
  // Long runs: deep nesting for recursive parsers, long words for quadratic ones.
  "(".repeat(20000),
  "[".repeat(20000),
  "{".repeat(5000),
  "a".repeat(60000),
];

/** Characters worth sprinkling: controls, separators, surrogate halves, non-ASCII. */
const ODD_CHARS =
  "\x00\x01\x07\x08\t\n\v\f\r\x1b\x7f\x80\xa0\xff\u2028\u2029\ud800\udc00\ufeff\uffff";
const PRINTABLE = Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)).join("");
const BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_";

/** A random string of at most `maxLength` UTF-16 units from a randomly chosen alphabet. */
export function randomString(rng: Rng, maxLength: number): string {
  const length = rng.small(maxLength);
  const alphabet = rng.weighted<string | null>([
    [4, PRINTABLE],
    [2, BASE64],
    [1, "0123456789 "],
    [1, PRINTABLE + ODD_CHARS],
    [1, null], // any UTF-16 unit
  ]);
  let out = "";
  for (let i = 0; i < length; i++) {
    out += alphabet === null
      ? String.fromCharCode(rng.int(0x10000))
      : alphabet[rng.int(alphabet.length)];
  }
  return out;
}

/** Applies one to a few random edits to `text`; the result is cut to `maxLength`. */
export function mutateString(
  rng: Rng,
  text: string,
  tokens: readonly string[],
  maxLength = 4096,
): string {
  let s = text;
  const edits = 1 + rng.small(4);
  for (let e = 0; e < edits; e++) {
    const at = rng.int(s.length + 1);
    const end = Math.min(s.length, at + rng.small(16));
    const token = rng.chance(0.7) ? rng.pick(tokens) : rng.pick(COMMON_TOKENS);
    switch (rng.int(10)) {
      case 0:
      case 1:
        s = s.slice(0, at) + token + s.slice(at);
        break;
      case 2:
        s = s.slice(0, at) + token + s.slice(end);
        break;
      case 3:
        s = s.slice(0, at) + s.slice(end);
        break;
      case 4: {
        // Repeat a range: a few times usually, thousands of times now and then.
        const count = rng.chance(0.1) ? rng.range(500, 20000) : rng.range(2, 8);
        const chunk = end > at ? s.slice(at, end) : token;
        const repeated = chunk.repeat(Math.min(count, Math.ceil(maxLength / chunk.length)));
        s = s.slice(0, at) + repeated + s.slice(at);
        break;
      }
      case 5:
        s = s.slice(0, at) + ODD_CHARS[rng.int(ODD_CHARS.length)] + s.slice(at + 1);
        break;
      case 6: {
        const range = s.slice(at, end);
        const flipped = rng.chance(0.5) ? range.toUpperCase() : range.toLowerCase();
        s = s.slice(0, at) + flipped + s.slice(end);
        break;
      }
      case 7:
        s = s.slice(0, at);
        break;
      case 8:
        s = s.slice(0, at) + randomString(rng, 12) + s.slice(at);
        break;
      default:
        // Numbers steer protocols (reply codes, sizes, times): swap one for an odd one.
        s = s.replace(/\d+/, rng.pick(["0", "-1", "999", "4294967296", "1e999", "00", ""]));
        break;
    }
    if (s.length > maxLength) s = s.slice(0, maxLength);
  }
  return s;
}

/** Interesting byte values for binary formats: lengths, tags, sign bits. */
const ODD_BYTES = [
  0x00,
  0x01,
  0x02,
  0x03,
  0x04,
  0x05,
  0x06,
  0x30,
  0x31,
  0x7f,
  0x80,
  0x81,
  0x82,
  0x84,
  0xa0,
  0xff,
];

/** Applies one to a few byte-level edits; the result is cut to `maxLength`. */
export function mutateBytes(rng: Rng, input: Uint8Array, maxLength = 64 * 1024): Uint8Array {
  let b: Uint8Array = input.slice();
  const edits = 1 + rng.small(6);
  for (let e = 0; e < edits; e++) {
    const at = rng.int(b.length + 1);
    const end = Math.min(b.length, at + rng.small(64));
    switch (rng.int(8)) {
      case 0:
      case 1:
        if (at < b.length) b[at] ^= 1 << rng.int(8);
        break;
      case 2:
        if (at < b.length) b[at] = rng.pick(ODD_BYTES);
        break;
      case 3:
        b = concat(b.subarray(0, at), rng.bytes(rng.small(16)), b.subarray(at));
        break;
      case 4:
        b = concat(b.subarray(0, at), b.subarray(end));
        break;
      case 5: {
        const chunk = b.slice(at, end);
        b = concat(b.subarray(0, at), chunk, chunk, b.subarray(at));
        break;
      }
      case 6:
        b = b.slice(0, at);
        break;
      default: {
        // Copy a range over another place: moves length and tag bytes around.
        const from = rng.int(b.length);
        const chunk = b.slice(from, from + rng.small(32));
        b = concat(b.subarray(0, at), chunk, b.subarray(Math.min(b.length, at + chunk.length)));
        break;
      }
    }
    if (b.length > maxLength) b = b.slice(0, maxLength);
  }
  return b;
}

/** Edits a list: drop, duplicate, swap, insert a new item or edit one. */
export function mutateList<T>(
  rng: Rng,
  list: readonly T[],
  newItem: () => T,
  mutateItem: (item: T) => T,
  maxLength = 200,
): T[] {
  const out = [...list];
  const edits = 1 + rng.small(3);
  for (let e = 0; e < edits; e++) {
    const at = rng.int(out.length);
    switch (rng.int(6)) {
      case 0:
        out.splice(at, 1);
        break;
      case 1:
        if (out.length > 0) out.splice(at, 0, out[at]);
        break;
      case 2: {
        if (out.length < 2) break;
        const other = rng.int(out.length);
        [out[at], out[other]] = [out[other], out[at]];
        break;
      }
      case 3:
        out.splice(rng.int(out.length + 1), 0, newItem());
        break;
      default:
        if (out.length > 0) out[at] = mutateItem(out[at]);
        break;
    }
  }
  return out.slice(0, maxLength);
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

export function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

export function fromBase64(text: string): Uint8Array {
  const binary = atob(text);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}
