/**
 * Getting the access token for a run: the cache's fast path first (no
 * msal-node, no network), then the parameter set's flow through msal with
 * the cache plugged in, then the fast entry is recorded for the next run.
 */
import { lazy } from "../lazy.ts";
import {
  type AppOptions,
  type CertificateOptions,
  connects,
  isUserSignIn,
  type Options,
  scopesFor,
} from "../cli/options.ts";
import { InternalError, UsageError } from "../errors.ts";
import type { AppCredential } from "../auth/token.ts";
import type { DeviceCodeInfo, UserSignIn } from "../auth/user.ts";
import type { TokenCache } from "../auth/cache.ts";
import { cachedEntry, cacheFolder, openTokenCache } from "./token_cache.ts";
import { readSecret } from "./secret.ts";
import { base64url } from "../base64.ts";
import type { Reporter } from "../output/console.ts";
import { mark } from "../trace.ts";
import { describeProxy } from "../net/proxy_choice.ts";
import { type FileReader, fileReader } from "../auth/cert_file_reader.ts";

export type SignIn = "clientCredentials" | UserSignIn | "cache";

export interface RunEnvironment {
  /** Standard input as a stream (for `-clientsecret -`; read bounded in size and time). */
  stdin(): ReadableStream<Uint8Array>;
  /** One line of standard input, or null at its end (for the paste flow). */
  readLine(): Promise<string | null>;
  /** True when a person can answer: standard input is a terminal. */
  interactive: boolean;
  env(name: string): string | undefined;
  openBrowser(url: string): Promise<boolean>;
}

export interface Acquired {
  accessToken: string;
  expiresOn: Date | null;
  fromCache: boolean;
  signIn: SignIn;
  /** The signed-in user (user sets). */
  username?: string;
  /** The device-code instructions shown, when that sign-in ran (JSON `deviceCode`). */
  deviceCode?: DeviceCodeInfo;
  /** Removes this token from the cache: it proved unusable, the next run must get a fresh one. */
  forget?: () => Promise<void>;
}

/** The app's credential: the secret read before the cache lookup, or the certificate loaded now. */
async function appCredential(
  options: AppOptions,
  secret: string | undefined,
  reporter: Reporter,
  read: FileReader | undefined,
): Promise<AppCredential> {
  if (options.parameterSet === "clientcredentialsCertificate") {
    const certificate = await loadCertificateFor(options, reporter, read);
    return certificate.source === "store"
      ? { kind: "store", certificate }
      : { kind: "certificate", certificate };
  }
  if (secret === undefined) throw new InternalError("the client secret was not read");
  return { kind: "secret", secret };
}

/** What advice about a refused certificate shows: its thumbprints as Windows and Entra show them. */
export interface CertificateFacts {
  /** Upper-case hex. */
  sha1: string;
  /** base64url, as Entra's AADSTS700027 message and the portal show it. */
  sha256: string;
}

async function loadCertificateFor(
  options: CertificateOptions,
  reporter: Reporter,
  read: FileReader | undefined,
) {
  // Loaded only for this set: it pulls in node:crypto (~40 ms of start-up).
  const { loadCertificate } = await lazy<typeof import("../auth/certificate.ts")>(
    "auth/certificate.ts",
  );
  const certificate = await loadCertificate({
    ...options.certificate,
    timeoutMs: options.timeoutSeconds * 1000,
    read,
  });
  if (certificate.source !== "store") {
    reporter.always.add(certificate.privateKeyPem, "<private key>");
  }
  for (const w of certificate.warnings) reporter.warning(w);
  const where = certificate.source === "store"
    ? `the certificate store ${certificate.store} (through ${certificate.powershell})`
    : certificate.path;
  reporter.verboseLine(
    `Certificate ${certificate.subject} from ${where}, SHA-1 ${certificate.thumbprintSha1}, ` +
      `SHA-256 ${facts(certificate).sha256}`,
  );
  return certificate;
}

function facts(
  certificate: { thumbprintSha1: string; thumbprintSha256: string },
): CertificateFacts {
  const bytes = certificate.thumbprintSha256.match(/../g)?.map((h) => parseInt(h, 16)) ?? [];
  return { sha1: certificate.thumbprintSha1, sha256: base64url(new Uint8Array(bytes)) };
}

/** Looks at the run's inputs on the way (diagnostics); never changes them. */
export interface TokenHooks {
  /** The client secret as read, just before it is sent to Entra ID (not on a cache hit). */
  beforeSecretSent?(secret: string): void;
  /** Whitespace around the client secret was removed (advice on a refusal says so). */
  secretTrimmed?(): void;
  /** An app token is about to be requested from Entra ID (not on a cache hit). */
  beforeTokenRequest?(): void;
  /**
   * The certificate's thumbprints, as soon as it is loaded (before the request), so that advice
   * about a refusal can name them.
   */
  certificateLoaded?(facts: CertificateFacts): void;
}

