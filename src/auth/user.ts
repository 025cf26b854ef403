/**
 * Delegated (user) tokens with msal-node's PublicClientApplication: the
 * original's `authorizationcode` set (loopback browser sign-in, or the paste
 * flow for other redirect URIs), device-code sign-in, and silent renewal with
 * a cached refresh token.
 */
import { receivedCode, TokenError } from "../errors.ts";
import {
  aadstsCode,
  entraDescription,
  msalSetup,
  type MsalTarget,
  tokenResultOf,
  toTokenError,
} from "./msal_common.ts";
import type { FetchNetworkClient } from "./network.ts";
import type { TokenResult } from "./token.ts";

export type UserSignIn = "interactive" | "authorizationCodePaste" | "deviceCode" | "refreshToken";

export interface DeviceCodeInfo {
  verificationUri: string;
  userCode: string;
  message: string;
  expiresInSeconds: number;
}

/** What the flows need from the person at the keyboard; run.ts provides it. */
export interface SignInUi {
  /** Opens the sign-in page in a browser; false when no browser could be started. */
  openBrowser(url: string): Promise<boolean>;
  /** Shows the URL to open by hand and returns the address the browser ended on. */
  askForRedirectedAddress(url: string): Promise<string>;
  deviceCode(info: DeviceCodeInfo): void;
  /** Starts/stops a waiting indicator (only drawn on a terminal). */
  waiting(active: boolean): void;
  progress(message: string): void;
  /** Something the person must read whatever the output format (like the device code). */
  notice(message: string): void;
}

export interface UserTokenRequest extends MsalTarget {
  /** Which sign-in runs when no cached sign-in can be renewed. */
  flow: { mode: "devicecode" } | { mode: "authorizationcode"; redirectUri: string };
  loginHint?: string;
  scopes: string[];
  /** False when nobody can sign in now (no terminal, token-only output): never start a sign-in. */
  canSignIn: boolean;
  /**
   * True when standard input is a terminal. Without one, an address cannot be pasted by a
   * person: when no browser can be opened either, the sign-in is a device code instead (as
   * MSAL.PS did on machines without a browser).
   */
  interactive: boolean;
  ui: SignInUi;
}

export interface UserTokenResult extends TokenResult {
  username: string;
  signIn: UserSignIn;
  deviceCode?: DeviceCodeInfo;
}

/** True for redirect URIs msal's own loopback listener can serve. */
export function isLoopbackRedirect(uri: string): boolean {
  try {
    const url = new URL(uri);
    return url.protocol === "http:" &&
      ["localhost", "127.0.0.1", "[::1]"].includes(url.hostname);
  } catch {
    return false;
  }
}

