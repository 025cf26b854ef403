/**
 * What every msal-node flow shares: configuration that keeps msal to the one
 * authority it is given (no discovery calls), our HTTP client, and the
 * translation of msal's errors into TokenError with Entra's AADSTS code.
 */
import {
  ConnectionError,
  type EntraCode,
  type ErrorCode,
  messageOf,
  receivedCode,
  TokenError,
  ToolError,
} from "../errors.ts";
import type { ICachePlugin } from "@azure/msal-node";
import { FetchNetworkClient, type TransportFailure } from "./network.ts";
import { classifyNetworkError } from "../net/classify.ts";
import { describeProxy, type ProxyRoute, unreachableMessage } from "../net/proxy_choice.ts";

export interface MsalTarget {
  authorityHost: string;
  tenantId: string;
  clientId: string;
  caCerts: string[];
  timeoutMs: number;
  proxy?: URL;
  /** The proxy the token request goes through (for messages), see net/proxy_choice.ts. */
  proxyRoute?: ProxyRoute;
  onVerbose?: (message: string) => void;
  cachePlugin?: ICachePlugin;
}

/**
 * Endpoint metadata built locally: with it and `knownAuthorities`, msal makes
 * exactly one request (the token POST) instead of three, and never calls
 * Microsoft's instance-discovery host when the authority is somewhere else.
 */