export async function acquireToken(
  options: Options,
  reporter: Reporter,
  env: RunEnvironment,
  hooks: TokenHooks = {},
): Promise<Acquired> {
  if (options.parameterSet === "clientcredentialsCertificate") {
    reporter.always.add(options.certificate.password, "<certificate password>");
  }
  for (const proxy of [options.proxy, options.tokenProxy?.url]) {
    if (!proxy?.password) continue;
    reporter.always.add(decodeURIComponent(proxy.password), "<proxy password>");
    reporter.always.add(proxy.password, "<proxy password>");
  }
  if (options.tokenProxy) {
    reporter.verboseLine(`Token request through ${describeProxy(options.tokenProxy)}.`);
  }
  const given = options.parameterSet === "clientcredentialsSecret"
    ? await readSecret(options, env)
    : undefined;
  const secret = given?.secret;
  if (given?.trimmed) {
    reporter.warning("-clientsecret: whitespace around the value was removed");
    hooks.secretTrimmed?.();
  }
  // Certificate and key files are read once, bounded and within -TimeoutSeconds (FIFOs too).
  const read = options.parameterSet === "clientcredentialsCertificate"
    ? fileReader(options.timeoutSeconds * 1000)
    : undefined;
  reporter.always.add(secret, "<client secret>");
  const scopes = scopesFor(options);
  const user = isUserSignIn(options) ? options.loginHint : undefined;
  const target = {
    authorityHost: options.authorityHost,
    tenantId: options.tenantId,
    clientId: options.clientId,
    caCerts: options.caCerts,
    timeoutMs: options.timeoutSeconds * 1000,
    proxy: options.proxy,
    proxyRoute: options.tokenProxy,
    onVerbose: (m: string) => reporter.verboseLine(m),
  };

  let cache: TokenCache | undefined;
  const dir = cacheFolder(options, env.env);
  if (!options.noTokenCache && dir === null) {
    reporter.warning("no home folder known: the token cache is off (give -TokenCachePath)");
  }
  if (dir !== null) {
    cache = await openTokenCache(options, dir, { secret, read, warn: (m) => reporter.warning(m) });
    const fast = await cachedEntry(cache, options);
    if (fast) {
      mark("token-cached");
      reporter.verboseLine(`Token from the cache ${cache.path}`);
      return {
        accessToken: fast.accessToken,
        expiresOn: new Date(fast.expiresOn * 1000),
        fromCache: true,
        signIn: "cache",
        username: fast.username,
        forget: forgetIn(cache, fast.accessToken, reporter),
      };
    }
  }

  let acquired: Acquired;
  if (isUserSignIn(options)) {
    // Loaded only when a token must be requested: a cached token needs none of it.
    const { acquireUserToken } = await lazy<typeof import("../auth/user.ts")>("auth/user.ts");
    const result = await acquireUserToken({
      ...target,
      cachePlugin: cache?.msalPlugin(),
      flow: options.parameterSet === "devicecode"
        ? { mode: "devicecode" }
        : { mode: "authorizationcode", redirectUri: options.redirectUri },
      loginHint: options.loginHint,
      scopes,
      // Token-only output runs unattended (a script or a mail client's token command).
      canSignIn: env.interactive || connects(options),
      interactive: env.interactive,
      ui: {
        openBrowser: (url) => env.openBrowser(url),
        askForRedirectedAddress: async (url) => {
          reporter.prompt(
            `Open this address in a browser and sign in:\n${url}\n` +
              "Then paste the address the browser ended on (even if the page shows an error):",
          );
          const line = await env.readLine();
          if (line === null) {
            throw new UsageError("-redirectUri: no address was pasted (standard input ended).", {
              code: "NO_INPUT",
            });
          }
          return line;
        },
        deviceCode: (info) => reporter.deviceCode(info),
        waiting: (active) => reporter.waiting(active),
        progress: (m) => reporter.progress(m),
        notice: (m) => reporter.prompt(m),
      },
    });
    acquired = result;
  } else {
    const credential = await appCredential(options, secret, reporter, read);
    try {
      if (credential.kind !== "secret") hooks.certificateLoaded?.(facts(credential.certificate));
      if (secret !== undefined) hooks.beforeSecretSent?.(secret);
      reporter.progress(
        `Get access token from ${options.authorityHost}/${options.tenantId} ` +
          `(client credentials, ${credential.kind === "secret" ? "secret" : "certificate"}).`,
      );
      hooks.beforeTokenRequest?.();
      mark("token-request");
      const { acquireAppToken } = await lazy<typeof import("../auth/token.ts")>("auth/token.ts");
      // App tokens are cached by the fast list alone (written below); msal is not involved.
      const result = await acquireAppToken({
        ...target,
        credential,
        scopes,
      });
      acquired = { ...result, signIn: "clientCredentials" };
      mark("token");
    } finally {
      // The store's PowerShell signer lives exactly as long as the token request.
      if (credential.kind === "store") await credential.certificate.signer.close();
    }
  }
  if (cache && acquired.expiresOn) {
    await cache.writeFast({
      accessToken: acquired.accessToken,
      expiresOn: Math.floor(acquired.expiresOn.getTime() / 1000),
      scopes,
      username: acquired.username ?? user,
      kind: isUserSignIn(options) ? "user" : "app",
    });
  }
  return cache
    ? { ...acquired, forget: forgetIn(cache, acquired.accessToken, reporter) }
    : acquired;
}

function forgetIn(cache: TokenCache, accessToken: string, reporter: Reporter) {
  return async () => {
    if (await cache.forget(accessToken)) {
      reporter.verboseLine(`Removed the unusable token from the cache ${cache.path}`);
    }
  };
}
