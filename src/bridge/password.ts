/**
 * Local bridge passwords: stored only as a salted scrypt hash,
 * `scrypt$<N>$<r>$<p>$<salt base64>$<hash base64>`, so the parameters can change without
 * breaking older hashes. Verification takes the same time for unknown users (a dummy hash is
 * checked) and compares in constant time. A successful check is remembered in memory for a while
 * (`RememberedPasswords`), so that a client logging in again does not pay for scrypt each time.
 */
import { createHmac, randomBytes, scrypt, timingSafeEqual } from "node:crypto";
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

/**
 * Successful checks, remembered in memory for `ttlMs`: a fetcher that logs in every minute pays
 * for scrypt (some 50 ms of CPU, more on a busy machine) once per `ttlMs`, not per login.
 *
 * Why this is safe: only successes are kept, and only as HMAC-SHA256 of the stored hash and the
 * password under a random key made when the process starts (never written or logged). A wrong
 * password, an unknown user or a changed hash matches nothing and costs a full scrypt check as
 * before (and the failure delay), so guessing is not made cheaper, and failures take as long as
 * ever. A quick answer only ever tells a client that its password is right, which the answer says
 * anyway. Someone able to read the process's memory could test guesses at HMAC speed with the key
 * found there, but could as well read the app's token and the passwords clients send. Bounded:
 * at most `maxEntries`, the oldest dropped first.
 */
export class RememberedPasswords {
  readonly #key = randomBytes(32);
  /** HMAC (base64) -> when it expires (`now()` ms). */
  readonly #entries = new Map<string, number>();

  constructor(
    readonly ttlMs = 15 * 60_000,
    readonly maxEntries = 1024,
    readonly now: () => number = () => performance.now(),
  ) {}

  #id(password: string, stored: string): string {
    return createHmac("sha256", this.#key).update(stored).update("\0")
      .update(password.normalize("NFC")).digest("base64");
  }

  has(password: string, stored: string): boolean {
    const id = this.#id(password, stored);
    const expires = this.#entries.get(id);
    if (expires === undefined) return false;
    if (this.now() < expires) return true;
    this.#entries.delete(id);
    return false;
  }

  add(password: string, stored: string): void {
    const id = this.#id(password, stored);
    this.#entries.delete(id);
    this.#entries.set(id, this.now() + this.ttlMs);
    for (const oldest of this.#entries.keys()) {
      if (this.#entries.size <= this.maxEntries) break;
      this.#entries.delete(oldest);
    }
  }

  get size(): number {
    return this.#entries.size;
  }
}

/** The bridge process's memory of successful checks. */
const REMEMBERED = new RememberedPasswords();

/**
 * At most `size` tasks at once; the others wait in order. Around scrypt: each check costs some
 * 50-190 ms of CPU and 16 MiB, so many logins at once (a burst of clients, a guesser opening many
 * connections) must queue instead of exhausting the CPU and memory.
 */
export class Semaphore {
  #free: number;
  readonly #waiting: (() => void)[] = [];

  constructor(readonly size: number) {
    this.#free = Math.max(1, size);
  }

  /** Tasks waiting for a slot. */
  get waiting(): number {
    return this.#waiting.length;
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    try {
      return await task();
    } finally {
      // The slot goes straight to the next waiting task, if any.
      const next = this.#waiting.shift();
      if (next) next();
      else this.#free++;
    }
  }
}

/** scrypt checks running at once in the bridge process. */
export const SCRYPT_AT_ONCE = 4;
const SCRYPT_SLOTS = new Semaphore(SCRYPT_AT_ONCE);

/**
 * Whether `password` matches `stored` (undefined: an unknown user, checked against a dummy).
 * A success is remembered in `remembered` (null: never remembered, always scrypt). The scrypt
 * check waits for one of `slots` (at most `SCRYPT_AT_ONCE` in the process by default).
 */
export async function verifyPassword(
  password: string,
  stored: string | undefined,
  remembered: RememberedPasswords | null = REMEMBERED,
  slots: Semaphore = SCRYPT_SLOTS,
): Promise<boolean> {
  if (stored !== undefined && remembered?.has(password, stored)) return true;
  const parsed = parse(stored ?? DUMMY);
  if (typeof parsed === "string") return false;
  const derived = await slots.run(() => derive(password, parsed, parsed.hash.length));
  const ok = timingSafeEqual(derived, parsed.hash) && stored !== undefined;
  if (ok && stored !== undefined) remembered?.add(password, stored);
  return ok;
}
