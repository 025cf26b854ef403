import assert from "node:assert/strict";
import { ConfidentialClientApplication, ServerError } from "@azure/msal-node";
import { assertNoNull, paths, rejection, testNetwork } from "./msal_helpers.ts";
import { type EntraApp, type FakeEntra, startFakeEntra } from "./entra.ts";
import {
  base64UrlDecode,
  certificateThumbprints,
  decodeJwt,
  importSpkiPem,
  publicKeyFromCertificatePem,
  signJwt,
  verifyJwtPs256,
  verifyJwtRs256,
} from "./jwt.ts";
import { type AppCertificate, makeAppCertificate, makeServerPki, type ServerPki } from "./pki.ts";

const TENANT = "11111111-2222-3333-4444-555555555555";
const CLIENT_ID = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
const SP_ID = "99999999-8888-7777-6666-555555555555";
const SECRET = "s3cr3t~value";
const SCOPE = "https://outlook.office365.com/.default";
const FORM = { "content-type": "application/x-www-form-urlencoded" };

type Credential =
  | { clientSecret: string }
  | {
    clientCertificate: {
      thumbprintSha256?: string;
      thumbprint?: string;
      privateKey: string;
      x5c?: string;
    };
  };

/** Runs msal's client credentials flow against the fake, as the tool does. */
async function msalToken(
  pki: ServerPki,
  entra: FakeEntra,
  credential: Credential,
  opts: { tenant?: string; clientId?: string; authorityMetadata?: string } = {},
) {
  const net = testNetwork(pki.caPem, entra);
  try {
    const cca = new ConfidentialClientApplication({
      auth: {
        clientId: opts.clientId ?? CLIENT_ID,
        authority: `${entra.url}/${opts.tenant ?? TENANT}`,
        knownAuthorities: [entra.host],
        authorityMetadata: opts.authorityMetadata,
        ...credential,
      },
      system: {
        networkClient: net.network,
      },
    });
    return await cca.acquireTokenByClientCredential({ scopes: [SCOPE] });
  } finally {
    net.close();
  }
}

/** An HTTP client for direct requests (what msal would not send). */
async function post(
  pki: ServerPki,
  url: string,
  body: Record<string, string>,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: Record<string, unknown>; headers: Headers }> {
  const client = Deno.createHttpClient({ caCerts: [pki.caPem] });
  try {
    const res = await fetch(url, {
      method: "POST",
      headers: { ...FORM, ...headers },
      body: new URLSearchParams(body).toString(),
      client,
    });
    return { status: res.status, json: await res.json(), headers: res.headers };
  } finally {
    client.close();
  }
}

async function get(pki: ServerPki, url: string) {
  const client = Deno.createHttpClient({ caCerts: [pki.caPem] });
  try {
    const res = await fetch(url, { client });
    return { status: res.status, json: await res.json() as Record<string, unknown> };
  } finally {
    client.close();
  }
}