/** Reads `code`/`state` or Entra's `error` from the address the browser ended on. */
export function parseRedirectedAddress(
  address: string,
  expectedState: string,
): { code: string } {
  let url: URL;
  try {
    url = new URL(address.trim());
  } catch (cause) {
    throw new TokenError("the pasted text is not the address from the browser's address bar", {
      code: "BAD_REDIRECT_ADDRESS",
      cause,
    });
  }
  // Entra answers in the query; some redirect targets move it into the fragment.
  const params = new URLSearchParams(url.search || url.hash.replace(/^#/, ""));
  const error = params.get("error");
  if (error) {
    const description = (params.get("error_description") ?? error).replace(/\s+/g, " ").trim();
    throw new TokenError(`sign-in failed: ${description.split(/ Trace ID:/)[0]}`, {
      code: aadstsCode({ errorMessage: description }) ?? receivedCode(error),
    });
  }
  const code = params.get("code");
  if (!code) {
    throw new TokenError("the pasted address carries no authorization code", {
      code: "BAD_REDIRECT_ADDRESS",
    });
  }
  if (params.get("state") !== expectedState) {
    throw new TokenError(
      "the pasted address belongs to another sign-in (state does not match); start again",
      { code: "STATE_MISMATCH" },
    );
  }
  return { code };
}

type Msal = typeof import("@azure/msal-node");
type App = InstanceType<Msal["PublicClientApplication"]>;

/** msal's public client for `target` (our HTTP client, authority, cache plugin) and its setup. */
async function publicClient(
  target: MsalTarget,
): Promise<{ msal: Msal; app: App; setup: MsalSetup }> {
  const msal = await import("@azure/msal-node");
  const setup = msalSetup(target);
  const app = new msal.PublicClientApplication({
    auth: setup.auth,
    system: setup.system,
    cache: setup.cache,
  });
  return { msal, app, setup };
}

type MsalSetup = ReturnType<typeof msalSetup>;

function sameUser(a: string | undefined, b: string | undefined): boolean {
  return !!a && !!b && a.toLowerCase() === b.toLowerCase();
}

/** The cached sign-in of `user` (any, without one) in msal's cache, or undefined. */
async function cachedAccount(app: App, user: string | undefined) {
  const accounts = await app.getTokenCache().getAllAccounts();
  return user ? accounts.find((a) => sameUser(a.username, user)) : accounts[0];
}

async function silent(app: App, request: UserTokenRequest) {
  const account = await cachedAccount(app, request.loginHint);
  if (!account) return null;
  return await app.acquireTokenSilent({ account, scopes: request.scopes });
}

/** No browser could be opened and nobody can paste: the caller switches to a device code. */
class NoBrowser extends Error {
  override readonly name = "NoBrowser";
}

const DEVICE_CODE_INSTEAD = "No browser could be opened and standard input is not a terminal: " +
  "signing in with a device code instead.";

async function pasteFlow(msal: Msal, app: App, request: UserTokenRequest, redirectUri: string) {
  const crypto = new msal.CryptoProvider();
  const pkce = await crypto.generatePkceCodes();
  const state = crypto.createNewGuid();
  const url = await app.getAuthCodeUrl({
    scopes: request.scopes,
    redirectUri,
    codeChallenge: pkce.challenge,
    codeChallengeMethod: "S256",
    state,
    loginHint: request.loginHint,
  });
  // The browser shows the sign-in page; the person copies the address it ends on from there.
  const opened = await request.ui.openBrowser(url);
  if (!opened && !request.interactive) throw new NoBrowser();
  const address = await request.ui.askForRedirectedAddress(url);
  const { code } = parseRedirectedAddress(address, state);
  return await app.acquireTokenByCode({
    code,
    scopes: request.scopes,
    redirectUri,
    codeVerifier: pkce.verifier,
    state,
  });
}

/** msal's loopback listener waits forever; a sign-in left alone ends after this. */
const SIGN_IN_LIMIT_MS = 10 * 60 * 1000;

async function withinSignInLimit<T>(work: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() =>
      reject(
        new TokenError(`no sign-in completed within ${SIGN_IN_LIMIT_MS / 60000} minutes`, {
          code: "SIGN_IN_TIMEOUT",
        }),
      ), SIGN_IN_LIMIT_MS);
  });
  try {
    return await Promise.race([work, limit]);
  } finally {
    clearTimeout(timer);
  }
}

async function loopbackFlow(app: App, request: UserTokenRequest, redirectUri: string) {
  const port = Number(new URL(redirectUri).port) || undefined;
  return await withinSignInLimit(app.acquireTokenInteractive({
    scopes: request.scopes,
    loginHint: request.loginHint,
    preferredPort: port,
    successTemplate:
      "<h1>Signed in.</h1><p>You can close this window and return to the terminal.</p>",
    errorTemplate: "<h1>Sign-in failed.</h1><p>See the terminal for details.</p>",
    openBrowser: async (url: string) => {
      request.ui.progress("Sign in with the browser that opens now.");
      if (!(await request.ui.openBrowser(url))) {
        // Nobody at a terminal will open the address by hand: msal would wait for nothing.
        if (!request.interactive) throw new NoBrowser();
        request.ui.progress(`No browser could be started. Open this address to sign in:\n${url}`);
      }
      request.ui.waiting(true);
    },
  }));
}

async function deviceCodeFlow(
  app: App,
  request: UserTokenRequest,
  seen: { info?: DeviceCodeInfo },
  network: FetchNetworkClient,
) {
  // msal calls back even when Entra refused the device-code request (all fields
  // undefined) and then polls with no code, which fails with a misleading
  // error. Entra's real answer is the error body of that first request.
  let refusal: { error?: string; error_description?: string } | undefined;
  try {
    return await app.acquireTokenByDeviceCode({
      scopes: request.scopes,
      deviceCodeCallback: (response) => {
        if (!response.userCode || !response.verificationUri) {
          refusal = network.lastErrorBody;
          return;
        }
        seen.info = {
          verificationUri: response.verificationUri,
          userCode: response.userCode,
          message: response.message,
          expiresInSeconds: response.expiresIn,
        };
        request.ui.deviceCode(seen.info);
        request.ui.waiting(true);
      },
    });
  } catch (error) {
    if (refusal?.error_description) {
      throw new TokenError(
        `Entra ID refused the device-code sign-in: ${entraDescription(refusal.error_description)}`,
        {
          code: aadstsCode({ errorMessage: refusal.error_description }) ??
            receivedCode(refusal.error),
          cause: error,
        },
      );
    }
    throw error;
  }
}

