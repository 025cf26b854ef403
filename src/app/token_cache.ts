/**
 * The run's token cache: its folder, this app's and credential's file in it, and the entry a
 * run may use. The token flow (token_flow.ts) and the cached-token path (cached_token.ts) both
 * look through here, so they find the same entry by the same rules.
 */
import { isUserSignIn, type Options, scopesFor } from "../cli/options.ts";
import { credentialId, type FastEntry, TokenCache } from "../auth/cache.ts";
import { defaultCacheDir } from "../auth/cache_location.ts";
import { type FileReader, fileReader } from "../auth/cert_file_reader.ts";
import { CERT, KEY_FILE } from "../auth/certificate_types.ts";

/** A cached token with less left than this is not used: the mail login may take a while. */
const MIN_VALIDITY_SECONDS = 300;

/** The cache folder, or null: -NoTokenCache, or no home folder known. */
export function cacheFolder(
  options: Options,
  env: (name: string) => string | undefined,
): string | null {
  if (options.noTokenCache) return null;
  return options.tokenCachePath ?? defaultCacheDir(Deno.build.os, env);
}

/**
 * The cache key's credential part: a one-way hash, so the cache never holds the secret.
 * `secret` is the client secret as read (secret set only).
 */
async function cacheCredential(
  options: Options,
  secret: string | undefined,
  read: FileReader | undefined,
): Promise<string> {
  if (secret !== undefined) return await credentialId("secret", secret);
  switch (options.parameterSet) {
    case "clientcredentialsCertificate": {
      const { value, keyFile } = options.certificate;
      try {
        // The same reader as the certificate's load: each file is read once, bounded.
        const reader = read ?? fileReader(options.timeoutSeconds * 1000);
        const bytes = await reader(value, CERT);
        const key = keyFile ? await reader(keyFile, KEY_FILE) : [];
        return await credentialId("certificate-file", new Uint8Array([...bytes, ...key]));
      } catch {
        // Not a file: a thumbprint (certificate.ts validates it later).
        return await credentialId("thumbprint", value.replace(/[^0-9a-f]/gi, "").toUpperCase());
      }
    }
    default:
      return await credentialId("user", "user");
  }
}

/** The cache of this run's app and credential in `dir` (no file is read yet). */
export async function openTokenCache(
  options: Options,
  dir: string,
  credential: {
    /** The client secret as read (secret set). */
    secret?: string;
    /** The run's certificate file reader (certificate set): files are read once. */
    read?: FileReader;
    warn: (message: string) => void;
    /** Change nothing (TokenCacheOptions.lookOnly). */
    lookOnly?: boolean;
  },
): Promise<TokenCache> {
  return await TokenCache.open(dir, {
    authorityHost: options.authorityHost,
    tenantId: options.tenantId,
    clientId: options.clientId,
    credential: await cacheCredential(options, credential.secret, credential.read),
  }, {
    warn: credential.warn,
    // Only the default folder is the tool's own; -TokenCachePath's mode is never changed.
    ownFolder: options.tokenCachePath === undefined,
    lookOnly: credential.lookOnly,
  });
}

/** The cached token this run may use (its scopes, its user, long enough valid), or null. */
export async function cachedEntry(cache: TokenCache, options: Options): Promise<FastEntry | null> {
  return await cache.readFast(scopesFor(options), {
    user: isUserSignIn(options) ? options.loginHint : undefined,
    minValiditySeconds: MIN_VALIDITY_SECONDS,
  });
}
