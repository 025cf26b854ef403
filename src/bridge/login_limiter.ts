/**
 * Failed local logins, counted per client address across sessions. Every login attempt from an
 * address with n recent failures waits `baseDelayMs × 2^(n-1)` (capped at `maxDelayMs`) *before*
 * its password is checked, whatever the outcome (`checkSlowed`): a guesser cannot hang up when no
 * answer came within scrypt time and reconnect to skip the wait. An address without recent
 * failures is not slowed, and a user who mistyped once waits only the base delay on the next try.
 *
 * A success clears nothing: on a shared address (NAT, this machine) one
 * user's good login must not wipe out the count of someone guessing another user's password. An
 * address's count is forgotten `forgetMs` after its last failure, and the map holds at most
 * `maxAddresses` addresses (the one whose last failure is oldest goes first), so memory stays
 * bounded however many addresses try. IPv6 clients are counted per /64 (`addressKey`): one
 * host usually has a whole /64 to pick addresses from.
 */
import { parseIp } from "../net/ip.ts";

export interface LoginLimiterOptions {
  /** Delay after an address's first failure; 0 switches slowing off. */
  baseDelayMs: number;
  /** Longest delay; default 30 seconds (never below `baseDelayMs`). */
  maxDelayMs?: number;
  /** An address's failures are forgotten this long after its last one; default 15 minutes. */
  forgetMs?: number;
  /** Addresses remembered at most; default 10000. */
  maxAddresses?: number;
  now?: () => number;
}

export interface FailedLogin {
  /** Failures from this address within `forgetMs` of each other, this one included. */
  failures: number;
  /** How long to wait before answering this failure. */
  delayMs: number;
}

export const DEFAULT_MAX_DELAY_MS = 30_000;
export const DEFAULT_FORGET_MS = 15 * 60_000;
export const DEFAULT_MAX_ADDRESSES = 10_000;

export class LoginLimiter {
  /** Address -> failures and the time of the last one; in order of the last failure. */
  readonly #entries = new Map<string, { failures: number; last: number }>();
  readonly #base: number;
  readonly #max: number;
  readonly #forgetMs: number;
  readonly #maxAddresses: number;
  readonly #now: () => number;

  constructor(options: LoginLimiterOptions) {
    this.#base = options.baseDelayMs;
    this.#max = Math.max(options.maxDelayMs ?? DEFAULT_MAX_DELAY_MS, options.baseDelayMs);
    this.#forgetMs = options.forgetMs ?? DEFAULT_FORGET_MS;
    this.#maxAddresses = Math.max(1, options.maxAddresses ?? DEFAULT_MAX_ADDRESSES);
    this.#now = options.now ?? (() => performance.now());
  }

  /** Addresses remembered right now. */
  get size(): number {
    return this.#entries.size;
  }

  /** How long the forgetting takes, for messages. */
  get forgetMs(): number {
    return this.#forgetMs;
  }

  /** Records a failed login from `address` and says how long to wait before answering it. */
  failed(address: string): FailedLogin {
    const now = this.#now();
    const entry = this.#entries.get(address);
    const failures = entry && now - entry.last < this.#forgetMs ? entry.failures + 1 : 1;
    // Deleted and set again: the map stays in the order of the last failure.
    this.#entries.delete(address);
    this.#makeRoom(now);
    this.#entries.set(address, { failures, last: now });
    return { failures, delayMs: this.delayOf(failures) };
  }

  /** The delay for an address's `failures`-th recent failure. */
  delayOf(failures: number): number {
    if (this.#base <= 0 || failures <= 0) return 0;
    // 2^30 is far beyond any cap; a larger exponent would only risk Infinity.
    return Math.min(this.#max, this.#base * 2 ** Math.min(failures - 1, 30));
  }

  /** Failures remembered for `address` (0 once forgotten). */
  failuresOf(address: string): number {
    const entry = this.#entries.get(address);
    return entry && this.#now() - entry.last < this.#forgetMs ? entry.failures : 0;
  }

  /** Drops forgotten addresses, then the oldest ones while the map is full. */
  #makeRoom(now: number): void {
    for (const [address, entry] of this.#entries) {
      if (now - entry.last < this.#forgetMs) break;
      this.#entries.delete(address);
    }
    for (const address of this.#entries.keys()) {
      if (this.#entries.size < this.#maxAddresses) break;
      this.#entries.delete(address);
    }
  }
}

/**
 * What failures are counted by: an IPv4 address as it is, an IPv6 address by its /64 network
 * (`2001:db8:0:1::/64`), an IPv4-mapped IPv6 address as the IPv4 address.
 */
export function addressKey(hostname: string): string {
  const ip = parseIp(hostname);
  if (ip === undefined) return hostname.replace(/^\[|\]$/g, "").replace(/%.*$/, "").toLowerCase();
  if (ip.version === 4) {
    return [24n, 16n, 8n, 0n].map((bits) => (ip.value >> bits) & 0xffn).join(".");
  }
  const network = [112n, 96n, 80n, 64n].map((bits) => ((ip.value >> bits) & 0xffffn).toString(16));
  return `${network.join(":")}::/64`;
}

export interface SlowedCheck<A> {
  /** What `check` returned: the account, or undefined for a failed login. */
  account: A | undefined;
  /** How long the attempt waited before the check. */
  waitedMs: number;
  /** The recorded failure, when the check failed. */
  failed?: FailedLogin;
}

/**
 * One login attempt from `address` (a client's hostname): waits the delay its recent failures
 * earned, then runs `check` (the password check), and records a failure when it returns
 * undefined. The failure is answered as soon as the check is done: the next attempt from the
 * address waits for it instead, so a client that hangs up gains nothing, and a user who retypes
 * a password pays the delay once (not after the failure and again before the next try).
 */
export async function checkSlowed<A>(
  limiter: LoginLimiter,
  address: string,
  check: () => Promise<A | undefined>,
  wait: (ms: number) => Promise<void>,
): Promise<SlowedCheck<A>> {
  const key = addressKey(address);
  const waitedMs = limiter.delayOf(limiter.failuresOf(key));
  if (waitedMs > 0) await wait(waitedMs);
  const account = await check();
  if (account !== undefined) return { account, waitedMs };
  return { account, waitedMs, failed: limiter.failed(key) };
}