/** Gets a user token: cached refresh token first, then a sign-in if one is possible. */
export async function acquireUserToken(request: UserTokenRequest): Promise<UserTokenResult> {
  const { msal, app, setup } = await publicClient(request);
  const seen: { info?: DeviceCodeInfo } = {};
  let signIn: UserSignIn = "refreshToken";
  try {
    let result = null;
    try {
      result = await silent(app, request);
    } catch (error) {
      if (!request.canSignIn) {
        const reason = toTokenError(error, setup.network, request.timeoutMs);
        throw new TokenError(
          `the cached sign-in cannot be renewed (${reason.message}) and no sign-in is possible ` +
            "here (no terminal, or token-only output); run once interactively to sign in again",
          { code: reason.code ?? "REFRESH_FAILED", cause: error },
        );
      }
      request.ui.progress("The cached sign-in cannot be renewed; signing in again.");
    }
    if (!result) {
      if (!request.canSignIn) {
        throw new TokenError(
          "no cached sign-in for this user, and no sign-in is possible here (no terminal, or " +
            "token-only output); run once interactively to sign in",
          { code: "SIGN_IN_REQUIRED" },
        );
      }
      const flow = request.flow;
      if (flow.mode === "devicecode") {
        signIn = "deviceCode";
        result = await deviceCodeFlow(app, request, seen, setup.network);
      } else {
        try {
          if (isLoopbackRedirect(flow.redirectUri)) {
            signIn = "interactive";
            result = await loopbackFlow(app, request, flow.redirectUri);
          } else {
            signIn = "authorizationCodePaste";
            result = await pasteFlow(msal, app, request, flow.redirectUri);
          }
        } catch (error) {
          if (!(error instanceof NoBrowser)) throw error;
          request.ui.notice(DEVICE_CODE_INSTEAD);
          signIn = "deviceCode";
          result = await deviceCodeFlow(app, request, seen, setup.network);
        }
      }
    }
    return {
      ...tokenResultOf(result),
      username: result?.account?.username ?? request.loginHint ?? "",
      signIn,
      deviceCode: seen.info,
    };
  } catch (error) {
    throw toTokenError(error, setup.network, request.timeoutMs);
  } finally {
    request.ui.waiting(false);
    setup.network.close();
  }
}

/** A token from a cached sign-in only (the bridge): never a sign-in, never a prompt. */
export interface CachedUserTokenRequest extends MsalTarget {
  /** The signed-in user (case-insensitive), as shown by the sign-in. */
  user: string;
  scopes: string[];
  /** Ignore a cached access token (the server refused it): renew with the refresh token. */
  forceRefresh?: boolean;
}

/** Whether msal's cache (through `cachePlugin`) holds a sign-in of `user`; no network. */
export async function hasCachedSignIn(target: MsalTarget, user: string): Promise<boolean> {
  const { app, setup } = await publicClient(target);
  try {
    return user !== "" && (await cachedAccount(app, user)) !== undefined;
  } finally {
    setup.network.close();
  }
}

/**
 * The cached sign-in of `request.user`: msal's cached access token while it is valid, else one
 * renewed with the refresh token. Throws TokenError SIGN_IN_REQUIRED when there is no cached
 * sign-in of that user, and the renewal's error (code REFRESH_FAILED when Entra gave none) when
 * it cannot be renewed; never starts a sign-in.
 */
export async function acquireCachedUserToken(
  request: CachedUserTokenRequest,
): Promise<UserTokenResult> {
  const { app, setup } = await publicClient(request);
  try {
    const account = request.user ? await cachedAccount(app, request.user) : undefined;
    if (!account) {
      throw new TokenError(`no cached sign-in of ${request.user}`, { code: "SIGN_IN_REQUIRED" });
    }
    let result;
    try {
      result = await app.acquireTokenSilent({
        account,
        scopes: request.scopes,
        forceRefresh: request.forceRefresh ?? false,
      });
    } catch (error) {
      const reason = toTokenError(error, setup.network, request.timeoutMs);
      throw new TokenError(
        `the cached sign-in of ${request.user} cannot be renewed: ${reason.message}`,
        { code: reason.code ?? "REFRESH_FAILED", cause: error },
      );
    }
    return {
      ...tokenResultOf(result),
      username: result?.account?.username ?? request.user,
      signIn: "refreshToken",
    };
  } catch (error) {
    throw toTokenError(error, setup.network, request.timeoutMs);
  } finally {
    setup.network.close();
  }
}
