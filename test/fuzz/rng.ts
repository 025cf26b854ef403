/**
 * A small seeded pseudo-random generator (sfc32) for the fuzzer. Every input is made from its
 * own generator, seeded from (run seed, target, input number), so one input can be made again
 * without making all inputs before it: a hang report needs only those three values.
 */

/** Mixes text and numbers into a 32-bit seed (FNV-1a, then a murmur3 finalizer). */
export function hashSeed(...parts: (string | number)[]): number {
  let h = 0x811c9dc5;
  for (const part of parts) {
    for (const char of `${part}\u0000`) {
      h ^= char.codePointAt(0)!;
      h = Math.imul(h, 0x01000193);
    }
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Reads `FUZZ_SEED`: a decimal or 0x-hex number is used as is, other text is hashed, and
 * nothing means a fresh random seed (printed by the caller, so a failure can be replayed).
 */
export function parseSeed(text: string | undefined): number {
  const value = text?.trim() ?? "";
  if (value === "") return crypto.getRandomValues(new Uint32Array(1))[0];
  if (/^(\d+|0x[0-9a-f]+)$/i.test(value)) return Number(value) >>> 0;
  return hashSeed(value);
}

export class Rng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  constructor(seed: number) {
    this.#a = 0x9e3779b9;
    this.#b = 0x243f6a88;
    this.#c = 0xb7e15162;
    this.#d = seed >>> 0;
    // The first outputs of sfc32 still show the seed; discard them.
    for (let i = 0; i < 12; i++) this.uint32();
  }

  /** The generator of input `index` of `target` in the run with `seed`. */
  static forInput(seed: number, target: string, index: number): Rng {
    return new Rng(hashSeed(seed, target, index));
  }

  uint32(): number {
    const t = (((this.#a + this.#b) | 0) + this.#d) | 0;
    this.#d = (this.#d + 1) | 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) | 0;
    this.#c = (this.#c << 21) | (this.#c >>> 11);
    this.#c = (this.#c + t) | 0;
    return t >>> 0;
  }

  /** A float in [0, 1). */
  float(): number {
    return this.uint32() / 4294967296;
  }

  /** An integer in [0, n); 0 when n <= 0. */
  int(n: number): number {
    return n <= 0 ? 0 : Math.floor(this.float() * n);
  }

  /** An integer in [low, high]. */
  range(low: number, high: number): number {
    return low + this.int(high - low + 1);
  }

  /** Small numbers much more often than large ones: sizes and repeat counts. */
  small(max: number): number {
    return this.int(this.int(max + 1) + 1);
  }

  chance(p: number): boolean {
    return this.float() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  /** Picks by weight: `[[3, a], [1, b]]` gives a three times as often as b. */
  weighted<T>(choices: readonly (readonly [number, T])[]): T {
    const total = choices.reduce((sum, [weight]) => sum + weight, 0);
    let r = this.float() * total;
    for (const [weight, value] of choices) {
      r -= weight;
      if (r < 0) return value;
    }
    return choices[choices.length - 1][1];
  }

  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.uint32() & 0xff;
    return out;
  }
}
