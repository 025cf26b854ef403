import assert from "node:assert/strict";
import { acquireAppToken, type AppTokenRequest } from "./token.ts";
import { entraDescription } from "./msal_common.ts";
import { TokenError } from "../errors.ts";
import { makeServerPki } from "../../test/bed/pki.ts";
import { startFakeEntra } from "../../test/bed/entra.ts";
import { makeCertForName } from "../../test/mail/tls_server.ts";

const TENANT = "11111111-2222-4333-8444-555555555555";
const CLIENT = "66666666-7777-4888-8999-000000000000";
const SECRET = "a-long-enough-client-secret";
const EXCHANGE_SCOPE = "https://outlook.office365.com/.default";

Deno.test("entraDescription() keeps Entra's sentence and drops msal's wrapping and IDs", () => {
  const wrapped =
    "Error(s): 7000215 - Timestamp: 2026-11-28 10:00:00Z - Description: AADSTS7000215: " +
    "Invalid client secret provided.\r\nTrace ID: abc\r\nCorrelation ID: def\r\nTimestamp: x - " +
    "Correlation ID: def - Trace ID: abc";
  assert.equal(entraDescription(wrapped), "AADSTS7000215: Invalid client secret provided.");
  assert.equal(entraDescription("invalid_client: plain text"), "plain text");
});

Deno.test("acquireAppToken() gets a token and maps transport failures to TokenError codes", async (t) => {
  const pki = await makeServerPki();
  const entra = await startFakeEntra({
    tls: { certPem: pki.certPem, keyPem: pki.keyPem },
    apps: [{ tenantId: TENANT, clientId: CLIENT, secrets: [SECRET], roles: ["POP.AccessAsApp"] }],
  });
  const request = (over: Partial<AppTokenRequest> = {}): AppTokenRequest => ({
    authorityHost: entra.url,
    tenantId: TENANT,
    clientId: CLIENT,
    credential: { kind: "secret", secret: SECRET },
    scopes: [EXCHANGE_SCOPE],
    caCerts: [pki.caPem],
    timeoutMs: 2000,
    ...over,
  });
  async function rejectsWith(req: AppTokenRequest, code: string) {
    await assert.rejects(acquireAppToken(req), (e) => {
      assert.ok(e instanceof TokenError, String(e));
      assert.equal(e.code, code, e.message);
      assert.ok(!e.message.includes(SECRET));
      return true;
    });
  }
  try {
    await t.step("success with exactly one request", async () => {
      const before = entra.requests.length;
      const result = await acquireAppToken(request());
      assert.equal(result.accessToken, entra.issuedTokens.at(-1));
      assert.equal(result.fromCache, false);
      assert.ok(result.expiresOn && result.expiresOn.getTime() > Date.now());
      assert.equal(entra.requests.length - before, 1);
    });
    await t.step("untrusted certificate -> TLS_UNTRUSTED", async () => {
      await rejectsWith(request({ caCerts: [] }), "TLS_UNTRUSTED");
    });
    await t.step("certificate for another name -> TLS_HOSTNAME", async () => {
      const other = await makeCertForName(pki, "login.example.test");
      const l = Deno.listenTls({
        hostname: "127.0.0.1",
        port: 0,
        ...{ cert: other.certPem, key: other.keyPem },
      });
      const accepting = (async () => {
        for await (const c of l) c.handshake().catch(() => {}).finally(() => c.close());
      })().catch(() => {});
      try {
        const port = (l.addr as Deno.NetAddr).port;
        await rejectsWith(request({ authorityHost: `https://127.0.0.1:${port}` }), "TLS_HOSTNAME");
      } finally {
        l.close();
        await accepting;
      }
    });
    await t.step("nothing listening -> CONNECTION_REFUSED", async () => {
      const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const port = (l.addr as Deno.NetAddr).port;
      l.close();
      await rejectsWith(
        request({ authorityHost: `https://127.0.0.1:${port}` }),
        "CONNECTION_REFUSED",
      );
    });
    await t.step("silent server -> TIMEOUT within the limit", async () => {
      const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const held: Deno.Conn[] = [];
      const accepting = (async () => {
        for await (const c of l) held.push(c);
      })().catch(() => {});
      try {
        const started = performance.now();
        const port = (l.addr as Deno.NetAddr).port;
        await rejectsWith(
          request({ authorityHost: `https://127.0.0.1:${port}`, timeoutMs: 300 }),
          "TIMEOUT",
        );
        assert.ok(performance.now() - started < 1300);
      } finally {
        l.close();
        held.forEach((c) => c.close());
        await accepting;
      }
    });
  } finally {
    await entra.close();
    await Deno.remove(pki.dir, { recursive: true });
  }
});
