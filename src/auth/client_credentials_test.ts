import assert from "node:assert/strict";
import { acquireAppToken, type AppTokenRequest } from "./token.ts";
import { pemKeySigner, requestClientCredentialsToken } from "./client_credentials.ts";
import { FetchNetworkClient } from "./network.ts";
import { loadCertificate } from "./certificate.ts";
import { TokenError, UsageError } from "../errors.ts";
import { fromBase64 } from "../base64.ts";
import { makeAppCertificate, makeServerPki } from "../../test/bed/pki.ts";
import { startFakeEntra } from "../../test/bed/entra.ts";

const TENANT = "11111111-2222-4333-8444-555555555555";
const CLIENT = "66666666-7777-4888-8999-000000000000";
const SECRET = "a-long-enough-client-secret";
const SCOPE = "https://outlook.office365.com/.default";

function jwtPart(jwt: string, i: number): Record<string, unknown> {
  const b64 = jwt.split(".")[i].replace(/-/g, "+").replace(/_/g, "/");
  return JSON.parse(
    new TextDecoder().decode(fromBase64(b64 + "=".repeat((4 - b64.length % 4) % 4))),
  );
}

Deno.test("pemKeySigner() signs PS256 and RS256 so that the public key verifies both", async () => {
  const pair = await crypto.subtle.generateKey(
    {
      name: "RSA-PSS",
      modulusLength: 2048,
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: "SHA-256",
    },
    true,
    ["sign", "verify"],
  );
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", pair.privateKey));
  const pem = `-----BEGIN PRIVATE KEY-----\n${
    btoa(String.fromCharCode(...pkcs8)).replace(/.{64}/g, "$&\n")
  }\n-----END PRIVATE KEY-----\n`;
  const spki = await crypto.subtle.exportKey("spki", pair.publicKey);
  const sign = pemKeySigner(pem);
  const data = new TextEncoder().encode("header.payload");
  for (
    const [alg, verify] of [
      ["PS256", { name: "RSA-PSS", saltLength: 32 }],
      ["RS256", { name: "RSASSA-PKCS1-v1_5" }],
    ] as const
  ) {
    const result = await sign(alg, data);
    assert.ok("signature" in result);
    const key = await crypto.subtle.importKey(
      "spki",
      spki,
      { name: verify.name, hash: "SHA-256" },
      false,
      ["verify"],
    );
    assert.ok(await crypto.subtle.verify(verify, key, new Uint8Array(result.signature), data), alg);
  }
});

Deno.test("acquireAppToken() sends one client-credentials POST as msal-node did", async (t) => {
  const pki = await makeServerPki();
  const cert = await makeAppCertificate(pki.dir, "app");
  const entra = await startFakeEntra({
    tls: { certPem: pki.certPem, keyPem: pki.keyPem },
    apps: [{
      tenantId: TENANT,
      clientId: CLIENT,
      secrets: [SECRET],
      certificates: [cert.certPem],
      roles: ["IMAP.AccessAsApp"],
    }],
  });
  const request = (over: Partial<AppTokenRequest> = {}): AppTokenRequest => ({
    authorityHost: entra.url,
    tenantId: TENANT,
    clientId: CLIENT,
    credential: { kind: "secret", secret: SECRET },
    scopes: [SCOPE],
    caCerts: [pki.caPem],
    timeoutMs: 5000,
    ...over,
  });
  try {
    await t.step("a secret: the form holds id, scope, grant, secret and a request ID", async () => {
      const before = Date.now();
      const result = await acquireAppToken(request());
      assert.equal(result.accessToken, entra.issuedTokens.at(-1));
      assert.equal(result.fromCache, false);
      // The fake issues tokens for an hour: the expiry counts from when the request was sent.
      const expires = result.expiresOn?.getTime() ?? 0;
      assert.ok(expires >= before + 3500_000 && expires <= Date.now() + 3600_000, String(expires));
      const sent = entra.tokenRequests.at(-1)?.body ?? {};
      assert.equal(sent.client_id, CLIENT);
      assert.equal(sent.scope, SCOPE);
      assert.equal(sent.grant_type, "client_credentials");
      assert.equal(sent.client_secret, SECRET);
      assert.match(sent["client-request-id"] ?? "", /^[0-9a-f-]{36}$/);
    });

    await t.step("a PEM certificate: a PS256 assertion with x5t#S256, x5c and aud", async () => {
      const loaded = await loadCertificate({
        value: cert.combinedFile,
        timeoutMs: 5000,
        store: false,
      });
      assert.equal(loaded.source, "pem");
      await acquireAppToken(request({ credential: { kind: "certificate", certificate: loaded } }));
      const sent = entra.tokenRequests.at(-1)?.body ?? {};
      assert.equal(sent.client_secret, undefined);
      assert.equal(
        sent.client_assertion_type,
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
      );
      const header = jwtPart(sent.client_assertion ?? "", 0);
      const payload = jwtPart(sent.client_assertion ?? "", 1);
      assert.equal(header.alg, "PS256");
      assert.equal(header["x5t#S256"], cert.sha256ThumbprintB64Url);
      assert.deepEqual(header.x5c, [cert.certDerBase64]);
      assert.equal(payload.aud, `${entra.url}/${TENANT}/oauth2/v2.0/token`);
      assert.equal(payload.iss, CLIENT);
      assert.equal(payload.sub, CLIENT);
      assert.equal(entra.tokenRequests.at(-1)?.status, 200);
    });

    await t.step("a wrong secret: TokenError with Entra's AADSTS code and sentence", async () => {
      await assert.rejects(
        acquireAppToken(request({ credential: { kind: "secret", secret: "wrong-secret-x" } })),
        (e) => {
          assert.ok(e instanceof TokenError, String(e));
          assert.equal(e.code, "AADSTS7000215");
          assert.match(e.message, /^Entra ID refused the token request: AADSTS7000215: /);
          assert.doesNotMatch(e.message, /wrong-secret-x|Trace ID|Correlation ID/);
          return true;
        },
      );
    });
  } finally {
    await entra.close();
    await Deno.remove(pki.dir, { recursive: true });
  }
});

Deno.test("requestClientCredentialsToken() reports a key that cannot sign as CERT_SIGN_FAILED, sending nothing", async () => {
  let sent = 0;
  const network = new FetchNetworkClient({ caCerts: [], timeoutMs: 1000 });
  network.sendPostRequestAsync = () => {
    sent++;
    return Promise.reject(new Error("must not be sent"));
  };
  try {
    await assert.rejects(
      requestClientCredentialsToken({
        authority: "https://login.example.test/tenant",
        clientId: CLIENT,
        scopes: [SCOPE],
        authentication: {
          kind: "assertion",
          assertion: () => Promise.reject(new DOMException("invalid key data", "DataError")),
        },
        network,
      }),
      (e) => {
        assert.ok(e instanceof UsageError, String(e));
        assert.equal(e.code, "CERT_SIGN_FAILED");
        assert.match(
          e.message,
          /^-clientcertificate: the certificate's key cannot sign .*invalid key data/,
        );
        return true;
      },
    );
  } finally {
    network.close();
  }
  assert.equal(sent, 0);
});
