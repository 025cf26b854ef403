/**
 * The bridge's credential `{ "user": "admin@contoso.com" }`: a user's cached sign-in, made
 * earlier by the program's own device-code or browser sign-in (`-DeviceCode`/`-redirectUri`
 * with `-LoginHint`) into the same token cache. The bridge only reads and renews it with the
 * refresh token (msal-node, silently); it never starts a sign-in. Without a cached sign-in it
 * stops at start (exit 3) and names the command that signs in.
 *
 * With a user's token, Exchange lets each account's mailbox be the user's own or one the user
 * has been given access to (FullAccess); it decides, the bridge does not check.
 */
import { lazy } from "../lazy.ts";
import { TokenError, UsageError } from "../errors.ts";
import { credentialId, TokenCache } from "../auth/cache.ts";
import { cacheFolderProblem, defaultCacheDir } from "../auth/cache_location.ts";
import { CLOUDS } from "../net/clouds.ts";
import { shown } from "../text.ts";
import type { BridgeConfig, BridgeCredential } from "./config.ts";
import { TokenSource } from "./token_source.ts";

export interface UserTokens {
  tokens: TokenSource;
  /** The cache file the sign-in is read from (for messages). */
  cachePath: string;
}

export interface UserCredentialOptions {
  /** Warnings of the token cache (a folder open to others, a corrupt file), one line each. */
  warn: (line: string) => void;
  /** Environment lookup for the default cache folder; default Deno.env.get. */
  env?: (name: string) => string | undefined;
}

/** The command a person runs once, as the account the bridge runs as, to sign in. */
export function signInCommand(config: BridgeConfig, user: string, cachePath?: string): string {
  const words = ["Get-IMAPAccessToken", "-tenantID", config.tenantId, "-clientId", config.clientId];
  if (config.cloud !== "Global") words.push("-Cloud", config.cloud);
  if (config.authorityHost !== CLOUDS[config.cloud].authorityHost) {
    words.push("-AuthorityHost", config.authorityHost);
  }
  if (cachePath !== undefined) words.push("-TokenCachePath", quoted(cachePath));
  words.push("-DeviceCode", "-LoginHint", user);
  return words.join(" ");
}

function quoted(path: string): string {
  return /^[\w./:\\-]+$/.test(path) ? path : `'${path.replaceAll("'", "'\\''")}'`;
}

/**
 * Opens the user's cached sign-in and checks that it exists (no network); UsageError (exit 2)
 * when no cache folder can be used, TokenError BRIDGE_SIGN_IN_REQUIRED (exit 3) when the sign-in is
 * missing. The token source renews with the refresh token and, after the server refused a
 * token, drops it from the cache and renews at once.
 */
export async function openUserTokens(
  config: BridgeConfig,
  credential: Extract<BridgeCredential, { kind: "user" }>,
  options: UserCredentialOptions,
): Promise<UserTokens> {
  const { user, tokenCachePath } = credential;
  const where = `-Bridge ${shown(config.path)}: credential.tokenCachePath`;
  const dir = tokenCachePath ?? defaultCacheDir(Deno.build.os, options.env ?? Deno.env.get);
  if (dir === null) {
    throw new UsageError(
      `${where}: no home folder is known, so the program's token cache cannot be found; give ` +
        "the folder the sign-in was saved in",
      { code: "BRIDGE_BAD_CONFIG" },
    );
  }
  if (tokenCachePath !== undefined) {
    const problem = cacheFolderProblem(tokenCachePath);
    if (problem) {
      throw new UsageError(`${where}: ${shown(tokenCachePath)} ${problem}`, {
        code: "BRIDGE_BAD_CONFIG",
      });
    }
  }
  const cache = await TokenCache.open(dir, {
    authorityHost: config.authorityHost,
    tenantId: config.tenantId,
    clientId: config.clientId,
    credential: await credentialId("user", "user"),
  }, {
    warn: options.warn,
    // Only the default folder is the program's own; a named folder's mode is never changed.
    ownFolder: tokenCachePath === undefined,
  });
  const target = {
    authorityHost: config.authorityHost,
    tenantId: config.tenantId,
    clientId: config.clientId,
    caCerts: config.caCerts,
    timeoutMs: config.timeouts.upstreamMs,
  };
  const { acquireCachedUserToken, hasCachedSignIn } = await lazy<typeof import("../auth/user.ts")>(
    "auth/user.ts",
  );
  // A fresh plugin per msal application: it remembers what it handed to msal.
  if (!(await hasCachedSignIn({ ...target, cachePlugin: cache.msalPlugin() }, user))) {
    throw new TokenError(
      `-Bridge ${shown(config.path)}: no cached sign-in of ${user} for app ${config.clientId} ` +
        `in ${cache.dir}; sign in once, as the account the bridge runs as, with: ` +
        signInCommand(config, user, tokenCachePath),
      { code: "BRIDGE_SIGN_IN_REQUIRED" },
    );
  }
  const scopes = [`${config.resource}/.default`];
  const renewal = `the cached sign-in of ${user} cannot be renewed`;
  let forceRefresh = false;
  let forgetting: Promise<unknown> = Promise.resolve();
  const tokens = new TokenSource({
    fetch: async () => {
      await forgetting;
      const force = forceRefresh;
      forceRefresh = false;
      try {
        // The program's fast entries first, as its own runs read them (no msal, no request).
        const fast = force ? null : await cache.readFast(scopes, { user });
        if (fast) {
          return {
            accessToken: fast.accessToken,
            expiresOn: new Date(fast.expiresOn * 1000),
            fromCache: true,
          };
        }
        const result = await acquireCachedUserToken({
          ...target,
          cachePlugin: cache.msalPlugin(),
          user,
          scopes,
          forceRefresh: force,
        });
        if (result.expiresOn) {
          await cache.writeFast({
            accessToken: result.accessToken,
            expiresOn: Math.floor(result.expiresOn.getTime() / 1000),
            scopes,
            username: result.username,
            kind: "user",
          });
        }
        return result;
      } catch (error) {
        if (!(error instanceof TokenError)) throw error;
        if (error.code === "SIGN_IN_REQUIRED") {
          throw new TokenError(
            `${error.message} any more; sign in again with: ` +
              signInCommand(config, user, tokenCachePath),
            { code: "BRIDGE_SIGN_IN_REQUIRED", cause: error },
          );
        }
        if (error.message.startsWith(`${renewal}: `)) {
          // The command before the reason: the session log keeps only a line's start.
          throw new TokenError(
            `${renewal}; sign in again with: ${signInCommand(config, user, tokenCachePath)} ` +
              `(${error.message.slice(renewal.length + 2)})`,
            { code: error.code, cause: error },
          );
        }
        throw error;
      }
    },
    onRefused: (token) => {
      // The server refused it: no run (bridge or program) may be served it again.
      forceRefresh = true;
      forgetting = cache.forget(token);
    },
  });
  return { tokens, cachePath: cache.path };
}
