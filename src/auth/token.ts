/**
 * App-only tokens (client credentials) with msal-node. This folder is the
 * only importer of msal-node, and msal is loaded lazily so that usage errors
 * and `--help` never pay for its import (~100 ms).
 */
import { TokenError } from "../errors.ts";
import type { LoadedCertificate } from "./certificate.ts";
import { FetchNetworkClient, type TransportFailure } from "./network.ts";

export const EXCHANGE_SCOPE = "https://outlook.office365.com/.default";

export type AppCredential =
  | { kind: "secret"; secret: string }
  | { kind: "certificate"; certificate: LoadedCertificate };

export interface AppTokenRequest {
  authorityHost: string;
  tenantId: string;
  clientId: string;
  credential: AppCredential;
  scopes: string[];
  caCerts: string[];
  timeoutMs: number;
  onVerbose?: (message: string) => void;
}

export interface TokenResult {
  accessToken: string;
  expiresOn: Date | null;
  fromCache: boolean;
}

/**
 * Endpoint metadata built locally: with it and `knownAuthorities`, msal makes
 * exactly one request (the token POST) instead of three, and never calls
 * Microsoft's instance-discovery host when the authority is somewhere else.
 */
function authorityMetadata(authority: string): string {
  return JSON.stringify({
    token_endpoint: `${authority}/oauth2/v2.0/token`,
    authorization_endpoint: `${authority}/oauth2/v2.0/authorize`,
    device_authorization_endpoint: `${authority}/oauth2/v2.0/devicecode`,
    end_session_endpoint: `${authority}/oauth2/v2.0/logout`,
    jwks_uri: `${authority}/discovery/v2.0/keys`,
    issuer: `${authority}/v2.0`,
  });
}

/** Reads msal's server errors: `errorNo` or the `AADSTS<n>:` prefix of the description. */
function aadstsCode(error: Record<string, unknown>): string | undefined {
  // msal types errorNo as a string but passes Entra's number through as is.
  const number = String(error.errorNo ?? "");
  if (/^\d+$/.test(number)) return `AADSTS${number}`;
  const text = `${error.errorMessage ?? ""} ${error.message ?? ""}`;
  return /AADSTS(\d+)/.exec(text)?.[0];
}

/**
 * Entra's description without msal's wrapping ("Error(s): ... - Description: ...")
 * and without the trace/correlation IDs and timestamps, on one line.
 */
export function entraDescription(text: string): string {
  const described = /Description:\s*([\s\S]*?)(?:\s+-\s+(?:Correlation ID|Trace ID):|$)/.exec(text);
  const body = described ? described[1] : text.replace(/^[a-z_]+:\s*/, "");
  return body.split(/\s*(?:Trace ID|Correlation ID|Timestamp):/)[0].replace(/\s+/g, " ").trim();
}

function describeTransport(failure: TransportFailure, timeoutMs: number): TokenError {
  const host = new URL(failure.url).host;
  const cause = failure.error;
  const detail = cause instanceof Error ? cause.message : String(cause);
  if (failure.timedOut) {
    return new TokenError(`no answer from ${host} within ${timeoutMs / 1000} s`, {
      code: "TIMEOUT",
      cause,
    });
  }
  const innerMessage = cause instanceof Error && cause.cause instanceof Error
    ? cause.cause.message
    : "";
  const all = `${detail} ${innerMessage}`;
  if (/UnknownIssuer|invalid peer certificate|certificate/i.test(all)) {
    const hostname = /NotValidForName|not valid for name/i.test(all);
    return new TokenError(
      hostname
        ? `the TLS certificate of ${host} is not valid for that name`
        : `the TLS certificate of ${host} is not trusted (${detail})`,
      { code: hostname ? "TLS_HOSTNAME" : "TLS_UNTRUSTED", cause },
    );
  }
  if (/refused/i.test(all)) {
    return new TokenError(`connection to ${host} refused`, { code: "CONNECTION_REFUSED", cause });
  }
  if (/dns|lookup|resolve|name or service/i.test(all)) {
    return new TokenError(`cannot resolve ${host}`, { code: "DNS_FAILED", cause });
  }
  return new TokenError(`request to ${host} failed: ${detail}`, { code: "NETWORK_ERROR", cause });
}

/** Gets an app token for Exchange Online. Throws `TokenError` (exit 3). */
export async function acquireAppToken(request: AppTokenRequest): Promise<TokenResult> {
  const msal = await import("@azure/msal-node");
  const authority = `${request.authorityHost}/${request.tenantId}`;
  const network = new FetchNetworkClient({
    caCerts: request.caCerts,
    timeoutMs: request.timeoutMs,
    onRequest: (method, url) => request.onVerbose?.(`${method} ${url}`),
  });
  const credential = request.credential;
  const app = new msal.ConfidentialClientApplication({
    auth: {
      clientId: request.clientId,
      authority,
      knownAuthorities: [new URL(request.authorityHost).host],
      authorityMetadata: authorityMetadata(authority),
      ...(credential.kind === "secret" ? { clientSecret: credential.secret } : {
        clientCertificate: {
          thumbprintSha256: credential.certificate.thumbprintSha256,
          privateKey: credential.certificate.privateKeyPem,
          x5c: credential.certificate.chainPem,
        },
      }),
    },
    system: { networkClient: network },
  });
  try {
    const result = await app.acquireTokenByClientCredential({ scopes: request.scopes });
    if (!result?.accessToken) {
      throw new TokenError("Entra ID answered without an access token", { code: "NO_TOKEN" });
    }
    return {
      accessToken: result.accessToken,
      expiresOn: result.expiresOn ?? null,
      fromCache: result.fromCache ?? false,
    };
  } catch (error) {
    if (error instanceof TokenError) throw error;
    if (network.lastFailure) throw describeTransport(network.lastFailure, request.timeoutMs);
    const e = (error ?? {}) as Record<string, unknown>;
    const code = aadstsCode(e) ?? (typeof e.errorCode === "string" ? e.errorCode : undefined);
    const description = typeof e.errorMessage === "string" && e.errorMessage
      ? e.errorMessage
      : error instanceof Error
      ? error.message
      : String(error);
    throw new TokenError(`Entra ID refused the token request: ${entraDescription(description)}`, {
      code,
      cause: error,
    });
  } finally {
    network.close();
  }
}
