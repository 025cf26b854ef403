/**
 * A fake Entra ID (Microsoft identity platform, v2.0 endpoints) for the test bed and the demo.
 *
 * It answers the requests msal-node makes for the client credentials flow and for user sign-in
 * (authorization code with PKCE, device code, refresh tokens), with the same JSON shapes, status
 * codes and AADSTS codes as the real service, so the tool's error handling is tested against what
 * users will actually see. It listens on 127.0.0.1 only, over HTTPS (msal refuses plain-HTTP
 * authorities), and records every request so tests can assert what was sent.
 *
 * The sign-in page is plain, accessible HTML (no script but the form_post auto-submit), so a real
 * browser (browser.ts) and a fetch-driven test can both use it.
 *
 * Endpoints live in a small route table (`routes`); grant types in `grantHandlers`.
 */
import { X509Certificate } from "node:crypto";
import {
  base64UrlEncode,
  certificateThumbprints,
  type DecodedJwt,
  decodeJwt,
  derFromPem,
  exportSpkiPem,
  type JwtAlgorithm,
  type JwtPayload,
  signJwt,
  verifyJwt,
} from "./jwt.ts";

export interface EntraApp {
  /** GUID-like tenant ID the app is registered in. */
  tenantId: string;
  clientId: string;
  displayName?: string;
  /** Accepted client secret values. */
  secrets?: string[];
  /** Secret values that exist but have expired: answered with AADSTS7000222. */
  expiredSecrets?: string[];
  /** Registered certificate PEMs (public certificate only). */
  certificates?: string[];
  /** App roles granted with admin consent, e.g. `["IMAP.AccessAsApp","POP.AccessAsApp"]`. */
  roles?: string[];
  /** If set, tokens carry `email` and `upn` = this (Dovecot's username_attribute needs a claim). */
  mailbox?: string;
  /** Becomes `oid` and `sub` of app tokens (default: a generated GUID). */
  servicePrincipalId?: string;
  /**
   * "Allow public client flows": the code, device code and refresh grants need no client
   * credential (a credential is then refused with AADSTS700025). Without it they need a secret or
   * certificate like client credentials (AADSTS7000218).
   */
  publicClient?: boolean;
  /**
   * Registered redirect URIs. Matched exactly, except that the port of `http://localhost` and
   * `http://127.0.0.1` URIs is ignored, as Entra does for loopback redirects.
   */
  redirectUris?: string[];
  /**
   * Delegated permissions on Exchange Online with consent, e.g. `["IMAP.AccessAsUser.All"]`.
   * A `<resource>/.default` scope gets all of them; an explicit scope must be one of them
   * (otherwise AADSTS65001).
   */
  delegated?: string[];
}

/** A user of a tenant, who signs in on the authorize page or approves a device code. */
export interface EntraUser {
  tenantId: string;
  /** Sign-in name; also `upn`, `unique_name`, `email` and `preferred_username` in tokens. */
  upn: string;
  password: string;
  /** `name` claim; default: the part of the UPN before `@`. */
  displayName?: string;
  /** Object ID (`oid`); default: a generated GUID. */
  oid?: string;
}

export interface FakeEntraOptions {
  tls: { certPem: string; keyPem: string };
  apps: EntraApp[];
  /** Known tenants; default: the tenants of `apps`. */
  tenants?: string[];
  /** Lifetime of issued access tokens; default 3599 (what Entra reports in `expires_in`). */
  tokenLifetimeSeconds?: number;
  /** Clock skew tolerated on client assertion `exp`/`nbf`; default 300 s like Entra. */
  clockSkewSeconds?: number;
  /** Current time in milliseconds; default `Date.now`. Lets tests issue expired tokens. */
  now?: () => number;
  /** Users who can sign in. */
  users?: EntraUser[];
  /** `interval` of device code answers; default 1 s for fast tests (Entra says 5; msal obeys it). */
  deviceCodeIntervalSeconds?: number;
  /** `expires_in` of device codes; default 900 s like Entra. */
  deviceCodeLifetimeSeconds?: number;
  /** Lifetime of authorization codes; default 600 s. */
  authCodeLifetimeSeconds?: number;
  /** A refresh token unused for longer than this is refused (AADSTS700082); default 90 days. */
  refreshTokenMaxInactiveSeconds?: number;
  /** Every token answer waits this long (a slow authority); default 0. */
  tokenDelayMs?: number;
}

export interface TokenRequestRecord {
  tenant: string;
  /** The parsed form body, as sent (secrets and assertions included: this is a test bed). */
  body: Record<string, string>;
  /** Request headers, lower-case names. */
  headers: Record<string, string>;
  status: number;
  /** `performance.timeOrigin + performance.now()` when the answer was sent (ms since the epoch). */
  answeredAt?: number;
  /** OAuth error, e.g. `invalid_client`. */
  error?: string;
  /** Entra's error code, e.g. `AADSTS7000215`. */
  errorCode?: string;
}

export interface RequestRecord {
  method: string;
  /** Path without the query string. */
  path: string;
  /** Query string including `?`, or "". */
  search: string;
}

/** One GET of the authorize endpoint. */
export interface AuthorizeRecord {
  tenant: string;
  /** The query parameters as sent. */
  query: Record<string, string>;
  /** Set when Entra refused the request, e.g. `AADSTS50011`. */
  errorCode?: string;
}

/** One POST of the sign-in form. */
export interface SignInRecord {
  tenant: string;
  username: string;
  action: "signin" | "cancel";
  /** `code`: signed in and a code was sent; `refused`: an error was sent to the redirect URI. */
  outcome: "code" | "declined" | "bad_credentials" | "refused";
  errorCode?: string;
}

/** An authorization code issued by the sign-in form. */
export interface AuthCodeRecord {
  code: string;
  clientId: string;
  redirectUri: string;
  upn: string;
  scope: string;
  codeChallenge?: string;
  codeChallengeMethod?: "S256" | "plain";
  /** Milliseconds (the fake's clock). */
  issuedAt: number;
  expiresAt: number;
  redeemed: boolean;
}

/** A device code and what became of it. */
export interface DeviceCodeRecord {
  tenant: string;
  clientId: string;
  scope: string;
  userCode: string;
  deviceCode: string;
  status: "pending" | "approved" | "declined" | "redeemed";
  /** The user who approved it. */
  upn?: string;
  /** Token endpoint polls for this code, whatever the answer. */
  polls: number;
  /** Milliseconds (the fake's clock). */
  expiresAt: number;
}

/** A refresh token issued to a user. */
export interface RefreshTokenRecord {
  token: string;
  clientId: string;
  upn: string;
  /** Milliseconds (the fake's clock). */
  issuedAt: number;
  lastUsedAt: number;
  revoked: boolean;
  /** Times it was redeemed successfully (Entra keeps old refresh tokens valid after rotation). */
  redemptions: number;
}

export interface FakeEntra {
  /** `https://127.0.0.1:PORT`, the AuthorityHost to give the CLI. */
  url: string;
  /** `127.0.0.1:PORT`, for msal `knownAuthorities`. */
  host: string;
  port: number;
  /** `iss` claim of issued access tokens: `https://sts.windows.net/<tenant>/`. */
  issuer(tenantId: string): string;
  /**
   * msal's `authorityMetadata` for `<url>/<tenant>`: with it and `knownAuthorities: [host]`, msal
   * makes no discovery request at all.
   */
  authorityMetadata(tenant: string): string;
  signingKey: { kid: string; publicKeyPem: string; alg: "RS256" };
  /** Every HTTP request received, in order. */
  requests: RequestRecord[];
  /** Every token endpoint call with its parsed form body and outcome. */
  tokenRequests: TokenRequestRecord[];
  /** Every access token issued (raw JWT), app and user tokens alike. */
  issuedTokens: string[];
  /** Every ID token issued (raw JWT). */
  issuedIdTokens: string[];
  /** Every GET of the authorize endpoint, with its query. */
  authorizeRequests: AuthorizeRecord[];
  /** Every submitted sign-in form (authorize and device login). */
  signIns: SignInRecord[];
  /** Every authorization code issued; `redeemed` flips when the token endpoint takes it. */
  authCodes: AuthCodeRecord[];
  /** Every device code issued, with its poll count and status. */
  deviceCodes: DeviceCodeRecord[];
  /** Every refresh token issued (rotation adds one per redemption). */
  refreshTokens: RefreshTokenRecord[];
  /** Token requests with `grant_type=refresh_token`, whatever the answer. */
  readonly refreshGrants: number;
  /**
   * The user entered `userCode` on the device login page and signed in as `upn`. Throws like the
   * page would (AADSTS70018 unknown or used code, AADSTS70019 expired) or for an unknown user.
   */
  approveDeviceCode(userCode: string, upn: string): void;
  /** The user entered `userCode` and then declined; polls then get `authorization_declined`. */
  declineDeviceCode(userCode: string): void;
  /** Revokes the refresh tokens of `upn`, or of everyone (like Revoke-MgUserSignInSession). */
  revokeRefreshTokens(upn?: string): void;
  /**
   * An admin deleted this secret of the app (portal: Certificates & secrets). Requests with it
   * then get AADSTS7000215, as for any secret Entra does not know; tokens issued before stay
   * valid until they expire, as at Entra.
   */
  removeSecret(clientId: string, secret: string): void;
  close(): Promise<void>;
}

