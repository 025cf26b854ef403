import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { constants, createHash, generateKeyPairSync, sign as rsaSign, verify } from "node:crypto";
import { type AssertionSigner, signedAssertion } from "./assertion.ts";

const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
// Any bytes serve as "the certificate" here: only their hashes and base64 go into the header.
const CERT = new TextEncoder().encode("certificate DER bytes");

function decode(part: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
}

function signer(refusePss: boolean, calls: string[]): AssertionSigner {
  return (alg, data) => {
    calls.push(alg);
    if (alg === "PS256" && refusePss) return Promise.resolve({ pssRefused: "CryptoAPI key" });
    const padding = alg === "PS256"
      ? { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }
      : { padding: constants.RSA_PKCS1_PADDING };
    return Promise.resolve({
      signature: new Uint8Array(rsaSign("sha256", data, { key: privateKey, ...padding })),
    });
  };
}

function verifies(jwt: string, alg: "PS256" | "RS256"): boolean {
  const [h, p, s] = jwt.split(".");
  const padding = alg === "PS256"
    ? { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }
    : { padding: constants.RSA_PKCS1_PADDING };
  return verify(
    "sha256",
    Buffer.from(`${h}.${p}`),
    { key: publicKey, ...padding },
    Buffer.from(s, "base64url"),
  );
}

Deno.test("signedAssertion() builds a PS256 assertion with x5t#S256, x5c and Entra's claims", async () => {
  const calls: string[] = [];
  const now = new Date("2026-12-05T10:00:00Z");
  const a = await signedAssertion(
    { clientId: "app-id", audience: "https://login/t/oauth2/v2.0/token", certificate: CERT, now },
    signer(false, calls),
  );
  assert.equal(a.alg, "PS256");
  assert.deepEqual(calls, ["PS256"]);
  const [h, p] = a.jwt.split(".");
  assert.deepEqual(decode(h), {
    alg: "PS256",
    typ: "JWT",
    "x5t#S256": createHash("sha256").update(CERT).digest("base64url"),
    x5c: [Buffer.from(CERT).toString("base64")],
  });
  const payload = decode(p);
  assert.equal(payload.aud, "https://login/t/oauth2/v2.0/token");
  assert.equal(payload.iss, "app-id");
  assert.equal(payload.sub, "app-id");
  assert.equal(payload.nbf, now.getTime() / 1000);
  assert.equal(payload.exp, now.getTime() / 1000 + 600);
  assert.match(String(payload.jti), /^[0-9a-f-]{36}$/);
  assert.ok(verifies(a.jwt, "PS256"));
});

Deno.test("signedAssertion() falls back to RS256 with the SHA-1 x5t when PSS is refused", async () => {
  const calls: string[] = [];
  const a = await signedAssertion(
    { clientId: "app-id", audience: "aud", certificate: CERT },
    signer(true, calls),
  );
  assert.deepEqual(calls, ["PS256", "RS256"]);
  assert.equal(a.alg, "RS256");
  assert.equal(a.pssRefused, "CryptoAPI key");
  const header = decode(a.jwt.split(".")[0]);
  assert.equal(header.alg, "RS256");
  assert.equal(header.x5t, createHash("sha1").update(CERT).digest("base64url"));
  assert.equal(header["x5t#S256"], undefined);
  assert.ok(verifies(a.jwt, "RS256"));

  // Once known, the next assertion goes straight to RS256.
  const again: string[] = [];
  await signedAssertion(
    { clientId: "x", audience: "aud", certificate: CERT },
    signer(true, again),
    true,
  );
  assert.deepEqual(again, ["RS256"]);
});
