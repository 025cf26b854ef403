import assert from "node:assert/strict";
import { classifyNetworkError } from "./classify.ts";

Deno.test("classifyNetworkError() names the causes Deno only states in messages", () => {
  const cases: [string, string | undefined][] = [
    ["client error (Connect): proxy authentication required", "PROXY_AUTH_FAILED"],
    ["tunnel error: proxy answered 502", "PROXY_REFUSED"],
    ["invalid peer certificate: NotValidForName", "TLS_HOSTNAME"],
    ["invalid peer certificate: UnknownIssuer", "TLS_UNTRUSTED"],
    ["invalid peer certificate: Other(OtherError(CaUsedAsEndEntity))", "TLS_UNTRUSTED"],
    ["Connection refused (os error 111)", "CONNECTION_REFUSED"],
    ["failed to lookup address information: Name or service not known", "DNS_FAILED"],
    ["invalid peer certificate: Expired", undefined],
    ["received fatal alert: ProtocolVersion", undefined],
  ];
  for (const [text, code] of cases) assert.equal(classifyNetworkError(text), code, text);
});
