/**
 * A fake Entra ID (Microsoft identity platform, v2.0 endpoints) for the test bed and the demo.
 *
 * It answers the requests msal-node makes for the client credentials flow, with the same JSON
 * shapes, status codes and AADSTS codes as the real service, so the tool's error handling is
 * tested against what users will actually see. It listens on 127.0.0.1 only, over HTTPS (msal
 * refuses plain-HTTP authorities), and records every request so tests can assert what was sent.
 *
 * Endpoints live in a small route table (`routes`): the authorize and device-code endpoints of a
 * later issue are added there, and new grant types go into `grantHandlers`.
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
}

export interface TokenRequestRecord {
  tenant: string;
  /** The parsed form body, as sent (secrets and assertions included: this is a test bed). */
  body: Record<string, string>;
  /** Request headers, lower-case names. */
  headers: Record<string, string>;
  status: number;
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

export interface FakeEntra {
  /** `https://127.0.0.1:PORT`, the AuthorityHost to give the CLI. */
  url: string;
  /** `127.0.0.1:PORT`, for msal `knownAuthorities`. */
  host: string;
  port: number;
  /** `iss` claim of issued access tokens: `https://sts.windows.net/<tenant>/`. */
  issuer(tenantId: string): string;
  signingKey: { kid: string; publicKeyPem: string; alg: "RS256" };
  /** Every HTTP request received, in order. */
  requests: RequestRecord[];
  /** Every token endpoint call with its parsed form body and outcome. */
  tokenRequests: TokenRequestRecord[];
  /** Every access token issued (raw JWT). */
  issuedTokens: string[];
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

/** One failure answered in Entra's error JSON. */
class EntraFailure extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    readonly code: number,
    readonly description: string,
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
  /** `appidacr`: "1" for a secret, "2" for a certificate. */
  authMethod: "1" | "2";
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

  const tenants = new Map<string, string>();
  for (const t of options.tenants ?? options.apps.map((a) => a.tenantId)) {
    tenants.set(t.toLowerCase(), t);
  }
  const servicePrincipals = new Map<EntraApp, string>();
  const certificates = new Map<EntraApp, RegisteredCertificate[]>();
  for (const app of options.apps) {
    servicePrincipals.set(app, app.servicePrincipalId ?? crypto.randomUUID());
    certificates.set(app, await Promise.all((app.certificates ?? []).map(registerCertificate)));
  }

  const requests: RequestRecord[] = [];
  const tokenRequests: TokenRequestRecord[] = [];
  const issuedTokens: string[] = [];
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

  /** Entra's error JSON; the description ends with IDs and time on their own CRLF lines, as Entra's does. */
  function errorResponse(ctx: RequestContext, failure: EntraFailure): Response {
    const timestamp = entraTimestamp(now());
    const description = `AADSTS${failure.code}: ${failure.description}\r\n` +
      `Trace ID: ${ctx.traceId}\r\nCorrelation ID: ${ctx.correlationId}\r\nTimestamp: ${timestamp}`;
    return jsonResponse(failure.status, {
      error: failure.error,
      error_description: description,
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
    if (app.secrets?.includes(secret)) return;
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
    if (!scope) {
      throw new EntraFailure(
        400,
        "invalid_request",
        900144,
        "The request body must contain the following parameter: 'scope'.",
      );
    }
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
    if (!clientId) {
      throw new EntraFailure(
        400,
        "invalid_request",
        900144,
        "The request body must contain the following parameter: 'client_id'.",
      );
    }
    const app = findApp(tenantId, clientId);
    if (!app) {
      throw new EntraFailure(
        400,
        "unauthorized_client",
        700016,
        `Application with identifier '${clientId}' was not found in the directory ` +
          `'${tenantId}'. The administrator may not have installed or consented to it in this ` +
          "tenant, or the request was sent to the wrong tenant.",
      );
    }
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

  const grantHandlers: Record<string, GrantHandler> = {
    client_credentials: clientCredentialsGrant,
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
    return response;
  }

  function tokenGrant(ctx: RequestContext, tenant: string, form: URLSearchParams) {
    const grantType = form.get("grant_type");
    if (TENANT_ALIASES.has(tenant.toLowerCase()) && grantType === "client_credentials") {
      throw new EntraFailure(
        400,
        "invalid_request",
        50059,
        "No tenant-identifying information found in either the request or implied by any " +
          "provided credentials.",
      );
    }
    const tenantId = findTenant(tenant);
    if (!tenantId) throw tenantNotFound(tenant);
    if (!grantType) {
      throw new EntraFailure(
        400,
        "invalid_request",
        900144,
        "The request body must contain the following parameter: 'grant_type'.",
      );
    }
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
    signingKey: { kid: signing.kid, publicKeyPem: signing.publicKeyPem, alg: "RS256" },
    requests,
    tokenRequests,
    issuedTokens,
    close: () => server.shutdown(),
  };
}