/** The resource the tool asks for; both host names are accepted by Entra for Exchange Online. */
const EXCHANGE_APP_ID = "00000002-0000-0ff1-ce00-000000000000";
const KNOWN_RESOURCES = new Map<string, string>([
  ["https://outlook.office365.com", "https://outlook.office365.com"],
  ["https://outlook.office.com", "https://outlook.office.com"],
  [EXCHANGE_APP_ID, EXCHANGE_APP_ID],
]);

/** Tenant aliases Entra serves discovery documents for, but which name no single directory. */
const TENANT_ALIASES = new Set(["common", "organizations", "consumers"]);

const JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/** One failure answered in Entra's error JSON (or, on the authorize endpoint, to the client). */
class EntraFailure extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    readonly code: number,
    readonly description: string,
    /** Entra's `suberror`, e.g. `consent_required` (msal maps some to interaction_required). */
    readonly suberror?: string,
  ) {
    super(`AADSTS${code}: ${description}`);
  }
}

interface RequestContext {
  request: Request;
  url: URL;
  params: Record<string, string | undefined>;
  correlationId: string;
  traceId: string;
}

interface Route {
  method: string;
  pattern: URLPattern;
  handle(ctx: RequestContext): Response | Promise<Response>;
}

interface IssuedClient {
  app: EntraApp;
  /** `appidacr`: "0" for a public client, "1" for a secret, "2" for a certificate. */
  authMethod: "0" | "1" | "2";
}

type GrantHandler = (
  ctx: RequestContext,
  tenantId: string,
  form: URLSearchParams,
) => Promise<Response>;

