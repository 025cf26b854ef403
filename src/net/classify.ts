/**
 * What a failed connection's error text says went wrong, for the token
 * request (auth/msal_common.ts) and the mail connection (mail/tls_transport.ts)
 * alike. Deno has no error classes for most of these: rustls' and the
 * resolver's reasons are only in messages ("invalid peer certificate:
 * UnknownIssuer", "failed to lookup address information").
 */
import type { ErrorCode } from "../errors.ts";

export type NetworkCode = Extract<
  ErrorCode,
  | "PROXY_AUTH_FAILED"
  | "PROXY_REFUSED"
  | "TLS_HOSTNAME"
  | "TLS_UNTRUSTED"
  | "CONNECTION_REFUSED"
  | "DNS_FAILED"
>;

/** First match wins: a proxy's refusal mentions the target, a certificate error the host. */
const PATTERNS: [NetworkCode, RegExp][] = [
  ["PROXY_AUTH_FAILED", /proxy authentication required/i],
  // Deno's words when a proxy answers CONNECT with anything but 200, or hangs up.
  ["PROXY_REFUSED", /\bproxy\b|unsuccessful tunnel|while tunneling/i],
  ["TLS_HOSTNAME", /NotValidForName|not valid for name/i],
  ["TLS_UNTRUSTED", /UnknownIssuer|CaUsedAsEndEntity|self[- ]signed/i],
  ["CONNECTION_REFUSED", /refused/i],
  [
    "DNS_FAILED",
    /lookup address information|name or service not known|name resolution|nodename nor servname|no such host|\bdns\b|lookup|resolve/i,
  ],
];

/** The code for an error text, or undefined when it names none of these causes. */
export function classifyNetworkError(text: string): NetworkCode | undefined {
  return PATTERNS.find(([, pattern]) => pattern.test(text))?.[0];
}
