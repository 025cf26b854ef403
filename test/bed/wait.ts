/** The one polling wait of the tests: until a condition holds, or a clear error after a time. */

export interface WaitOptions {
  /** Give up after this long (default 5000 ms). */
  timeoutMs?: number;
  /** Pause between checks (default 50 ms); never past the deadline. */
  intervalMs?: number;
  /**
   * What is awaited, for the error: "timed out after N ms waiting for <what>". A function is
   * called only on timeout, so that the error can show the last state (a log, a screen).
   */
  what?: string | (() => string | Promise<string>);
}

/**
 * Resolves with the first result of `check` (sync or async) that is neither `false` nor
 * `undefined`; checks at once, then every `intervalMs`, and once more at the deadline. An
 * error thrown by `check` ends the wait with that error.
 */
export async function waitUntil<T>(
  check: () => T | false | undefined | Promise<T | false | undefined>,
  options: WaitOptions = {},
): Promise<T> {
  const { timeoutMs = 5000, intervalMs = 50, what = "a condition" } = options;
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const result = await check();
    if (result !== false && result !== undefined) return result;
    const left = deadline - Date.now();
    if (left <= 0) {
      const description = typeof what === "string" ? what : await what();
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${description}`);
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(intervalMs, left)));
  }
}