/** `2024-05-01 10:11:12Z`, the format of Entra's `timestamp` field. */
function entraTimestamp(ms: number): string {
  return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

function jsonResponse(status: number, body: unknown, headers: Record<string, string> = {}) {
  return new Response(JSON.stringify(body), {
    status,
    headers: {
      "content-type": "application/json; charset=utf-8",
      "cache-control": "no-store, no-cache",
      pragma: "no-cache",
      ...headers,
    },
  });
}

// ---------------------------------------------------------------------------------------------
// User sign-in: scopes, redirect URIs and the HTML pages of the authorize endpoint.
// ---------------------------------------------------------------------------------------------

/** OpenID Connect scopes: they name no resource and are answered with ID and refresh tokens. */
const OIDC_SCOPES = new Set(["openid", "profile", "email", "offline_access"]);

/** Delegated permissions Exchange Online exposes (the ones this project can ask for). */
const EXCHANGE_PERMISSIONS = [
  "IMAP.AccessAsUser.All",
  "POP.AccessAsUser.All",
  "SMTP.Send",
  "EWS.AccessAsUser.All",
];

const DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code";

/** A user-flow scope parameter, split the way Entra reads it. */
interface UserScope {
  /** The resource as the client spelled it, e.g. `https://outlook.office.com`. */
  resource: string;
  /** Permission names asked for, or "default" for `<resource>/.default`. */
  permissions: string[] | "default";
  /** OpenID Connect scopes asked for, in request order. */
  oidc: string[];
}

function missingParameter(name: string): EntraFailure {
  return new EntraFailure(
    400,
    "invalid_request",
    900144,
    `The request body must contain the following parameter: '${name}'.`,
  );
}

function invalidScope(scope: string, why: string): EntraFailure {
  return new EntraFailure(
    400,
    "invalid_scope",
    70011,
    `The provided value for the input parameter 'scope' is not valid. The scope '${scope}' ` +
      `is not valid: ${why}`,
  );
}

/**
 * Parses the scope of a user flow. One resource per request, as Entra requires; only Exchange
 * Online is served (Graph scopes and bare names such as `User.Read` are refused, which is also
 * what the tool must never send).
 */
function parseUserScope(scope: string | null): UserScope {
  const items = (scope ?? "").split(" ").filter((s) => s !== "");
  if (items.length === 0) throw missingParameter("scope");
  const oidc = items.filter((s) => OIDC_SCOPES.has(s.toLowerCase())).map((s) => s.toLowerCase());
  const resourceScopes = items.filter((s) => !OIDC_SCOPES.has(s.toLowerCase()));
  const split = resourceScopes.map((s) => {
    const slash = s.lastIndexOf("/");
    return slash > 0 ? { resource: s.slice(0, slash), permission: s.slice(slash + 1) } : undefined;
  });
  if (resourceScopes.length === 0 || split.some((s) => s === undefined)) {
    throw invalidScope(
      scope ?? "",
      "this test bed issues user tokens for Exchange Online only; ask for " +
        "'https://outlook.office.com/<permission>' or 'https://outlook.office365.com/.default'.",
    );
  }
  const parts = split as { resource: string; permission: string }[];
  // The Exchange host names and app ID are one resource; anything else is another one.
  const resourceKey = (r: string) => KNOWN_RESOURCES.has(r.toLowerCase()) ? "exchange" : r;
  if (new Set(parts.map((p) => resourceKey(p.resource))).size > 1) {
    throw new EntraFailure(
      400,
      "invalid_scope",
      28000,
      "Provided value for the input parameter scope is not valid because it contains more than " +
        `one resource. Scope ${scope} is not valid.`,
    );
  }
  const resource = parts[0].resource;
  if (!KNOWN_RESOURCES.has(resource.toLowerCase())) {
    throw new EntraFailure(
      400,
      "invalid_resource",
      500011,
      `The resource principal named ${resource} was not found in the tenant. The application ` +
        "may not be installed in the tenant, or the request went to the wrong tenant.",
    );
  }
  const names = parts.map((p) => p.permission);
  if (names.some((n) => n.toLowerCase() === ".default")) {
    if (names.length > 1) {
      throw invalidScope(scope ?? "", "'.default' cannot be combined with other scopes.");
    }
    return { resource, permissions: "default", oidc };
  }
  return { resource, permissions: names, oidc };
}

/**
 * Entra compares redirect URIs exactly, except for loopback: `http://localhost` and
 * `http://127.0.0.1` match whatever port the client listens on (desktop apps pick a free one).
 */
function redirectUriMatches(registered: string, requested: string): boolean {
  if (registered === requested) return true;
  let a: URL, b: URL;
  try {
    a = new URL(registered);
    b = new URL(requested);
  } catch {
    return false;
  }
  const loopback = a.protocol === "http:" &&
    (a.hostname === "localhost" || a.hostname === "127.0.0.1");
  return loopback && b.protocol === a.protocol && b.hostname === a.hostname &&
    b.pathname === a.pathname && b.search === a.search;
}

function randomToken(bytes: number): string {
  return base64UrlEncode(crypto.getRandomValues(new Uint8Array(bytes)));
}

/** Entra's user codes: nine letters and digits, without the easily confused ones. */
function newUserCode(): string {
  const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
  return Array.from(crypto.getRandomValues(new Uint8Array(9)), (b) => alphabet[b % 32]).join("");
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function htmlResponse(status: number, html: string, headers: Record<string, string> = {}) {
  return new Response(html, {
    status,
    headers: {
      "content-type": "text/html; charset=utf-8",
      "cache-control": "no-store, no-cache",
      pragma: "no-cache",
      ...headers,
    },
  });
}

function htmlPage(title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
</head>
<body>
<main>
${body}
</main>
</body>
</html>
`;
}

interface SignInPageOptions {
  tenant: string;
  flowToken: string;
  appName: string;
  username: string;
  /** Shown above the form after a failed attempt. */
  error?: { code: string; text: string };
}

/** The sign-in form. Stable IDs (`username`, `password`, `signin`, `cancel`, `error`) for drivers. */
function signInPage(o: SignInPageOptions): string {
  const error = o.error
    ? `<p id="error" role="alert" data-code="${escapeHtml(o.error.code)}">${
      escapeHtml(o.error.text)
    }</p>\n`
    : "";
  return htmlPage(
    "Sign in to your account",
    `<h1>Sign in</h1>
<p id="app">to continue to <strong>${escapeHtml(o.appName)}</strong></p>
${error}<form method="post" action="/${
      encodeURIComponent(o.tenant)
    }/oauth2/v2.0/authorize/submit" aria-label="Sign in">
<input type="hidden" name="flowToken" value="${escapeHtml(o.flowToken)}">
<p><label for="username">Email or username</label><br>
<input id="username" name="username" type="text" autocomplete="username" value="${
      escapeHtml(o.username)
    }"></p>
<p><label for="password">Password</label><br>
<input id="password" name="password" type="password" autocomplete="current-password"></p>
<p><button id="signin" type="submit" name="action" value="signin">Sign in</button>
<button id="cancel" type="submit" name="action" value="cancel">Cancel</button></p>
</form>`,
  );
}

/** The page Entra shows when it cannot send the user back to the app (bad client or redirect URI). */
function errorPage(code: string, text: string, traceId: string, correlationId: string): string {
  return htmlPage(
    "Sign in to your account",
    `<h1>Sorry, but we're having trouble signing you in.</h1>
<p id="error" role="alert" data-code="${escapeHtml(code)}">${escapeHtml(text)}</p>
<dl>
<dt>Request Id</dt><dd>${escapeHtml(traceId)}</dd>
<dt>Correlation Id</dt><dd>${escapeHtml(correlationId)}</dd>
</dl>`,
  );
}

/** response_mode=form_post: a page that POSTs the answer to the redirect URI by itself. */
function formPostPage(action: string, fields: Record<string, string>): string {
  const inputs = Object.entries(fields)
    .map(([name, value]) =>
      `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`
    )
    .join("\n");
  return htmlPage(
    "Working...",
    `<form method="post" name="hiddenform" action="${escapeHtml(action)}">
${inputs}
<noscript><p>Script is disabled. Click Submit to continue.</p><input type="submit" value="Submit"></noscript>
</form>
<script>document.forms[0].submit();</script>`,
  );
}

/** Random 2048-bit RS256 key pair, made per server start so no key is ever committed. */
async function makeSigningKey() {
  const keyPair = await crypto.subtle.generateKey(
    {
      name: "RSASSA-PKCS1-v1_5",
      modulusLength: 2048,
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: "SHA-256",
    },
    true,
    ["sign", "verify"],
  );
  const publicKeyPem = await exportSpkiPem(keyPair.publicKey);
  // Entra's kid is the base64url SHA-1 of its signing certificate; there is no certificate here,
  // so the SPKI stands in: same shape (27 characters), still unique per key.
  const sha1 = await crypto.subtle.digest("SHA-1", derFromPem(publicKeyPem));
  const kid = base64UrlEncode(new Uint8Array(sha1));
  const jwk = await crypto.subtle.exportKey("jwk", keyPair.publicKey);
  return { privateKey: keyPair.privateKey, publicKeyPem, kid, jwk };
}

/** What a signed-in user agreed to; carried by codes, device codes and refresh tokens. */
interface UserGrant {
  app: EntraApp;
  user: EntraUser;
  /** `sid` of the tokens: one per sign-in. */
  sessionId: string;
  /** From the authorize request; echoed in the ID token. */
  nonce?: string;
}

/** A sign-in form in progress, found again through its `flowToken` hidden field. */
type SignInFlow =
  | {
    kind: "authorize";
    tenant: string;
    app: EntraApp;
    redirectUri: string;
    responseMode: ResponseMode;
    state?: string;
    nonce?: string;
    scope: string;
    codeChallenge?: string;
    codeChallengeMethod?: "S256" | "plain";
    /** `client_info=1` was asked for (msal always does). */
    clientInfo: boolean;
  }
  | { kind: "device"; tenant: string; app: EntraApp; userCode: string };

type ResponseMode = "query" | "fragment" | "form_post";

/** Where and how the authorize endpoint answers the app. */
interface ClientTarget {
  redirectUri: string;
  responseMode: ResponseMode;
  state?: string;
}

/** A .NET TimeSpan as Entra prints it in messages: `90.00:00:00`. */
function timeSpan(seconds: number): string {
  const d = Math.floor(seconds / 86400);
  const pad = (n: number) => String(n).padStart(2, "0");
  const hms = `${pad(Math.floor(seconds / 3600) % 24)}:${pad(Math.floor(seconds / 60) % 60)}:${
    pad(Math.floor(seconds) % 60)
  }`;
  return d > 0 ? `${d}.${hms}` : hms;
}

interface RegisteredCertificate {
  pem: string;
  x5t: string;
  x5tS256: string;
  notBefore: number;
  notAfter: number;
}

async function registerCertificate(pem: string): Promise<RegisteredCertificate> {
  const cert = new X509Certificate(pem);
  return {
    pem,
    ...(await certificateThumbprints(pem)),
    notBefore: Date.parse(cert.validFrom),
    notAfter: Date.parse(cert.validTo),
  };
}

export async function startFakeEntra(options: FakeEntraOptions): Promise<FakeEntra> {
  const now = options.now ?? Date.now;
  const lifetime = options.tokenLifetimeSeconds ?? 3599;
  const skew = options.clockSkewSeconds ?? 300;
  const signing = await makeSigningKey();

  const users = options.users ?? [];
  const tenants = new Map<string, string>();
  const defaultTenants = [...options.apps, ...users].map((x) => x.tenantId);
  for (const t of options.tenants ?? defaultTenants) {
    tenants.set(t.toLowerCase(), t);
  }
  const servicePrincipals = new Map<EntraApp, string>();
  const certificates = new Map<EntraApp, RegisteredCertificate[]>();
  for (const app of options.apps) {
    servicePrincipals.set(app, app.servicePrincipalId ?? crypto.randomUUID());
    certificates.set(app, await Promise.all((app.certificates ?? []).map(registerCertificate)));
  }

  const userOids = new Map<EntraUser, string>(
    users.map((u) => [u, u.oid ?? crypto.randomUUID()]),
  );

  const requests: RequestRecord[] = [];
  const tokenRequests: TokenRequestRecord[] = [];
  const issuedTokens: string[] = [];
  const issuedIdTokens: string[] = [];
  const authorizeRequests: AuthorizeRecord[] = [];
  const signIns: SignInRecord[] = [];
  const authCodes: AuthCodeRecord[] = [];
  const deviceCodes: DeviceCodeRecord[] = [];
  const refreshTokens: RefreshTokenRecord[] = [];
  // What each code or token grants; the public records above only describe them.
  const flows = new Map<string, SignInFlow>();
  const codeGrants = new Map<
    string,
    { record: AuthCodeRecord; grant: UserGrant; tenant: string }
  >();
  const deviceGrants = new Map<
    string,
    { record: DeviceCodeRecord; app: EntraApp; grant?: UserGrant }
  >();
  const refreshTokenGrants = new Map<string, { record: RefreshTokenRecord; grant: UserGrant }>();
  // When each user's refresh tokens were last revoked (Entra's TokensValidFrom), by lower-case UPN.
  const tokensValidFrom = new Map<string, number>();
  // Secrets deleted by removeSecret(); the apps in `options` are left as the caller made them.
  const removedSecrets = new Map<EntraApp, Set<string>>();
  // Set once the listener has its port; handlers only run after that.
  let baseUrl = "";

  const issuer = (tenantId: string) => `https://sts.windows.net/${tenantId}/`;

  /** The directory's own spelling of a tenant ID, or undefined when Entra would not know it. */
  function findTenant(tenant: string): string | undefined {
    return tenants.get(tenant.toLowerCase());
  }

  function findApp(tenantId: string, clientId: string): EntraApp | undefined {
    return options.apps.find((a) =>
      a.tenantId.toLowerCase() === tenantId.toLowerCase() &&
      a.clientId.toLowerCase() === clientId.toLowerCase()
    );
  }

  /** Entra's error description: the message, then IDs and time on their own CRLF lines. */
  function describe(ctx: RequestContext, failure: EntraFailure) {
    const timestamp = entraTimestamp(now());
    const description = `AADSTS${failure.code}: ${failure.description}\r\n` +
      `Trace ID: ${ctx.traceId}\r\nCorrelation ID: ${ctx.correlationId}\r\nTimestamp: ${timestamp}`;
    return { timestamp, description };
  }

  /** Entra's error JSON; the description ends with IDs and time on their own CRLF lines, as Entra's does. */
  function errorResponse(ctx: RequestContext, failure: EntraFailure): Response {
    const { timestamp, description } = describe(ctx, failure);
    return jsonResponse(failure.status, {
      error: failure.error,
      error_description: description,
      ...(failure.suberror ? { suberror: failure.suberror } : {}),
      error_codes: [failure.code],
      timestamp,
      trace_id: ctx.traceId,
      correlation_id: ctx.correlationId,
      error_uri: `${baseUrl}/error?code=${failure.code}`,
    }, { "x-ms-request-id": ctx.traceId, "client-request-id": ctx.correlationId });
  }

  function tenantNotFound(tenant: string): EntraFailure {
    return new EntraFailure(
      400,
      "invalid_request",
      90002,
      `Tenant '${tenant}' not found. Check the tenant ID and that you are signing in to the ` +
        "right cloud; a tenant without an active subscription can also cause this.",
    );
  }

  function openIdConfiguration(ctx: RequestContext): Response {
    const tenant = ctx.params.tenant ?? "";
    const alias = TENANT_ALIASES.has(tenant.toLowerCase());
    const tenantId = alias ? tenant : findTenant(tenant);
    if (!tenantId) {
      // The discovery document answers an unknown tenant with `invalid_tenant`, the token
      // endpoint with `invalid_request`; both carry AADSTS90002.
      const f = tenantNotFound(tenant);
      return errorResponse(ctx, new EntraFailure(400, "invalid_tenant", f.code, f.description));
    }
    const base = `${baseUrl}/${tenant}`;
    return jsonResponse(200, {
      token_endpoint: `${base}/oauth2/v2.0/token`,
      token_endpoint_auth_methods_supported: [
        "client_secret_post",
        "private_key_jwt",
        "client_secret_basic",
      ],
      jwks_uri: `${base}/discovery/v2.0/keys`,
      response_modes_supported: ["query", "fragment", "form_post"],
      subject_types_supported: ["pairwise"],
      id_token_signing_alg_values_supported: ["RS256"],
      response_types_supported: ["code", "id_token", "code id_token", "id_token token"],
      scopes_supported: ["openid", "profile", "email", "offline_access"],
      // Aliases name no tenant, so Entra puts a placeholder in their issuer.
      issuer: `${baseUrl}/${alias ? "{tenantid}" : tenantId}/v2.0`,
      request_uri_parameter_supported: false,
      authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
      device_authorization_endpoint: `${base}/oauth2/v2.0/devicecode`,
      http_logout_supported: true,
      frontchannel_logout_supported: true,
      end_session_endpoint: `${base}/oauth2/v2.0/logout`,
      claims_supported: [
        "sub",
        "iss",
        "aud",
        "exp",
        "iat",
        "auth_time",
        "acr",
        "nonce",
        "preferred_username",
        "name",
        "tid",
        "ver",
        "at_hash",
        "c_hash",
        "email",
      ],
      tenant_region_scope: "EU",
      cloud_instance_name: "microsoftonline.com",
    });
  }

  function keys(ctx: RequestContext): Response {
    const tenant = ctx.params.tenant ?? "";
    const tenantId = TENANT_ALIASES.has(tenant.toLowerCase()) ? "{tenantid}" : findTenant(tenant);
    if (!tenantId) return errorResponse(ctx, tenantNotFound(tenant));
    return jsonResponse(200, {
      keys: [{
        kty: "RSA",
        use: "sig",
        kid: signing.kid,
        x5t: signing.kid,
        n: signing.jwk.n,
        e: signing.jwk.e,
        issuer: `${baseUrl}/${tenantId}/v2.0`,
      }],
    });
  }

  /**
   * msal asks this before anything else when the authority host is not in `knownAuthorities`
   * (it then asks login.microsoftonline.com, so this copy is only reached through a proxy or a
   * misconfigured client). Answered so that a test can see it was called.
   */
  function instanceDiscovery(ctx: RequestContext): Response {
    const endpoint = ctx.url.searchParams.get("authorization_endpoint") ?? "";
    const tenant = endpoint.match(/^https:\/\/[^/]+\/([^/]+)\//)?.[1] ?? "common";
    const host = new URL(baseUrl).host;
    return jsonResponse(200, {
      tenant_discovery_endpoint: `${baseUrl}/${tenant}/v2.0/.well-known/openid-configuration`,
      "api-version": "1.1",
      metadata: [{ preferred_network: host, preferred_cache: host, aliases: [host] }],
    });
  }

  async function issueAccessToken(
    tenantId: string,
    client: IssuedClient,
    resource: string,
  ): Promise<string> {
    const { app } = client;
    const nowSeconds = Math.floor(now() / 1000);
    // Entra backdates iat/nbf by five minutes to absorb clock skew at the resource.
    const issuedAt = nowSeconds - 300;
    const servicePrincipal = servicePrincipals.get(app) ?? crypto.randomUUID();
    // Dovecot 2.3 crashes on a JSON null anywhere in the claims: only add claims that have values.
    const payload: JwtPayload = {
      aud: resource,
      iss: issuer(tenantId),
      iat: issuedAt,
      nbf: issuedAt,
      exp: nowSeconds + lifetime,
      ...(app.displayName ? { app_displayname: app.displayName } : {}),
      appid: app.clientId,
      appidacr: client.authMethod,
      idp: issuer(tenantId),
      idtyp: "app",
      oid: servicePrincipal,
      ...(app.roles?.length ? { roles: [...app.roles] } : {}),
      sub: servicePrincipal,
      tid: tenantId,
      uti: base64UrlEncode(crypto.getRandomValues(new Uint8Array(16))),
      ver: "1.0",
      ...(app.mailbox ? { email: app.mailbox, upn: app.mailbox } : {}),
    };
    const token = await signJwt(
      { typ: "JWT", alg: "RS256", x5t: signing.kid, kid: signing.kid },
      payload,
      signing.privateKey,
    );
    issuedTokens.push(token);
    return token;
  }

  /** Client ID and secret from the form body or from HTTP Basic (both are allowed by Entra). */
  function clientCredentials(ctx: RequestContext, form: URLSearchParams) {
    let clientId = form.get("client_id") ?? undefined;
    let secret = form.get("client_secret") ?? undefined;
    const basic = ctx.request.headers.get("authorization")?.match(/^Basic\s+(\S+)$/i);
    if (basic) {
      const decoded = atob(basic[1]);
      const colon = decoded.indexOf(":");
      clientId ??= decodeURIComponent(decoded.slice(0, colon));
      secret ??= decodeURIComponent(decoded.slice(colon + 1));
    }
    return { clientId, secret };
  }

  function checkSecret(app: EntraApp, secret: string): void {
    if (app.secrets?.includes(secret) && !removedSecrets.get(app)?.has(secret)) return;
    if (app.expiredSecrets?.includes(secret)) {
      throw new EntraFailure(
        401,
        "invalid_client",
        7000222,
        `The client secret sent for app '${app.clientId}' has expired. Create a new secret ` +
          "for the app in the portal and use its value.",
      );
    }
    throw new EntraFailure(
      401,
      "invalid_client",
      7000215,
      "The client secret is not valid. Send the secret's value, not its ID " +
        `(Secret ID), for a secret added to app '${app.clientId}'.`,
    );
  }

  function appNotFound(clientId: string, tenant: string): EntraFailure {
    return new EntraFailure(
      400,
      "unauthorized_client",
      700016,
      `Application with identifier '${clientId}' was not found in the directory ` +
        `'${tenant}'. The administrator may not have installed or consented to it in this ` +
        "tenant, or the request was sent to the wrong tenant.",
    );
  }

  function assertionFailure(detail: string): EntraFailure {
    return new EntraFailure(401, "invalid_client", 700027, `Client assertion failed: ${detail}`);
  }

  /** Validates a jwt-bearer client assertion the way Entra does; every failure is AADSTS700027. */
  async function checkAssertion(
    ctx: RequestContext,
    app: EntraApp,
    tenantId: string,
    assertionType: string | null,
    assertion: string,
  ): Promise<void> {
    if (assertionType !== JWT_BEARER) {
      throw assertionFailure(`client_assertion_type must be '${JWT_BEARER}'.`);
    }
    let jwt: DecodedJwt;
    try {
      jwt = decodeJwt(assertion);
    } catch (e) {
      throw assertionFailure(`the assertion is not a well-formed JWT (${(e as Error).message}).`);
    }
    const { header, payload } = jwt;
    const alg = header.alg;
    if (alg !== "RS256" && alg !== "PS256") {
      throw assertionFailure(`signature algorithm '${String(alg)}' is not supported.`);
    }
    const sha256 = typeof header["x5t#S256"] === "string" ? header["x5t#S256"] : undefined;
    const sha1 = typeof header.x5t === "string" ? header.x5t : undefined;
    if (!sha256 && !sha1) {
      throw assertionFailure("the assertion header carries neither 'x5t#S256' nor 'x5t'.");
    }
    const cert = certificates.get(app)?.find((c) => sha256 ? c.x5tS256 === sha256 : c.x5t === sha1);
    if (!cert) {
      throw assertionFailure(
        "the certificate that signed the client assertion is not registered on the " +
          `application. [Reason - The key was not found. Thumbprint of key used by client: ` +
          `'${sha256 ?? sha1}'. Check the certificates uploaded for app '${app.clientId}'.]`,
      );
    }
    const nowSeconds = now() / 1000;
    if (cert.notAfter / 1000 < nowSeconds) {
      throw assertionFailure(`the certificate registered for app '${app.clientId}' has expired.`);
    }
    if (!(await verifyJwt(assertion, cert.pem, alg as JwtAlgorithm))) {
      throw assertionFailure(
        "the signature does not validate with the registered certificate's public key " +
          "(the private key does not belong to that certificate).",
      );
    }
    const audiences = new Set([
      `${baseUrl}${ctx.url.pathname}`,
      `${baseUrl}/${tenantId}/oauth2/v2.0/token`,
      `${baseUrl}/${tenantId}/oauth2/token`,
    ]);
    if (typeof payload.aud !== "string" || !audiences.has(payload.aud)) {
      throw assertionFailure(
        `audience '${String(payload.aud)}' does not match this token endpoint.`,
      );
    }
    if (payload.iss !== app.clientId || payload.sub !== app.clientId) {
      throw assertionFailure(
        `'iss' and 'sub' must both be the client ID '${app.clientId}'.`,
      );
    }
    if (typeof payload.exp !== "number" || payload.exp + skew < nowSeconds) {
      throw assertionFailure(
        "the assertion has expired or has no 'exp' (check the clock of this machine).",
      );
    }
    if (typeof payload.nbf === "number" && payload.nbf - skew > nowSeconds) {
      throw assertionFailure(
        "the assertion is not valid yet ('nbf' is in the future; check the clock of this machine).",
      );
    }
  }

  /** The resource of a client-credentials scope, which must be a single `<resource>/.default`. */
  function resourceOf(scope: string | null): string {
    if (!scope) throw missingParameter("scope");
    const scopes = scope.split(" ").filter((s) => s !== "");
    if (scopes.length !== 1) {
      throw new EntraFailure(
        400,
        "invalid_scope",
        70011,
        `The provided value for the input parameter 'scope' is not valid. The scope '${scope}' ` +
          "is not valid: the client credentials flow takes exactly one '<resource>/.default' scope.",
      );
    }
    const [only] = scopes;
    if (!only.endsWith("/.default")) {
      throw new EntraFailure(
        400,
        "invalid_scope",
        1002012,
        `The provided value for scope ${only} is not valid. Client credential flows must ` +
          "have a scope value with /.default suffixed to the resource identifier " +
          "(application ID URI).",
      );
    }
    const requested = only.slice(0, -"/.default".length);
    const resource = KNOWN_RESOURCES.get(requested.toLowerCase());
    if (!resource) {
      throw new EntraFailure(
        400,
        "invalid_resource",
        500011,
        `The resource principal named ${requested} was not found in the tenant. The ` +
          "application may not be installed in the tenant, or the request went to the wrong tenant.",
      );
    }
    return resource;
  }

  async function clientCredentialsGrant(
    ctx: RequestContext,
    tenantId: string,
    form: URLSearchParams,
  ): Promise<Response> {
    const { clientId, secret } = clientCredentials(ctx, form);
    if (!clientId) throw missingParameter("client_id");
    const app = findApp(tenantId, clientId);
    if (!app) throw appNotFound(clientId, tenantId);
    const assertion = form.get("client_assertion");
    let authMethod: "1" | "2";
    // Entra's precedence when both are sent is not documented; the secret is checked first here.
    if (secret !== undefined) {
      checkSecret(app, secret);
      authMethod = "1";
    } else if (assertion !== null) {
      await checkAssertion(ctx, app, tenantId, form.get("client_assertion_type"), assertion);
      authMethod = "2";
    } else {
      throw new EntraFailure(
        401,
        "invalid_client",
        7000218,
        "The request body must contain the following parameter: 'client_assertion' or " +
          "'client_secret'.",
      );
    }
    const resource = resourceOf(form.get("scope"));
    const accessToken = await issueAccessToken(tenantId, { app, authMethod }, resource);
    return jsonResponse(200, {
      token_type: "Bearer",
      expires_in: lifetime,
      ext_expires_in: lifetime,
      access_token: accessToken,
    }, { "x-ms-request-id": ctx.traceId, "client-request-id": ctx.correlationId });
  }

  // -------------------------------------------------------------------------------------------
  // User sign-in: authorize page, device code, and the code/device/refresh grants.
  // -------------------------------------------------------------------------------------------

  const deviceInterval = options.deviceCodeIntervalSeconds ?? 1;
  const deviceLifetime = options.deviceCodeLifetimeSeconds ?? 900;
  const codeLifetime = options.authCodeLifetimeSeconds ?? 600;
  const maxInactive = options.refreshTokenMaxInactiveSeconds ?? 90 * 86400;

  /** A tenant path segment of a user flow: a known tenant ID or an alias (lower case). */
  function userFlowTenant(tenant: string): string {
    if (TENANT_ALIASES.has(tenant.toLowerCase())) return tenant.toLowerCase();
    const tenantId = findTenant(tenant);
    if (!tenantId) throw tenantNotFound(tenant);
    return tenantId;
  }

  /** The app a user flow names; on a tenant alias the client ID alone finds it. */
  function findClientApp(tenantId: string, clientId: string): EntraApp | undefined {
    if (TENANT_ALIASES.has(tenantId)) {
      return options.apps.find((a) => a.clientId.toLowerCase() === clientId.toLowerCase());
    }
    return findApp(tenantId, clientId);
  }

  function findUser(tenantId: string, username: string): EntraUser | undefined {
    return users.find((u) =>
      u.tenantId.toLowerCase() === tenantId.toLowerCase() &&
      u.upn.toLowerCase() === username.trim().toLowerCase()
    );
  }

  function consentMissing(app: EntraApp, error = "invalid_grant"): EntraFailure {
    return new EntraFailure(
      400,
      error,
      65001,
      `The user or administrator has not consented to use the application with ID ` +
        `'${app.clientId}' named '${app.displayName ?? app.clientId}'. Send an interactive ` +
        "authorization request for this user and resource.",
      "consent_required",
    );
  }

  /** What a user token for `scope` carries: the consented permissions, or a failure. */
  function grantedScope(app: EntraApp, scope: UserScope) {
    const consented = app.delegated ?? [];
    const find = (list: string[], name: string) =>
      list.find((p) => p.toLowerCase() === name.toLowerCase());
    let permissions: string[];
    if (scope.permissions === "default") {
      if (consented.length === 0) throw consentMissing(app);
      permissions = [...consented];
    } else {
      permissions = scope.permissions.map((asked) => {
        if (!find([...EXCHANGE_PERMISSIONS, ...consented], asked)) {
          throw invalidScope(
            `${scope.resource}/${asked}`,
            `Exchange Online (${EXCHANGE_APP_ID}) has no delegated permission '${asked}'.`,
          );
        }
        const granted = find(consented, asked);
        if (!granted) throw consentMissing(app);
        return granted;
      });
    }
    permissions = [...new Set(permissions)];
    return {
      audience: KNOWN_RESOURCES.get(scope.resource.toLowerCase()) ?? scope.resource,
      permissions,
      // Entra spells the permissions out in its answer, for `.default` too.
      scope: [...permissions.map((p) => `${scope.resource}/${p}`), ...scope.oidc].join(" "),
    };
  }

  function signToken(payload: JwtPayload, header: Record<string, unknown>): Promise<string> {
    return signJwt({ typ: "JWT", alg: "RS256", ...header }, payload, signing.privateKey);
  }

  /** `sub` is pairwise in Entra: the same user has a different one in every app. */
  async function pairwiseSubject(oid: string, clientId: string): Promise<string> {
    const bytes = new TextEncoder().encode(`${oid}|${clientId.toLowerCase()}`);
    return base64UrlEncode(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
  }

  function userOid(user: EntraUser): string {
    return userOids.get(user) ?? user.oid ?? "";
  }

  /** `client_info`: what msal builds the account's home ID from (`<uid>.<utid>`). */
  function clientInfo(user: EntraUser): string {
    return base64UrlEncode(JSON.stringify({ uid: userOid(user), utid: user.tenantId }));
  }

  function newRefreshToken(grant: UserGrant): string {
    const token = randomToken(96);
    const record: RefreshTokenRecord = {
      token,
      clientId: grant.app.clientId,
      upn: grant.user.upn,
      issuedAt: now(),
      lastUsedAt: now(),
      revoked: false,
      redemptions: 0,
    };
    refreshTokens.push(record);
    refreshTokenGrants.set(token, { record, grant });
    return token;
  }

  /** The token answer of every user grant: access token, and ID/refresh tokens when asked. */
  async function userTokenResponse(
    ctx: RequestContext,
    grant: UserGrant,
    client: IssuedClient,
    scope: UserScope,
    form: URLSearchParams,
  ): Promise<Response> {
    const { app } = client;
    const { user } = grant;
    const granted = grantedScope(app, scope);
    const oid = userOid(user);
    const sub = await pairwiseSubject(oid, app.clientId);
    const name = user.displayName ?? user.upn.split("@")[0];
    const nowSeconds = Math.floor(now() / 1000);
    // As for app tokens, Entra backdates the access token by five minutes.
    const backdated = nowSeconds - 300;
    // Dovecot 2.3 crashes on a JSON null anywhere in the claims: only add claims that have values.
    const accessToken = await signToken({
      aud: granted.audience,
      iss: issuer(user.tenantId),
      iat: backdated,
      nbf: backdated,
      exp: nowSeconds + lifetime,
      acr: "1",
      amr: ["pwd"],
      ...(app.displayName ? { app_displayname: app.displayName } : {}),
      appid: app.clientId,
      appidacr: client.authMethod,
      email: user.upn,
      idp: issuer(user.tenantId),
      idtyp: "user",
      ipaddr: "127.0.0.1",
      name,
      oid,
      scp: granted.permissions.join(" "),
      sid: grant.sessionId,
      sub,
      tid: user.tenantId,
      unique_name: user.upn,
      upn: user.upn,
      uti: randomToken(16),
      ver: "1.0",
    }, { x5t: signing.kid, kid: signing.kid });
    issuedTokens.push(accessToken);
    const body: Record<string, string | number> = {
      token_type: "Bearer",
      scope: granted.scope,
      expires_in: lifetime,
      ext_expires_in: lifetime,
      access_token: accessToken,
    };
    if (scope.oidc.includes("offline_access")) body.refresh_token = newRefreshToken(grant);
    if (scope.oidc.includes("openid")) {
      const profile = scope.oidc.includes("profile");
      const idToken = await signToken({
        aud: app.clientId,
        iss: `${baseUrl}/${user.tenantId}/v2.0`,
        iat: nowSeconds,
        nbf: nowSeconds,
        exp: nowSeconds + 3600,
        ...(scope.oidc.includes("email") ? { email: user.upn } : {}),
        ...(profile ? { name } : {}),
        ...(grant.nonce ? { nonce: grant.nonce } : {}),
        oid,
        ...(profile ? { preferred_username: user.upn } : {}),
        sid: grant.sessionId,
        sub,
        tid: user.tenantId,
        uti: randomToken(16),
        ver: "2.0",
      }, { kid: signing.kid });
      issuedIdTokens.push(idToken);
      body.id_token = idToken;
    }
    if (form.get("client_info") === "1") body.client_info = clientInfo(user);
    return jsonResponse(200, body, {
      "x-ms-request-id": ctx.traceId,
      "client-request-id": ctx.correlationId,
    });
  }

  /**
   * Client authentication of the user grants: public clients send nothing (and must not send a
   * credential); confidential ones authenticate as in the client credentials flow.
   */
  async function userGrantClient(
    ctx: RequestContext,
    tenantId: string,
    form: URLSearchParams,
  ): Promise<IssuedClient> {
    const { clientId, secret } = clientCredentials(ctx, form);
    if (!clientId) throw missingParameter("client_id");
    const app = findClientApp(tenantId, clientId);
    if (!app) throw appNotFound(clientId, tenantId);
    const assertion = form.get("client_assertion");
    if (secret === undefined && assertion === null) {
      if (app.publicClient) return { app, authMethod: "0" };
      throw new EntraFailure(
        401,
        "invalid_client",
        7000218,
        "The request body must contain the following parameter: 'client_assertion' or " +
          "'client_secret'.",
      );
    }
    if (app.publicClient) {
      throw new EntraFailure(
        401,
        "invalid_client",
        700025,
        "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
      );
    }
    if (secret !== undefined) {
      checkSecret(app, secret);
      return { app, authMethod: "1" };
    }
    await checkAssertion(ctx, app, app.tenantId, form.get("client_assertion_type"), assertion!);
    return { app, authMethod: "2" };
  }

  async function pkceChallenge(verifier: string, method: "S256" | "plain"): Promise<string> {
    if (method === "plain") return verifier;
    const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
    return base64UrlEncode(new Uint8Array(digest));
  }

  async function authorizationCodeGrant(
    ctx: RequestContext,
    tenantId: string,
    form: URLSearchParams,
  ): Promise<Response> {
    const client = await userGrantClient(ctx, tenantId, form);
    const code = form.get("code");
    if (!code) throw missingParameter("code");
    const entry = codeGrants.get(code);
    if (!entry) {
      throw new EntraFailure(
        400,
        "invalid_grant",
        9002313,
        "Invalid request. Request is malformed or invalid. The authorization code is not one " +
          "this service issued.",
      );
    }
    const { record, grant } = entry;
    if (record.redeemed) {
      throw new EntraFailure(
        400,
        "invalid_grant",
        54005,
        "OAuth2 Authorization code was already redeemed, please retry with a new valid code or " +
          "use an existing refresh token.",
      );
    }
    if (now() > record.expiresAt) {
      throw new EntraFailure(
        400,
        "invalid_grant",
        70008,
        "The provided authorization code or refresh token has expired due to inactivity. Send a " +
          "new interactive authorization request for this user and resource.",
      );
    }
    const codeTenant = entry.tenant;
    if (
      !TENANT_ALIASES.has(codeTenant) && !TENANT_ALIASES.has(tenantId) && codeTenant !== tenantId
    ) {
      throw new EntraFailure(
        400,
        "invalid_grant",
        700005,
        "Provided Authorization Code is intended to use against other tenant, thus rejected.",
      );
    }
    if (record.clientId.toLowerCase() !== client.app.clientId.toLowerCase()) {
      throw new EntraFailure(
        400,
        "invalid_grant",
        70000,
        "The provided value for the 'code' parameter is not valid: it was issued to another " +
          "application.",
      );
    }
    const redirectUri = form.get("redirect_uri");
    if (!redirectUri) throw missingParameter("redirect_uri");
    if (redirectUri !== record.redirectUri) {
      throw new EntraFailure(
        400,
        "invalid_grant",
        50011,
        `The redirect URI '${redirectUri}' specified in the request does not match the ` +
          `redirect URI '${record.redirectUri}' the authorization code was issued for.`,
      );
    }
    if (record.codeChallenge) {
      const verifier = form.get("code_verifier");
      if (!verifier) throw missingParameter("code_verifier");
      const challenge = await pkceChallenge(verifier, record.codeChallengeMethod ?? "plain");
      if (challenge !== record.codeChallenge) {
        throw new EntraFailure(
          400,
          "invalid_grant",
          501481,
          "The Code_Verifier does not match the code_challenge supplied in the authorization " +
            "request.",
        );
      }
    }
    const scope = parseUserScope(form.get("scope") ?? record.scope);
    const response = await userTokenResponse(ctx, grant, client, scope, form);
    record.redeemed = true;
    return response;
  }

  async function deviceCodeGrant(
    ctx: RequestContext,
    tenantId: string,
    form: URLSearchParams,
  ): Promise<Response> {
    const deviceCode = form.get("device_code") ?? form.get("code");
    const entry = deviceCode ? deviceGrants.get(deviceCode) : undefined;
    // Counted before anything can fail, so tests see every poll.
    if (entry) entry.record.polls++;
    const client = await userGrantClient(ctx, tenantId, form);
    if (!deviceCode) throw missingParameter("device_code");
    if (!entry || entry.record.clientId.toLowerCase() !== client.app.clientId.toLowerCase()) {
      throw new EntraFailure(
        400,
        "bad_verification_code",
        70018,
        "The provided value for the input parameter 'device_code' is not valid: this service " +
          "did not issue it to this application.",
      );
    }
    const { record } = entry;
    if (record.status === "redeemed") {
      throw new EntraFailure(
        400,
        "invalid_grant",
        70000,
        "The provided value for the input parameter 'device_code' is not valid: it was " +
          "already redeemed.",
      );
    }
    if (now() > record.expiresAt) {
      throw new EntraFailure(
        400,
        "expired_token",
        70020,
        "The provided value for the input parameter 'device_code' is not valid. This device " +
          "code has expired.",
      );
    }
    if (record.status === "pending") {
      throw new EntraFailure(
        400,
        "authorization_pending",
        70016,
        "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
      );
    }
    if (record.status === "declined" || !entry.grant) {
      // Entra's documentation names the error (authorization_declined) but not its AADSTS
      // code; 65004 is the code of the same user decision on the authorize endpoint.
      throw new EntraFailure(
        400,
        "authorization_declined",
        65004,
        "User declined to consent to access the app.",
      );
    }
    const scope = parseUserScope(form.get("scope") ?? record.scope);
    const response = await userTokenResponse(ctx, entry.grant, client, scope, form);
    record.status = "redeemed";
    return response;
  }

  async function refreshTokenGrant(
    ctx: RequestContext,
    tenantId: string,
    form: URLSearchParams,
  ): Promise<Response> {
    const client = await userGrantClient(ctx, tenantId, form);
    const token = form.get("refresh_token");
    if (!token) throw missingParameter("refresh_token");
    const entry = refreshTokenGrants.get(token);
    if (!entry) {
      throw new EntraFailure(
        400,
        "invalid_grant",
        9002313,
        "Invalid request. Request is malformed or invalid. The refresh token is not one this " +
          "service issued.",
      );
    }
    const { record, grant } = entry;
    if (record.clientId.toLowerCase() !== client.app.clientId.toLowerCase()) {
      throw new EntraFailure(
        400,
        "invalid_grant",
        70000,
        "The provided value for the 'refresh_token' parameter is not valid: it was issued to " +
          "another application.",
      );
    }
    if (record.revoked) {
      const validFrom = tokensValidFrom.get(record.upn.toLowerCase()) ?? now();
      throw new EntraFailure(
        400,
        "invalid_grant",
        50173,
        "The provided grant has expired due to it being revoked, a fresh auth token is needed. " +
          "The user might have changed or reset their password. The grant was issued on " +
          `'${new Date(record.issuedAt).toISOString()}' and the TokensValidFrom date (before ` +
          `which tokens are not valid) for this user is '${new Date(validFrom).toISOString()}'.`,
      );
    }
    const inactiveSeconds = (now() - record.lastUsedAt) / 1000;
    if (inactiveSeconds > maxInactive) {
      throw new EntraFailure(
        400,
        "invalid_grant",
        700082,
        "The refresh token has expired due to inactivity. The token was issued on " +
          `${new Date(record.issuedAt).toISOString()} and was inactive for ` +
          `${timeSpan(maxInactive)}.`,
      );
    }
    const scope = parseUserScope(form.get("scope"));
    const response = await userTokenResponse(ctx, grant, client, scope, form);
    record.lastUsedAt = now();
    record.redemptions++;
    return response;
  }

  /** The answer to the app: a redirect (query or fragment) or a self-posting form. */
  function answerClient(target: ClientTarget, fields: Record<string, string>): Response {
    const all = { ...fields, ...(target.state !== undefined ? { state: target.state } : {}) };
    if (target.responseMode === "form_post") {
      return htmlResponse(200, formPostPage(target.redirectUri, all));
    }
    const url = new URL(target.redirectUri);
    if (target.responseMode === "fragment") {
      url.hash = new URLSearchParams(all).toString();
    } else {
      for (const [k, v] of Object.entries(all)) url.searchParams.append(k, v);
    }
    return new Response(null, {
      status: 302,
      headers: { location: url.toString(), "cache-control": "no-store, no-cache" },
    });
  }

  function errorFields(ctx: RequestContext, failure: EntraFailure): Record<string, string> {
    return {
      error: failure.error,
      error_description: describe(ctx, failure).description,
      error_uri: `${baseUrl}/error?code=${failure.code}`,
    };
  }

  function errorPageResponse(ctx: RequestContext, failure: EntraFailure): Response {
    const code = `AADSTS${failure.code}`;
    return htmlResponse(
      failure.status,
      errorPage(code, `${code}: ${failure.description}`, ctx.traceId, ctx.correlationId),
    );
  }

  function redirectMismatch(redirectUri: string, app: EntraApp): EntraFailure {
    return new EntraFailure(
      400,
      "invalid_request",
      50011,
      `The redirect URI '${redirectUri}' specified in the request does not match the redirect ` +
        `URIs configured for the application '${app.clientId}'. Make sure the redirect URI sent ` +
        "in the request matches one added to your application in the Azure portal. Navigate to " +
        "https://aka.ms/redirectUriMismatchError to learn more about how to fix this.",
    );
  }

  /** Checks what only the app can fix; failures are sent back to the app like Entra does. */
  function checkAuthorizeParameters(query: URLSearchParams): void {
    const mode = query.get("response_mode");
    if (mode !== null && !["query", "fragment", "form_post"].includes(mode)) {
      throw new EntraFailure(
        400,
        "invalid_request",
        70007,
        `The application returned an unsupported value of 'response_mode': '${mode}'.`,
      );
    }
    const responseType = query.get("response_type");
    if (!responseType) throw missingParameter("response_type");
    if (responseType !== "code") {
      throw new EntraFailure(
        400,
        "unsupported_response_type",
        70005,
        `response_type '${responseType}' is not enabled for the application.`,
      );
    }
    parseUserScope(query.get("scope"));
    const challenge = query.get("code_challenge");
    const method = query.get("code_challenge_method");
    if (method !== null && method !== "S256" && method !== "plain") {
      throw new EntraFailure(
        400,
        "invalid_request",
        501491,
        `Invalid code_challenge_method '${method}': use 'S256' or 'plain'.`,
      );
    }
    if (challenge !== null && (challenge.length < 43 || challenge.length > 128)) {
      throw new EntraFailure(
        400,
        "invalid_request",
        501491,
        "Invalid size of Code_Challenge parameter.",
      );
    }
    // There are no browser sessions here, so a silent sign-in always needs the user.
    if (query.get("prompt") === "none") {
      throw new EntraFailure(
        400,
        "login_required",
        50058,
        "A silent sign-in request was sent but no user is signed in.",
      );
    }
  }

  function authorize(ctx: RequestContext): Response {
    const tenant = ctx.params.tenant ?? "";
    const query = ctx.url.searchParams;
    const record: AuthorizeRecord = { tenant, query: Object.fromEntries(query) };
    authorizeRequests.push(record);
    // Until client and redirect URI are known to be good, errors can only be shown to the user.
    let app: EntraApp | undefined;
    let redirectUri: string;
    try {
      const tenantId = userFlowTenant(tenant);
      const clientId = query.get("client_id");
      if (!clientId) throw missingParameter("client_id");
      app = findClientApp(tenantId, clientId);
      if (!app) throw appNotFound(clientId, tenant);
      const uri = query.get("redirect_uri");
      if (!uri) {
        throw new EntraFailure(400, "invalid_request", 900971, "No reply address provided.");
      }
      if (!(app.redirectUris ?? []).some((r) => redirectUriMatches(r, uri))) {
        throw redirectMismatch(uri, app);
      }
      redirectUri = uri;
    } catch (e) {
      if (!(e instanceof EntraFailure)) throw e;
      record.errorCode = `AADSTS${e.code}`;
      return errorPageResponse(ctx, e);
    }
    const mode = query.get("response_mode");
    const target: ClientTarget = {
      redirectUri,
      responseMode: mode === "form_post" || mode === "fragment" ? mode : "query",
      state: query.get("state") ?? undefined,
    };
    try {
      checkAuthorizeParameters(query);
    } catch (e) {
      if (!(e instanceof EntraFailure)) throw e;
      record.errorCode = `AADSTS${e.code}`;
      return answerClient(target, errorFields(ctx, e));
    }
    const challenge = query.get("code_challenge") ?? undefined;
    const method = query.get("code_challenge_method");
    const flowToken = randomToken(32);
    flows.set(flowToken, {
      kind: "authorize",
      tenant,
      app,
      ...target,
      nonce: query.get("nonce") || undefined,
      scope: query.get("scope") ?? "",
      codeChallenge: challenge,
      // RFC 7636: without a method the challenge is the verifier itself.
      codeChallengeMethod: challenge ? (method === "S256" ? "S256" : "plain") : undefined,
      clientInfo: query.get("client_info") === "1",
    });
    return htmlResponse(
      200,
      signInPage({
        tenant,
        flowToken,
        appName: app.displayName ?? app.clientId,
        username: query.get("login_hint") ?? "",
      }),
    );
  }

  async function authorizeSubmit(ctx: RequestContext): Promise<Response> {
    const tenant = ctx.params.tenant ?? "";
    const form = new URLSearchParams(await ctx.request.text());
    const flowToken = form.get("flowToken") ?? "";
    const username = form.get("username") ?? "";
    const action = form.get("action") === "cancel" ? "cancel" : "signin";
    const record: SignInRecord = { tenant, username, action, outcome: "refused" };
    signIns.push(record);
    const flow = flows.get(flowToken);
    if (!flow) {
      const failure = new EntraFailure(
        400,
        "invalid_request",
        9002313,
        "Invalid request. Request is malformed or invalid. The sign-in session was not found; " +
          "start again from the application.",
      );
      record.errorCode = `AADSTS${failure.code}`;
      return errorPageResponse(ctx, failure);
    }
    const declined = new EntraFailure(
      400,
      "access_denied",
      65004,
      "User declined to consent to access the app.",
    );
    if (action === "cancel") {
      flows.delete(flowToken);
      record.outcome = "declined";
      record.errorCode = `AADSTS${declined.code}`;
      if (flow.kind === "device") {
        declineDeviceCode(flow.userCode);
        return htmlResponse(200, devicePage("You declined to sign in on the other device."));
      }
      return answerClient(flow, errorFields(ctx, declined));
    }
    const user = findUser(flow.app.tenantId, username);
    if (!user || user.password !== (form.get("password") ?? "")) {
      // Wrong credentials never reach the app: the form comes back with the error.
      const error = user
        ? {
          code: "AADSTS50126",
          text: "AADSTS50126: Error validating credentials due to invalid username or password.",
        }
        : {
          code: "AADSTS50034",
          text: `AADSTS50034: The user account ${username} does not exist in the ` +
            `'${flow.app.tenantId}' directory. To sign into this application, the account must ` +
            "be added to the directory.",
        };
      record.outcome = "bad_credentials";
      record.errorCode = error.code;
      return htmlResponse(
        200,
        signInPage({
          tenant: flow.tenant,
          flowToken,
          appName: flow.app.displayName ?? flow.app.clientId,
          username,
          error,
        }),
      );
    }
    flows.delete(flowToken);
    if (flow.kind === "device") {
      approveDeviceCode(flow.userCode, user.upn);
      record.outcome = "code";
      return htmlResponse(
        200,
        devicePage(
          `You have signed in to the ${
            flow.app.displayName ?? flow.app.clientId
          } application on your device. You may now close this window.`,
        ),
      );
    }
    const grant: UserGrant = {
      app: flow.app,
      user,
      sessionId: crypto.randomUUID(),
      nonce: flow.nonce,
    };
    try {
      grantedScope(flow.app, parseUserScope(flow.scope));
    } catch (e) {
      if (!(e instanceof EntraFailure)) throw e;
      // Without consent Entra would ask for it; this fake has no consent page and says no.
      const failure = e.code === 65001 ? consentMissing(flow.app, "consent_required") : e;
      record.errorCode = `AADSTS${failure.code}`;
      return answerClient(flow, errorFields(ctx, failure));
    }
    const code = randomToken(64);
    const codeRecord: AuthCodeRecord = {
      code,
      clientId: flow.app.clientId,
      redirectUri: flow.redirectUri,
      upn: user.upn,
      scope: flow.scope,
      codeChallenge: flow.codeChallenge,
      codeChallengeMethod: flow.codeChallengeMethod,
      issuedAt: now(),
      expiresAt: now() + codeLifetime * 1000,
      redeemed: false,
    };
    authCodes.push(codeRecord);
    codeGrants.set(code, { record: codeRecord, grant, tenant: userFlowTenant(flow.tenant) });
    record.outcome = "code";
    return answerClient(flow, {
      code,
      ...(flow.clientInfo ? { client_info: clientInfo(user) } : {}),
      session_state: grant.sessionId,
    });
  }

  async function deviceAuthorization(ctx: RequestContext): Promise<Response> {
    const tenant = ctx.params.tenant ?? "";
    const form = new URLSearchParams(await ctx.request.text());
    try {
      const tenantId = userFlowTenant(tenant);
      const clientId = form.get("client_id");
      if (!clientId) throw missingParameter("client_id");
      const app = findClientApp(tenantId, clientId);
      if (!app) throw appNotFound(clientId, tenant);
      const scope = form.get("scope");
      parseUserScope(scope);
      const record: DeviceCodeRecord = {
        tenant,
        clientId: app.clientId,
        scope: scope ?? "",
        userCode: newUserCode(),
        deviceCode: randomToken(96),
        status: "pending",
        polls: 0,
        expiresAt: now() + deviceLifetime * 1000,
      };
      deviceCodes.push(record);
      deviceGrants.set(record.deviceCode, { record, app });
      const verificationUri = `${baseUrl}/devicelogin`;
      return jsonResponse(200, {
        user_code: record.userCode,
        device_code: record.deviceCode,
        verification_uri: verificationUri,
        expires_in: deviceLifetime,
        interval: deviceInterval,
        message: `To sign in, use a web browser to open the page ${verificationUri} and enter ` +
          `the code ${record.userCode} to authenticate.`,
      }, { "x-ms-request-id": ctx.traceId, "client-request-id": ctx.correlationId });
    } catch (e) {
      if (!(e instanceof EntraFailure)) throw e;
      return errorResponse(ctx, e);
    }
  }

  function findDeviceCode(userCode: string) {
    const wanted = userCode.trim().toUpperCase();
    return [...deviceGrants.values()].find((e) => e.record.userCode === wanted);
  }

  /** The device login page's checks, shared by the page and the test hooks. */
  function pendingDeviceCode(userCode: string) {
    const entry = findDeviceCode(userCode);
    if (!entry || entry.record.status !== "pending") {
      return {
        error: "AADSTS70018: Invalid verification code. The code you entered was not " +
          "recognized or was already used.",
      };
    }
    if (now() > entry.record.expiresAt) {
      return { error: "AADSTS70019: Verification code expired. Have the user retry the sign-in." };
    }
    return { entry };
  }

  function approveDeviceCode(userCode: string, upn: string): void {
    const { entry, error } = pendingDeviceCode(userCode);
    if (!entry) throw new Error(`fake Entra: user code ${userCode}: ${error}`);
    const user = findUser(entry.app.tenantId, upn);
    if (!user) throw new Error(`fake Entra: no user ${upn} in tenant ${entry.app.tenantId}`);
    entry.grant = { app: entry.app, user, sessionId: crypto.randomUUID() };
    entry.record.status = "approved";
    entry.record.upn = user.upn;
  }

  function declineDeviceCode(userCode: string): void {
    const { entry, error } = pendingDeviceCode(userCode);
    if (!entry) throw new Error(`fake Entra: user code ${userCode}: ${error}`);
    entry.record.status = "declined";
  }

  function removeSecret(clientId: string, secret: string): void {
    const app = options.apps.find((a) => a.clientId.toLowerCase() === clientId.toLowerCase());
    if (!app?.secrets?.includes(secret)) {
      throw new Error(`fake Entra: app ${clientId} has no such secret`);
    }
    removedSecrets.set(app, new Set([...(removedSecrets.get(app) ?? []), secret]));
  }

  function revokeRefreshTokens(upn?: string): void {
    for (const record of refreshTokens) {
      if (upn === undefined || record.upn.toLowerCase() === upn.toLowerCase()) {
        record.revoked = true;
        tokensValidFrom.set(record.upn.toLowerCase(), now());
      }
    }
  }

  function devicePage(message: string, error?: string): string {
    const alert = error ? `<p id="error" role="alert">${escapeHtml(error)}</p>\n` : "";
    return htmlPage(
      "Enter code",
      `<h1>Enter code</h1>\n${alert}<p id="message">${escapeHtml(message)}</p>`,
    );
  }

  /** GET /devicelogin: where `verification_uri` points; the user types the code there. */
  function deviceLoginPage(_ctx: RequestContext): Response {
    return htmlResponse(200, deviceCodeForm());
  }

  function deviceCodeForm(error?: string): string {
    const alert = error ? `<p id="error" role="alert">${escapeHtml(error)}</p>\n` : "";
    return htmlPage(
      "Enter code",
      `<h1>Enter code</h1>
${alert}<form method="post" action="/devicelogin" aria-label="Enter code">
<p><label for="otc">Enter the code displayed on your app or device.</label><br>
<input id="otc" name="otc" type="text" autocomplete="off"></p>
<p><button id="next" type="submit">Next</button></p>
</form>`,
    );
  }

  /** POST /devicelogin: a good code leads to the sign-in form, which approves or declines it. */
  async function deviceLoginSubmit(ctx: RequestContext): Promise<Response> {
    const form = new URLSearchParams(await ctx.request.text());
    const { entry, error } = pendingDeviceCode(form.get("otc") ?? "");
    if (!entry) return htmlResponse(200, deviceCodeForm(error));
    const flowToken = randomToken(32);
    flows.set(flowToken, {
      kind: "device",
      tenant: entry.record.tenant,
      app: entry.app,
      userCode: entry.record.userCode,
    });
    return htmlResponse(
      200,
      signInPage({
        tenant: entry.record.tenant,
        flowToken,
        appName: entry.app.displayName ?? entry.app.clientId,
        username: "",
      }),
    );
  }

  const grantHandlers: Record<string, GrantHandler> = {
    client_credentials: clientCredentialsGrant,
    authorization_code: authorizationCodeGrant,
    refresh_token: refreshTokenGrant,
    // msal sends the short name; the RFC 8628 URN is accepted too, as Entra does.
    device_code: deviceCodeGrant,
    [DEVICE_CODE_GRANT]: deviceCodeGrant,
  };

  async function token(ctx: RequestContext): Promise<Response> {
    const tenant = ctx.params.tenant ?? "";
    const form = new URLSearchParams(await ctx.request.text());
    // msal sends its request ID in the form body (with its telemetry), not as a header.
    ctx.correlationId = form.get("client-request-id") ?? ctx.correlationId;
    const record: TokenRequestRecord = {
      tenant,
      body: Object.fromEntries(form),
      headers: Object.fromEntries(ctx.request.headers),
      status: 0,
    };
    tokenRequests.push(record);
    let response: Response;
    try {
      response = await tokenGrant(ctx, tenant, form);
    } catch (e) {
      if (!(e instanceof EntraFailure)) throw e;
      record.error = e.error;
      record.errorCode = `AADSTS${e.code}`;
      response = errorResponse(ctx, e);
    }
    record.status = response.status;
    if (options.tokenDelayMs) await new Promise((r) => setTimeout(r, options.tokenDelayMs));
    record.answeredAt = performance.timeOrigin + performance.now();
    return response;
  }

  function tokenGrant(ctx: RequestContext, tenant: string, form: URLSearchParams) {
    const grantType = form.get("grant_type");
    const alias = TENANT_ALIASES.has(tenant.toLowerCase());
    if (alias && grantType === "client_credentials") {
      throw new EntraFailure(
        400,
        "invalid_request",
        50059,
        "No tenant-identifying information found in either the request or implied by any " +
          "provided credentials.",
      );
    }
    // User grants work on the aliases too: the user (or the app) tells which directory.
    const tenantId = alias ? tenant.toLowerCase() : findTenant(tenant);
    if (!tenantId) throw tenantNotFound(tenant);
    if (!grantType) throw missingParameter("grant_type");
    const handler = grantHandlers[grantType];
    if (!handler) {
      throw new EntraFailure(
        400,
        "unsupported_grant_type",
        70003,
        `The app requested an unsupported grant type '${grantType}'.`,
      );
    }
    return handler(ctx, tenantId, form);
  }

  function tokenWrongMethod(ctx: RequestContext): Response {
    return errorResponse(
      ctx,
      new EntraFailure(
        400,
        "invalid_request",
        900561,
        `The endpoint only accepts POST requests. Received a ${ctx.request.method} request.`,
      ),
    );
  }

  const route = (method: string, pathname: string, handle: Route["handle"]): Route => ({
    method,
    pattern: new URLPattern({ pathname }),
    handle,
  });
  const routes: Route[] = [
    route("GET", "/common/discovery/instance", instanceDiscovery),
    route("GET", "/:tenant/v2.0/.well-known/openid-configuration", openIdConfiguration),
    route("GET", "/:tenant/discovery/v2.0/keys", keys),
    route("POST", "/:tenant/oauth2/v2.0/token", token),
    route("GET", "/:tenant/oauth2/v2.0/token", tokenWrongMethod),
    route("GET", "/:tenant/oauth2/v2.0/authorize", authorize),
    route("POST", "/:tenant/oauth2/v2.0/authorize/submit", authorizeSubmit),
    route("POST", "/:tenant/oauth2/v2.0/devicecode", deviceAuthorization),
    route("GET", "/devicelogin", deviceLoginPage),
    route("POST", "/devicelogin", deviceLoginSubmit),
  ];

  async function handle(request: Request): Promise<Response> {
    const url = new URL(request.url);
    requests.push({ method: request.method, path: url.pathname, search: url.search });
    // Entra echoes the client's request ID as the correlation ID, so logs on both sides match.
    const ctx: RequestContext = {
      request,
      url,
      params: {},
      correlationId: request.headers.get("client-request-id") ??
        url.searchParams.get("client-request-id") ?? crypto.randomUUID(),
      traceId: crypto.randomUUID(),
    };
    for (const r of routes) {
      if (r.method !== request.method) continue;
      const match = r.pattern.exec({ pathname: url.pathname });
      if (!match) continue;
      ctx.params = match.pathname.groups;
      try {
        return await r.handle(ctx);
      } catch (e) {
        // A bug in the fake must show up in the test output, not as a hung client.
        console.error("fake Entra handler failed:", e);
        return jsonResponse(500, { error: "server_error", error_description: String(e) });
      }
    }
    return jsonResponse(404, {
      error: "not_found",
      error_description: `No endpoint ${request.method} ${url.pathname}.`,
    });
  }

  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    cert: options.tls.certPem,
    key: options.tls.keyPem,
    onListen: () => {},
  }, handle);
  const port = server.addr.port;
  const host = `127.0.0.1:${port}`;
  baseUrl = `https://${host}`;

  return {
    url: baseUrl,
    host,
    port,
    issuer,
    authorityMetadata: (tenant: string) => {
      const base = `${baseUrl}/${tenant}`;
      return JSON.stringify({
        issuer: `${base}/v2.0`,
        authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
        token_endpoint: `${base}/oauth2/v2.0/token`,
        device_authorization_endpoint: `${base}/oauth2/v2.0/devicecode`,
        end_session_endpoint: `${base}/oauth2/v2.0/logout`,
        jwks_uri: `${base}/discovery/v2.0/keys`,
      });
    },
    signingKey: { kid: signing.kid, publicKeyPem: signing.publicKeyPem, alg: "RS256" },
    requests,
    tokenRequests,
    issuedTokens,
    issuedIdTokens,
    authorizeRequests,
    signIns,
    authCodes,
    deviceCodes,
    refreshTokens,
    get refreshGrants() {
      return tokenRequests.filter((r) => r.body.grant_type === "refresh_token").length;
    },
    approveDeviceCode,
    declineDeviceCode,
    revokeRefreshTokens,
    removeSecret,
    close: () => server.shutdown(),
  };
}
