/**
 * Where the token cache lives by default: the per-user cache folder each
 * platform designates for data that can be rebuilt (a lost cache only costs
 * one token request), never a shared or temporary folder, because the file
 * holds access and refresh tokens.
 */

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
