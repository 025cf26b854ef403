/**
 * A cross-process lock file: `acquireLock(path)` creates `path` exclusively (O_EXCL) with a
 * random claim as its content, and the returned release removes it only if the claim is
 * still ours. A lock file older than `STALE_LOCK_MS` was left by a process that died
 * holding it and is broken; waiting for a live holder ends after `timeoutMs`.
 *
 * Like the token cache that uses it, this module imports nothing but Deno's built-ins: it
 * is on the fast path of every run.
 */

/** A lock file older than this was left by a process that died holding it. */
export const STALE_LOCK_MS = 10_000;
/** How long `acquireLock` waits for another process's lock by default. */
export const DEFAULT_LOCK_TIMEOUT_MS = 3_000;

export interface LockOptions {
  /** How long to wait for a lock held by someone else; default `DEFAULT_LOCK_TIMEOUT_MS`. */
  timeoutMs?: number;
  /**
   * Told when a stale lock was broken:
   * `removed a stale lock PATH (older than 10 s; its process probably died)`.
   */
  onWarn?: (message: string) => void;
}

/** Releases a lock; never throws (a lock already gone or taken over is left alone). */
export type ReleaseLock = () => Promise<void>;

/** `bytes` random bytes as lower-case hex: lock claims and unique temporary names. */
export function randomHex(bytes: number): string {
  return Array.from(
    crypto.getRandomValues(new Uint8Array(bytes)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function isStale(info: Deno.FileInfo): boolean {
  return info.mtime !== null && Date.now() - info.mtime.getTime() > STALE_LOCK_MS;
}

/** Errors that mean "someone else holds the lock" when creating the lock file. */
function lockIsBusy(error: unknown): boolean {
  // Windows refuses to create a file whose previous copy is still being deleted.
  return error instanceof Deno.errors.AlreadyExists ||
    (Deno.build.os === "windows" && error instanceof Deno.errors.PermissionDenied);
}

/**
 * Takes the lock file `path` (its folder must exist): the release function, or null when
 * another process still holds it after `timeoutMs`. Throws only for errors other than a
 * busy lock (e.g. a missing folder).
 */
export async function acquireLock(
  path: string,
  options: LockOptions = {},
): Promise<ReleaseLock | null> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
  const warn = options.onWarn ?? (() => {});
  const claim = `${Deno.pid} ${Date.now()} ${randomHex(8)}`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await Deno.writeTextFile(path, claim, { createNew: true, mode: 0o600 });
      return () => release(path, claim);
    } catch (error) {
      if (!lockIsBusy(error)) throw error;
    }
    const left = deadline - Date.now();
    if (left <= 0) return null;
    if (await breakStaleLock(path, warn)) continue;
    // Jitter keeps a crowd of waiting processes from retrying in lockstep.
    await sleep(Math.min(left, 2 + Math.random() * 18));
  }
}

/** Releases the lock only if it is still ours (a stale-lock breaker may have taken it). */
async function release(path: string, claim: string): Promise<void> {
  try {
    if ((await Deno.readTextFile(path)) === claim) await Deno.remove(path);
  } catch {
    // Already gone: nothing to release.
  }
}

/**
 * Removes a lock left by a crashed process; true when the caller should retry at once. The
 * lock is first renamed aside, so that of two processes seeing the same stale lock only one
 * removes it; if what was moved turns out to be fresh (taken in between by a third), it is
 * put back.
 */
async function breakStaleLock(path: string, warn: (message: string) => void): Promise<boolean> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (error) {
    return error instanceof Deno.errors.NotFound;
  }
  if (!isStale(info)) return false;
  const aside = `${path}.${randomHex(8)}.stale`;
  try {
    await Deno.rename(path, aside);
  } catch (error) {
    return error instanceof Deno.errors.NotFound;
  }
  try {
    if (isStale(await Deno.stat(aside))) {
      warn(
        `removed a stale lock ${path} (older than ` +
          `${STALE_LOCK_MS / 1000} s; its process probably died)`,
      );
    } else {
      // link() fails if the path exists again, so a newer lock is never overwritten.
      await Deno.link(aside, path).catch(() => {});
    }
  } finally {
    await Deno.remove(aside).catch(() => {});
  }
  return true;
}
