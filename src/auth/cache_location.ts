/**
 * Where the token cache lives by default: the per-user cache folder each
 * platform designates for data that can be rebuilt (a lost cache only costs
 * one token request), never a shared or temporary folder, because the file
 * holds access and refresh tokens.
 */

import { modeText } from "./cache.ts";
import { messageOf } from "../errors.ts";

export const CACHE_FOLDER_NAME = "get-imapaccesstoken";

/**
 * The default cache folder for `os`, reading environment variables through
 * `env` (pass `Deno.env.get`; tests pass a map). Returns null when the
 * environment names no home folder: the caller then runs without a cache
 * rather than guessing a location that other users might be able to read.
 */
export function defaultCacheDir(
  os: typeof Deno.build.os,
  env: (name: string) => string | undefined,
): string | null {
  const value = (name: string) => {
    const v = env(name);
    return v === undefined || v === "" ? undefined : v;
  };
  if (os === "windows") {
    const profile = value("USERPROFILE");
    const local = value("LOCALAPPDATA") ??
      (profile ? joinWindows(profile, "AppData\\Local") : undefined);
    return local ? joinWindows(local, CACHE_FOLDER_NAME) : null;
  }
  const home = value("HOME");
  if (os === "darwin") {
    return home ? joinPosix(home, `Library/Caches/${CACHE_FOLDER_NAME}`) : null;
  }
  // Linux and the other Unix systems follow the XDG base directory spec,
  // which says a relative XDG_CACHE_HOME is invalid and must be ignored.
  const xdg = value("XDG_CACHE_HOME");
  if (xdg?.startsWith("/")) return joinPosix(xdg, CACHE_FOLDER_NAME);
  return home ? joinPosix(home, `.cache/${CACHE_FOLDER_NAME}`) : null;
}

function joinPosix(base: string, rest: string): string {
  return `${base.replace(/\/+$/, "")}/${rest}`;
}

function joinWindows(base: string, rest: string): string {
  return `${base.replace(/[\\/]+$/, "")}\\${rest}`;
}

/**
 * Why the folder named by -TokenCachePath must not hold tokens, or null when it
 * may: a folder that exists and is open to other users (`/tmp`, a home folder
 * at 0755). The tool never changes the mode of a folder it did not create,
 * so such a folder is refused; a folder that does not exist yet is fine (it
 * is created owner-only). Symbolic links are followed: what counts is the
 * folder the files would land in. Windows has no mode bits (its per-user
 * folders are private by ACL).
 */
export function cacheFolderProblem(path: string): string | null {
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    return `cannot be checked (${messageOf(error)})`;
  }
  if (!info.isDirectory) return "is not a folder";
  if (info.mode === null || (info.mode & 0o077) === 0) return null;
  return `is open to other users (mode ${modeText(info.mode)}); the tool never changes the ` +
    "mode of an existing folder: give a folder only you can open, or a new one (it is " +
    "created owner-only)";
}
