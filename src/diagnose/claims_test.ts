import assert from "node:assert/strict";
import { decodeClaims, servicePrincipalId, summarizeClaims } from "./claims.ts";

function jwt(payload: unknown): string {
  const b64 = (s: string) =>
    btoa(String.fromCharCode(...new TextEncoder().encode(s))).replace(/\+/g, "-").replace(
      /\//g,
      "_",
    ).replace(/=+$/, "");
  return `${b64('{"alg":"RS256"}')}.${b64(JSON.stringify(payload))}.sig`;
}

Deno.test("decodeClaims() reads a JWT payload, including base64url characters", () => {
  const claims = decodeClaims(
    jwt({ aud: "https://outlook.office365.com", roles: ["POP.AccessAsApp"], n: "ü?>" }),
  );
  assert.deepEqual(claims, {
    aud: "https://outlook.office365.com",
    roles: ["POP.AccessAsApp"],
    n: "ü?>",
  });
});

Deno.test("decodeClaims() returns null for opaque or broken tokens", () => {
  assert.equal(decodeClaims("opaque-token"), null);
  assert.equal(decodeClaims("a.!!!.c"), null);
  assert.equal(decodeClaims(jwt([1, 2])), null);
});

Deno.test("summarizeClaims() keeps only the claims worth showing", () => {
  assert.deepEqual(summarizeClaims({ aud: "a", tid: "t", roles: ["r"], secretish: "x", exp: 1 }), {
    aud: "a",
    tid: "t",
    roles: ["r"],
    exp: 1,
  });
});

Deno.test("servicePrincipalId() is the token's oid when it is a GUID", () => {
  const oid = "6c0f9a4e-2b7d-4e15-9f83-d1a2b3c4e5f6";
  assert.equal(servicePrincipalId({ oid }), oid);
  assert.equal(servicePrincipalId({ oid: "not-a-guid" }), undefined);
  assert.equal(servicePrincipalId({}), undefined);
  assert.equal(servicePrincipalId(null), undefined);
});