export function authorityMetadata(authority: string): string {
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
export function aadstsCode(error: Record<string, unknown>): EntraCode | undefined {
  // msal types errorNo as a string but passes Entra's number through as is.
  const number = String(error.errorNo ?? "");
  if (/^\d+$/.test(number)) return `AADSTS${Number(number)}`;
  const text = `${error.errorMessage ?? ""} ${error.message ?? ""}`;
  const found = /AADSTS(\d+)/.exec(text);
  return found ? `AADSTS${Number(found[1])}` : undefined;
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

export function describeTransport(
  failure: TransportFailure,
  timeoutMs: number,
): TokenError | ConnectionError {
  const host = new URL(failure.url).host;
  const cause = failure.error;
  const detail = messageOf(cause);
  // Through a proxy, every step but TLS (end to end, inside the tunnel) is the proxy's.
  const proxy = failure.proxy;
  const via = proxy ? ` through ${describeProxy(proxy)}` : "";
  if (failure.timedOut) {
    return new TokenError(`no answer from ${host}${via} within ${timeoutMs / 1000} s`, {
      code: "TIMEOUT",
      cause,
    });
  }
  const innerMessage = cause instanceof Error && cause.cause instanceof Error
    ? cause.cause.message
    : "";
  const all = `${detail} ${innerMessage}`;
  // Any other certificate complaint (expired, revoked) means the same here: not trusted.
  const kind = classifyNetworkError(all) ??
    (/certificate/i.test(all) ? "TLS_UNTRUSTED" : undefined);
  if (proxy) {
    switch (kind) {
      case "PROXY_AUTH_FAILED":
        return new ConnectionError(
          `${describeProxy(proxy)} refused the credentials (HTTP 407) for the request to ${host}`,
          { code: kind, cause },
        );
      case "PROXY_REFUSED":
        return new ConnectionError(
          `${describeProxy(proxy)} refused the connection to ${host} ` +
            `(${/tunnel/.test(all) ? "no tunnel: its answer to CONNECT was not 200" : detail})`,
          { code: kind, cause },
        );
      case "TLS_HOSTNAME":
      case "TLS_UNTRUSTED":
        break;
      default:
        // Refused, unresolvable, or no TCP connection at all: the proxy's (a TLS failure with
        // the authority also says "(Connect)", so only these).
        if (kind === "CONNECTION_REFUSED" || kind === "DNS_FAILED" || /tcp connect/i.test(all)) {
          return new ConnectionError(unreachableMessage(proxy, all), {
            code: "PROXY_UNREACHABLE",
            cause,
          });
        }
    }
  }
  switch (kind) {
    // A proxy that refuses is a connection problem (exit 4), like it is for the mail connection.
    case "PROXY_AUTH_FAILED":
      return new ConnectionError(
        `the proxy refused the credentials (HTTP 407) for the request to ${host}`,
        { code: kind, cause },
      );
    case "PROXY_REFUSED":
      return new ConnectionError(
        `the proxy failed for the request to ${host}: ${innerMessage || detail}`,
        { code: kind, cause },
      );
    case "TLS_HOSTNAME":
      return new TokenError(`the TLS certificate of ${host} is not valid for that name${via}`, {
        code: kind,
        cause,
      });
    case "TLS_UNTRUSTED":
      return new TokenError(`the TLS certificate of ${host} is not trusted (${detail})${via}`, {
        code: kind,
        cause,
      });
    case "CONNECTION_REFUSED":
      return new TokenError(`connection to ${host} refused`, { code: kind, cause });
    case "DNS_FAILED":
      return new TokenError(`cannot resolve ${host}`, { code: kind, cause });
  }
  return new TokenError(`request to ${host}${via} failed: ${detail}`, {
    code: "NETWORK_ERROR",
    cause,
  });
}

/** Everything msal's constructors need besides the credential. */
export function msalSetup(target: MsalTarget) {
  const authority = `${target.authorityHost}/${target.tenantId}`;
  const network = networkFor(target);
  return {
    network,
    auth: {
      clientId: target.clientId,
      authority,
      knownAuthorities: [new URL(target.authorityHost).host],
      authorityMetadata: authorityMetadata(authority),
    },
    system: { networkClient: network },
    cache: target.cachePlugin ? { cachePlugin: target.cachePlugin } : undefined,
  };
}

/** Our HTTP client for requests to the authority (-Verbose names each request). */
export function networkFor(target: MsalTarget): FetchNetworkClient {
  return new FetchNetworkClient({
    caCerts: target.caCerts,
    timeoutMs: target.timeoutMs,
    proxy: target.proxy,
    route: target.proxyRoute,
    onRequest: (method, url) => target.onVerbose?.(`${method} ${url.split("?")[0]}`),
  });
}

/** Turns whatever msal threw into a TokenError that names the real cause. */
export function toTokenError(
  error: unknown,
  network: FetchNetworkClient,
  timeoutMs: number,
): ToolError {
  // Our own errors pass through: the store's signer fails inside msal's assertion callback.
  if (error instanceof ToolError) return error;
  if (network.lastFailure) return describeTransport(network.lastFailure, timeoutMs);
  // Retries used up on 429/5xx: the whole answer, attempts and support IDs, as network.ts put it.
  if (network.gaveUp) {
    return new TokenError(`Entra ID refused the token request: ${network.gaveUp.message}`, {
      code: receivedCode(network.gaveUp.code),
      cause: error,
    });
  }
  const e = (error ?? {}) as Record<string, unknown>;
  let code: ErrorCode | undefined = aadstsCode(e);
  let description = typeof e.errorMessage === "string" && e.errorMessage
    ? e.errorMessage
    : error instanceof Error
    ? error.message
    : String(error);
  const body = network.lastErrorBody;
  if (!code && body?.error_description) {
    // msal kept only the OAuth error name (device code polling does this): use Entra's answer.
    code = aadstsCode({ errorMessage: body.error_description });
    description = body.error_description;
  }
  code ??= receivedCode(e.errorCode);
  return new TokenError(`Entra ID refused the token request: ${entraDescription(description)}`, {
    code,
    cause: error,
  });
}

/** msal's result as our TokenResult; an answer without a token is an error, not a result. */
export function tokenResultOf(
  result: { accessToken?: string; expiresOn?: Date | null; fromCache?: boolean } | null,
): { accessToken: string; expiresOn: Date | null; fromCache: boolean } {
  if (!result?.accessToken) {
    throw new TokenError("Entra ID answered without an access token", { code: "NO_TOKEN" });
  }
  return {
    accessToken: result.accessToken,
    expiresOn: result.expiresOn ?? null,
    fromCache: result.fromCache ?? false,
  };
}
