/**
 * Local bridge passwords: stored only as a salted scrypt hash,
 * `scrypt$<N>$<r>$<p>$<salt base64>$<hash base64>`, so the parameters can change without
 * breaking older hashes. Verification takes the same time for unknown users (a dummy hash is
 * checked) and compares in constant time.
 */
import { randomBytes, scrypt, timingSafeEqual } from "node:crypto";
import { base64, fromBase64 } from "../base64.ts";

/** 2^14 x 8 x 128 bytes = 16 MiB and some 50 ms per check: fine for a login, costly to guess. */
const DEFAULTS = { N: 16384, r: 8, p: 1 };
const SALT_BYTES = 16;
const HASH_BYTES = 32;
const FORMAT = /^scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2})$/;

interface Parsed {
  N: number;
  r: number;
  p: number;
  salt: Uint8Array;
  hash: Uint8Array;
}

function parse(stored: string): Parsed | string {
  const m = FORMAT.exec(stored);
  if (!m) return "expected scrypt$N$r$p$salt$hash";
  const [N, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (N < 2 || (N & (N - 1)) !== 0 || N > 1 << 20) return "N must be a power of two up to 2^20";
  if (r < 1 || r > 32 || p < 1 || p > 16) return "r or p out of range";
  if (128 * N * r > 256 * 1024 * 1024) return "N x r needs more than 256 MiB";
  const salt = fromBase64(m[4]);
  const hash = fromBase64(m[5]);
  if (salt.length < 8) return "the salt is shorter than 8 bytes";
  if (hash.length < 16) return "the hash is shorter than 16 bytes";
  return { N, r, p, salt, hash };
}

/** Why `stored` is not a password hash this module can check, or null. */
export function passwordHashProblem(stored: string): string | null {
  const parsed = parse(stored);
  return typeof parsed === "string" ? parsed : null;
}

function derive(password: string, h: Omit<Parsed, "hash">, length: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    scrypt(
      password.normalize("NFC"),
      h.salt,
      length,
      { N: h.N, r: h.r, p: h.p, maxmem: 128 * h.N * h.r + 1024 * 1024 },
      (error, key) => error ? reject(error) : resolve(new Uint8Array(key)),
    );
  });
}

/** A new salted hash of `password` for the configuration file. */
export async function hashPassword(password: string, params = DEFAULTS): Promise<string> {
  const salt = new Uint8Array(randomBytes(SALT_BYTES));
  const hash = await derive(password, { ...params, salt }, HASH_BYTES);
  return `scrypt$${params.N}$${params.r}$${params.p}$${base64(salt)}$${base64(hash)}`;
}

/** A hash that no password matches: checked for unknown users so they take as long. */
const DUMMY = `scrypt$${DEFAULTS.N}$${DEFAULTS.r}$${DEFAULTS.p}$${btoa("bridge-dummy-salt")}$${
  btoa("x".repeat(HASH_BYTES))
}`;

/** Whether `password` matches `stored` (undefined: an unknown user, checked against a dummy). */
export async function verifyPassword(
  password: string,
  stored: string | undefined,
): Promise<boolean> {
  const parsed = parse(stored ?? DUMMY);
  if (typeof parsed === "string") return false;
  const derived = await derive(password, parsed, parsed.hash.length);
  return timingSafeEqual(derived, parsed.hash) && stored !== undefined;
}