Deno.test("startFakeEntra() serves msal-node and direct clients like Entra ID", async (t) => {
  const pki = await makeServerPki();
  const certDir = `${pki.dir}/app`;
  const [cert, otherCert] = await Promise.all([
    makeAppCertificate(certDir, "app"),
    makeAppCertificate(certDir, "other"),
  ]);
  const app: EntraApp = {
    tenantId: TENANT,
    clientId: CLIENT_ID,
    displayName: "IMAP tester",
    secrets: [SECRET],
    expiredSecrets: ["old-secret"],
    certificates: [cert.certPem],
    roles: ["IMAP.AccessAsApp", "POP.AccessAsApp"],
    mailbox: "shared@contoso.example",
    servicePrincipalId: SP_ID,
  };
  const key = (c: AppCertificate) => Deno.readTextFileSync(c.keyFile);

  /** Each step gets its own server, so `requests` holds that step's traffic only. */
  async function withEntra(fn: (entra: FakeEntra) => Promise<void>, apps = [app]) {
    const entra = await startFakeEntra({ tls: pki, apps });
    try {
      await fn(entra);
    } finally {
      await entra.close();
    }
  }

  try {
    await t.step("secret: msal gets a signed token with Exchange's claims", async () => {
      await withEntra(async (entra) => {
        const result = await msalToken(pki, entra, { clientSecret: SECRET });
        assert.ok(result);
        assert.equal(result.tokenType, "Bearer");
        assert.deepEqual(entra.issuedTokens, [result.accessToken]);
        // knownAuthorities skips instance discovery; the discovery document is read once.
        assert.deepEqual(paths(entra), [
          `GET /${TENANT}/v2.0/.well-known/openid-configuration`,
          `POST /${TENANT}/oauth2/v2.0/token`,
        ]);
        const [req] = entra.tokenRequests;
        assert.equal(req.status, 200);
        assert.equal(req.body.grant_type, "client_credentials");
        assert.equal(req.body.scope, SCOPE, "msal sends the .default scope alone");
        assert.equal(req.body.client_id, CLIENT_ID);
        assert.equal(req.body.client_secret, SECRET);

        assert.ok(await verifyJwtRs256(result.accessToken, entra.signingKey.publicKeyPem));
        const { header, payload } = decodeJwt(result.accessToken);
        assert.deepEqual(header, {
          typ: "JWT",
          alg: "RS256",
          x5t: entra.signingKey.kid,
          kid: entra.signingKey.kid,
        });
        assertNoNull(payload);
        assert.equal(payload.aud, "https://outlook.office365.com");
        assert.equal(payload.iss, `https://sts.windows.net/${TENANT}/`);
        assert.equal(payload.iss, entra.issuer(TENANT));
        assert.equal(payload.appid, CLIENT_ID);
        assert.equal(payload.appidacr, "1");
        assert.equal(payload.oid, SP_ID);
        assert.equal(payload.sub, SP_ID);
        assert.equal(payload.tid, TENANT);
        assert.equal(payload.ver, "1.0");
        assert.equal(payload.email, "shared@contoso.example");
        assert.equal(payload.upn, "shared@contoso.example");
        assert.deepEqual(payload.roles, ["IMAP.AccessAsApp", "POP.AccessAsApp"]);
        const nowSeconds = Date.now() / 1000;
        assert.ok(Math.abs((payload.exp as number) - nowSeconds - 3599) < 5);
        assert.ok((payload.nbf as number) <= nowSeconds);
      });
    });

    await t.step("secret: wrong value → ServerError invalid_client AADSTS7000215", async () => {
      await withEntra(async (entra) => {
        const e = await rejection(msalToken(pki, entra, { clientSecret: "wrong" }));
        assert.ok(e instanceof ServerError);
        assert.equal(e.errorCode, "invalid_client");
        assert.equal(String(e.errorNo), "7000215");
        assert.equal(e.status, 401);
        assert.match(e.errorMessage, /AADSTS7000215/);
        assert.match(e.message, /^invalid_client: Error\(s\): 7000215 - Timestamp: /);
        assert.equal(e.correlationId, entra.tokenRequests[0].body["client-request-id"]);
        assert.equal(entra.tokenRequests[0].errorCode, "AADSTS7000215");
        assert.deepEqual(paths(entra), [
          `GET /${TENANT}/v2.0/.well-known/openid-configuration`,
          `POST /${TENANT}/oauth2/v2.0/token`,
        ]);
      });
    });

    await t.step("unknown client ID → unauthorized_client AADSTS700016", async () => {
      await withEntra(async (entra) => {
        const other = "00000000-0000-0000-0000-000000000001";
        const e = await rejection(
          msalToken(pki, entra, { clientSecret: SECRET }, { clientId: other }),
        );
        assert.ok(e instanceof ServerError);
        assert.equal(e.errorCode, "unauthorized_client");
        assert.equal(String(e.errorNo), "700016");
        assert.equal(e.status, 400);
        assert.match(
          e.errorMessage,
          new RegExp(`AADSTS700016: Application with identifier '${other}'`),
        );
      });
    });

    await t.step(
      "unknown tenant: discovery fails first, the token endpoint says AADSTS90002",
      async () => {
        await withEntra(async (entra) => {
          const tenant = "deadbeef-0000-0000-0000-000000000000";
          // msal reads the discovery document first; it drops the 400 body (AADSTS90002) and
          // throws a client-side error. Even its verbose log only says it could not parse it.
          const e = await rejection(msalToken(pki, entra, { clientSecret: SECRET }, { tenant }));
          assert.ok(!(e instanceof ServerError));
          assert.equal(e.errorCode, "endpoints_resolution_error");
          assert.deepEqual(paths(entra), [`GET /${tenant}/v2.0/.well-known/openid-configuration`]);
          const discovery = await get(
            pki,
            `${entra.url}/${tenant}/v2.0/.well-known/openid-configuration`,
          );
          assert.equal(discovery.status, 400);
          assert.equal(discovery.json.error, "invalid_tenant");
          assert.deepEqual(discovery.json.error_codes, [90002]);

          // With authorityMetadata msal goes straight to the token endpoint and sees AADSTS90002.
          const metadata = JSON.stringify({
            issuer: `${entra.url}/${tenant}/v2.0`,
            authorization_endpoint: `${entra.url}/${tenant}/oauth2/v2.0/authorize`,
            token_endpoint: `${entra.url}/${tenant}/oauth2/v2.0/token`,
            jwks_uri: `${entra.url}/${tenant}/discovery/v2.0/keys`,
            end_session_endpoint: `${entra.url}/${tenant}/oauth2/v2.0/logout`,
          });
          const before = entra.requests.length;
          const e2 = await rejection(
            msalToken(pki, entra, { clientSecret: SECRET }, {
              tenant,
              authorityMetadata: metadata,
            }),
          );
          assert.ok(e2 instanceof ServerError);
          assert.equal(e2.errorCode, "invalid_request");
          assert.equal(String(e2.errorNo), "90002");
          assert.match(e2.errorMessage, new RegExp(`AADSTS90002: Tenant '${tenant}' not found`));
          assert.deepEqual(paths(entra).slice(before), [`POST /${tenant}/oauth2/v2.0/token`]);
        });
      },
    );

    await t.step(
      "certificate (SHA-256 thumbprint): PS256 assertion accepted, appidacr 2",
      async () => {
        await withEntra(async (entra) => {
          const result = await msalToken(pki, entra, {
            clientCertificate: {
              thumbprintSha256: sha256Hex(cert),
              privateKey: key(cert),
              x5c: cert.certPem,
            },
          });
          assert.ok(result);
          assert.equal(decodeJwt(result.accessToken).payload.appidacr, "2");
          const [req] = entra.tokenRequests;
          assert.equal(
            req.body.client_assertion_type,
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
          );
          assert.equal(req.body.client_secret, undefined);
          const assertion = decodeJwt(req.body.client_assertion);
          assert.equal(assertion.header.alg, "PS256");
          assert.equal(assertion.header["x5t#S256"], cert.sha256ThumbprintB64Url);
          assert.equal(assertion.payload.aud, `${entra.url}/${TENANT}/oauth2/v2.0/token`);
          assert.ok(await verifyJwtPs256(req.body.client_assertion, cert.certPem));
          assert.deepEqual(assertion.header.x5c, [cert.certDerBase64]);
          assert.deepEqual(paths(entra), [
            `GET /${TENANT}/v2.0/.well-known/openid-configuration`,
            `POST /${TENANT}/oauth2/v2.0/token`,
          ]);
        });
      },
    );

    await t.step("certificate (SHA-1 thumbprint): RS256 assertion with x5t accepted", async () => {
      await withEntra(async (entra) => {
        const result = await msalToken(pki, entra, {
          clientCertificate: { thumbprint: cert.sha1Thumbprint, privateKey: key(cert) },
        });
        assert.ok(result);
        const assertion = decodeJwt(entra.tokenRequests[0].body.client_assertion);
        assert.equal(assertion.header.alg, "RS256");
        assert.equal(assertion.header.x5t, (await certificateThumbprints(cert.certPem)).x5t);
      });
    });

    await t.step("certificate not registered → invalid_client AADSTS700027", async () => {
      await withEntra(async (entra) => {
        const e = await rejection(msalToken(pki, entra, {
          clientCertificate: {
            thumbprintSha256: sha256Hex(otherCert),
            privateKey: key(otherCert),
            x5c: otherCert.certPem,
          },
        }));
        assert.ok(e instanceof ServerError);
        assert.equal(e.errorCode, "invalid_client");
        assert.equal(String(e.errorNo), "700027");
        assert.match(e.errorMessage, /AADSTS700027: .*not registered/);
      });
    });

    await t.step("registered thumbprint, other key → invalid_client AADSTS700027", async () => {
      await withEntra(async (entra) => {
        const e = await rejection(msalToken(pki, entra, {
          clientCertificate: {
            thumbprintSha256: sha256Hex(cert),
            privateKey: key(otherCert),
            x5c: cert.certPem,
          },
        }));
        assert.ok(e instanceof ServerError);
        assert.equal(String(e.errorNo), "700027");
        assert.match(e.errorMessage, /AADSTS700027: .*signature/);
      });
    });

    await t.step("discovery document and JWKS match the signing key", async () => {
      await withEntra(async (entra) => {
        const config = await get(
          pki,
          `${entra.url}/${TENANT}/v2.0/.well-known/openid-configuration`,
        );
        assert.equal(config.status, 200);
        assert.equal(config.json.issuer, `${entra.url}/${TENANT}/v2.0`);
        assert.equal(config.json.token_endpoint, `${entra.url}/${TENANT}/oauth2/v2.0/token`);
        assert.equal(
          config.json.authorization_endpoint,
          `${entra.url}/${TENANT}/oauth2/v2.0/authorize`,
        );
        assert.equal(
          config.json.device_authorization_endpoint,
          `${entra.url}/${TENANT}/oauth2/v2.0/devicecode`,
        );
        assert.equal(config.json.jwks_uri, `${entra.url}/${TENANT}/discovery/v2.0/keys`);

        const jwks = await get(pki, String(config.json.jwks_uri));
        const [jwk] = jwks.json.keys as JsonWebKey[] & { kid: string }[];
        assert.equal(jwk.kid, entra.signingKey.kid);
        const fromJwk = await crypto.subtle.importKey(
          "jwk",
          { kty: jwk.kty, n: jwk.n, e: jwk.e },
          { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
          true,
          ["verify"],
        );
        const fromPem = await importSpkiPem(entra.signingKey.publicKeyPem, "RS256");
        assert.deepEqual(
          new Uint8Array(await crypto.subtle.exportKey("spki", fromJwk)),
          new Uint8Array(await crypto.subtle.exportKey("spki", fromPem)),
        );
      });
    });

    await t.step("instance discovery answers and is recorded", async () => {
      await withEntra(async (entra) => {
        const endpoint = `${entra.url}/${TENANT}/oauth2/v2.0/authorize`;
        const res = await get(
          pki,
          `${entra.url}/common/discovery/instance?api-version=1.1&authorization_endpoint=${endpoint}`,
        );
        assert.equal(res.status, 200);
        assert.equal(
          res.json.tenant_discovery_endpoint,
          `${entra.url}/${TENANT}/v2.0/.well-known/openid-configuration`,
        );
        assert.deepEqual(paths(entra), ["GET /common/discovery/instance"]);
      });
    });

    await t.step("token endpoint errors have Entra's shape and codes", async () => {
      await withEntra(async (entra) => {
        const token = `${entra.url}/${TENANT}/oauth2/v2.0/token`;
        const base = { grant_type: "client_credentials", client_id: CLIENT_ID, scope: SCOPE };
        const cases: [Record<string, string>, number, string, number][] = [
          [{ ...base, client_secret: "old-secret" }, 401, "invalid_client", 7000222],
          [base, 401, "invalid_client", 7000218],
          [
            {
              ...base,
              client_secret: SECRET,
              scope: "https://outlook.office365.com/IMAP.AccessAsApp",
            },
            400,
            "invalid_scope",
            1002012,
          ],
          [
            { ...base, client_secret: SECRET, scope: `${SCOPE} openid` },
            400,
            "invalid_scope",
            70011,
          ],
          [
            { ...base, client_secret: SECRET, scope: "https://example.com/.default" },
            400,
            "invalid_resource",
            500011,
          ],
          [
            { ...base, client_secret: SECRET, grant_type: "password" },
            400,
            "unsupported_grant_type",
            70003,
          ],
          [{ ...base, client_secret: SECRET, client_assertion: "x" }, 200, "", 0],
          [
            {
              ...base,
              client_assertion: "not.a.jwt",
              client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            },
            401,
            "invalid_client",
            700027,
          ],
        ];
        for (const [body, status, error, code] of cases) {
          const res = await post(pki, token, body, { "client-request-id": "corr-1" });
          assert.equal(res.status, status, JSON.stringify(body));
          if (status === 200) continue;
          assert.equal(res.json.error, error);
          assert.deepEqual(res.json.error_codes, [code]);
          assert.equal(res.json.correlation_id, "corr-1");
          assert.equal(res.headers.get("x-ms-request-id"), res.json.trace_id);
          assert.match(res.json.timestamp as string, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/);
          assert.equal(res.json.error_uri, `${entra.url}/error?code=${code}`);
          assert.match(
            res.json.error_description as string,
            new RegExp(
              `^AADSTS${code}: .+\\r\\nTrace ID: ${res.json.trace_id}\\r\\nCorrelation ID: corr-1\\r\\nTimestamp: ${res.json.timestamp}$`,
            ),
          );
        }
        // Basic authentication of the client works like the form fields.
        const basic = await post(pki, token, { grant_type: "client_credentials", scope: SCOPE }, {
          authorization: `Basic ${btoa(`${CLIENT_ID}:${encodeURIComponent(SECRET)}`)}`,
        });
        assert.equal(basic.status, 200);
        assert.equal(basic.json.token_type, "Bearer");
        assert.equal(basic.json.expires_in, 3599);
        assert.equal(basic.json.ext_expires_in, 3599);
        // Client credentials on a tenant alias, a GET on the token endpoint, an unknown path.
        const alias = await post(pki, `${entra.url}/organizations/oauth2/v2.0/token`, {
          ...base,
          client_secret: SECRET,
        });
        assert.deepEqual(alias.json.error_codes, [50059]);
        const wrongMethod = await get(pki, token);
        assert.equal(wrongMethod.status, 400);
        assert.deepEqual(wrongMethod.json.error_codes, [900561]);
        const missing = await get(pki, `${entra.url}/nothing/here`);
        assert.equal(missing.status, 404);
        assert.equal(missing.json.error, "not_found");
      });
    });

    await t.step("a client assertion with a bad audience or expired is refused", async () => {
      await withEntra(async (entra) => {
        const token = `${entra.url}/${TENANT}/oauth2/v2.0/token`;
        const privateKey = await crypto.subtle.importKey(
          "pkcs8",
          derOf(key(cert)),
          { name: "RSA-PSS", hash: "SHA-256" },
          false,
          ["sign"],
        );
        const now = Math.floor(Date.now() / 1000);
        const claims = {
          aud: token,
          iss: CLIENT_ID,
          sub: CLIENT_ID,
          exp: now + 600,
          nbf: now,
          jti: "j",
        };
        const header = { typ: "JWT", "x5t#S256": cert.sha256ThumbprintB64Url };
        const send = async (payload: Record<string, unknown>) =>
          await post(pki, token, {
            grant_type: "client_credentials",
            client_id: CLIENT_ID,
            scope: SCOPE,
            client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            client_assertion: await signJwt(header, payload, privateKey),
          });
        assert.equal((await send(claims)).status, 200);
        for (
          const [payload, pattern] of [
            [{ ...claims, aud: "https://elsewhere.example/token" }, /audience/],
            [{ ...claims, exp: now - 3600 }, /expired/],
            [{ ...claims, nbf: now + 3600 }, /not valid yet/],
            [{ ...claims, iss: "someone-else" }, /'iss' and 'sub'/],
          ] as const
        ) {
          const res = await send(payload);
          assert.equal(res.status, 401);
          assert.deepEqual(res.json.error_codes, [700027]);
          assert.match(res.json.error_description as string, pattern);
        }
      });
    });

    await t.step("an app without roles or mailbox gets a token without those claims", async () => {
      const bare: EntraApp = { tenantId: TENANT, clientId: CLIENT_ID, secrets: [SECRET] };
      await withEntra(async (entra) => {
        const result = await msalToken(pki, entra, { clientSecret: SECRET });
        assert.ok(result);
        const { payload } = decodeJwt(result.accessToken);
        assertNoNull(payload);
        assert.equal("roles" in payload, false);
        assert.equal("email" in payload, false);
        assert.match(String(payload.oid), /^[0-9a-f-]{36}$/);
        assert.equal(payload.sub, payload.oid);
      }, [bare]);
    });
  } finally {
    await Deno.remove(pki.dir, { recursive: true });
  }
});

/** msal wants the SHA-256 thumbprint in hex (it base64url-encodes it for `x5t#S256` itself). */
function sha256Hex(cert: AppCertificate): string {
  return Array.from(
    base64UrlDecode(cert.sha256ThumbprintB64Url),
    (b) => b.toString(16).padStart(2, "0"),
  )
    .join("");
}

function derOf(pem: string): Uint8Array<ArrayBuffer> {
  const b64 = pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

Deno.test("jwt helpers sign, decode and verify RS256/PS256 and read certificates", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const cert = await makeAppCertificate(dir, "jwt");
    assert.equal(publicKeyFromCertificatePem(cert.certPem).trim(), cert.publicKeyPem.trim());
    const pkcs8 = derOf(await Deno.readTextFile(cert.keyFile));
    for (
      const [name, verify] of [["RSASSA-PKCS1-v1_5", verifyJwtRs256], [
        "RSA-PSS",
        verifyJwtPs256,
      ]] as const
    ) {
      const key = await crypto.subtle.importKey("pkcs8", pkcs8, { name, hash: "SHA-256" }, false, [
        "sign",
      ]);
      const token = await signJwt({ typ: "JWT" }, { sub: "x", n: 1 }, key);
      const decoded = decodeJwt(token);
      assert.equal(decoded.header.alg, name === "RSA-PSS" ? "PS256" : "RS256");
      assert.deepEqual(decoded.payload, { sub: "x", n: 1 });
      assert.ok(await verify(token, cert.publicKeyPem));
      assert.ok(await verify(token, cert.certPem));
      const [h, p, s] = token.split(".");
      const tampered = `${h}.${p.slice(0, -2)}${p.endsWith("A") ? "B" : "A"}${p.slice(-1)}.${s}`;
      assert.equal(await verify(tampered, cert.publicKeyPem), false);
      assert.equal(await verify("garbage", cert.publicKeyPem), false);
    }
    const rsKey = await crypto.subtle.importKey(
      "pkcs8",
      pkcs8,
      { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
      false,
      ["sign"],
    );
    // The header's alg follows the key: an RS256 token does not pass as PS256.
    const rs = await signJwt({ alg: "PS256" }, {}, rsKey);
    assert.equal(decodeJwt(rs).header.alg, "RS256");
    assert.equal(await verifyJwtPs256(rs, cert.publicKeyPem), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
