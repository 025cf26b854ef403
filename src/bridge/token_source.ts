/**
 * One app token shared by every bridge session: fetched on first use, renewed a while before it
 * expires, and dropped when the upstream server refused it (the next session gets a fresh one).
 * Concurrent callers share one request, so fifty sessions starting at once cost one token
 * request.
 */

export interface FetchedToken {
  accessToken: string;
  /** null = unknown; then the token is renewed after `unknownLifetimeMs`. */
  expiresOn: Date | null;
  /**
   * Read from a token cache, not just issued (a user credential): not counted as a request, and
   * a refused one is worth one retry with a fresh token.
   */
  fromCache?: boolean;
}

export interface TokenSourceOptions {
  fetch: () => Promise<FetchedToken>;
  /** Renew this long before `expiresOn`; default 5 minutes. */
  renewBeforeMs?: number;
  /** Lifetime assumed when the token's expiry is unknown; default 30 minutes. */
  unknownLifetimeMs?: number;
  now?: () => number;
  /** Told when the server refused a current token (e.g. to drop it from a token cache). */
  onRefused?: (token: string) => void;
}

export class TokenSource {
  #current: { token: string; renewAt: number } | undefined;
  #pending: Promise<string> | undefined;
  #requests = 0;
  readonly #options:
    & Required<Omit<TokenSourceOptions, "fetch" | "onRefused">>
    & Pick<TokenSourceOptions, "fetch" | "onRefused">;

  constructor(options: TokenSourceOptions) {
    this.#options = {
      renewBeforeMs: 5 * 60_000,
      unknownLifetimeMs: 30 * 60_000,
      now: () => Date.now(),
      ...options,
    };
  }

  /** Token requests made so far (tokens read from a cache do not count). */
  get requests(): number {
    return this.#requests;
  }

  /** A token that is not about to expire; rejects with the token request's error. */
  get(): Promise<string> {
    const current = this.#current;
    if (current && this.#options.now() < current.renewAt) return Promise.resolve(current.token);
    if (this.#pending) return this.#pending;
    this.#requests++;
    const pending = this.#options.fetch().then((fetched) => {
      if (fetched.fromCache) this.#requests--;
      const now = this.#options.now();
      const expires = fetched.expiresOn?.getTime() ?? now + this.#options.unknownLifetimeMs;
      // A short-lived token is still used for half its life rather than renewed on every call.
      const renewAt = Math.max(expires - this.#options.renewBeforeMs, now + (expires - now) / 2);
      this.#current = { token: fetched.accessToken, renewAt };
      return fetched.accessToken;
    }).finally(() => {
      if (this.#pending === pending) this.#pending = undefined;
    });
    this.#pending = pending;
    return pending;
  }

  /** The upstream server refused `token`: forget it unless a newer one replaced it already. */
  refused(token: string): void {
    if (this.#current?.token !== token) return;
    this.#current = undefined;
    this.#options.onRefused?.(token);
  }
}
