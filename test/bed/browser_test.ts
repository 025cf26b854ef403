/**
 * The real-browser driver against the fake Entra ID: msal-node's interactive flow with its
 * loopback listener, and the script as the CLI will start it (`$BROWSER <url>`).
 */
import assert from "node:assert/strict";
import { AuthError, PublicClientApplication, ServerError } from "@azure/msal-node";
import { testNetwork } from "./msal_helpers.ts";
import { type SignInResult, signInWithBrowser } from "./browser.ts";
import { type EntraApp, type FakeEntra, startFakeEntra } from "./entra.ts";
import { decodeJwt } from "./jwt.ts";
import { makeServerPki, type ServerPki } from "./pki.ts";

const TENANT = "5e4d3c2b-1a0f-4e9d-8c7b-6a5948372615";
const APP = "8d3b2a4f-5e6d-4c7b-8a9f-3b4c5d6e7f80";
const APP_NO_LOOPBACK = "9e4c3b5a-6f7e-4d8c-9b0a-4c5d6e7f8091";
const UPN = "megan@contoso.example";
const PASSWORD = "Br0wser-pass";
const IMAP = "https://outlook.office.com/IMAP.AccessAsUser.All";
const NATIVE_CLIENT = "https://login.microsoftonline.com/common/oauth2/nativeclient";
const SUCCESS = "Signed in. You can close this window.";
const FAILURE = "Sign-in failed. You can close this window.";

const apps: EntraApp[] = [
  {
    tenantId: TENANT,
    clientId: APP,
    displayName: "Get-IMAPAccessToken",
    publicClient: true,
    redirectUris: ["http://localhost", NATIVE_CLIENT],
    delegated: ["IMAP.AccessAsUser.All"],
  },
  {
    tenantId: TENANT,
    clientId: APP_NO_LOOPBACK,
    publicClient: true,
    redirectUris: ["https://localhost"],
    delegated: ["IMAP.AccessAsUser.All"],
  },
];

async function withEntra(
  pki: ServerPki,
  fn: (entra: FakeEntra, pca: (clientId?: string) => PublicClientApplication) => Promise<void>,
) {
  const entra = await startFakeEntra({
    tls: pki,
    apps,
    users: [{ tenantId: TENANT, upn: UPN, password: PASSWORD, displayName: "Megan Bowen" }],
  });
  const net = testNetwork(pki.caPem, entra);
  try {
    await fn(entra, (clientId = APP) =>
      new PublicClientApplication({
        auth: {
          clientId,
          authority: `${entra.url}/${TENANT}`,
          knownAuthorities: [entra.host],
          authorityMetadata: entra.authorityMetadata(TENANT),
        },
        system: { networkClient: net.network },
      }));
  } finally {
    net.close();
    await entra.close();
  }
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  assert.fail("expected a rejection");
}

/** Runs browser.ts as the CLI will: a separate process with the URL as its only argument. */
async function runScript(url: string, env: Record<string, string>) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("./browser.ts", import.meta.url).pathname, url],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

Deno.test("signInWithBrowser() drives real Chromium through the fake Entra sign-in", async (t) => {
  const pki = await makeServerPki();
  try {
    await t.step(
      "acquireTokenInteractive: msal's loopback listener gets the form_post",
      async () => {
        await withEntra(pki, async (entra, pca) => {
          let browser: SignInResult | undefined;
          const token = await pca().acquireTokenInteractive({
            scopes: [IMAP],
            loginHint: UPN,
            openBrowser: async (url) => {
              browser = await signInWithBrowser(url, { password: PASSWORD });
            },
            successTemplate: SUCCESS,
            errorTemplate: FAILURE,
          });
          const access = decodeJwt(token.accessToken).payload;
          assert.equal(access.scp, "IMAP.AccessAsUser.All");
          assert.equal(access.upn, UPN);
          assert.equal(token.account?.username, UPN);

          const { query } = entra.authorizeRequests[0];
          assert.equal(query.response_mode, "form_post");
          assert.equal(query.code_challenge_method, "S256");
          assert.equal(query.login_hint, UPN);
          assert.match(query.redirect_uri, /^http:\/\/localhost:\d+$/);
          assert.equal(entra.tokenRequests[0].body.redirect_uri, query.redirect_uri);
          assert.ok(entra.tokenRequests[0].body.code_verifier.length >= 43);

          assert.ok(browser);
          assert.equal(browser.url, `${query.redirect_uri}/`);
          assert.equal(browser.status, 200);
          assert.equal(browser.text, SUCCESS);
          assert.deepEqual(entra.signIns.map((s) => s.outcome), ["code"]);
        });
      },
    );

    await t.step(
      "cancel: msal rejects with access_denied, the browser shows the error page",
      async () => {
        await withEntra(pki, async (entra, pca) => {
          let browser: SignInResult | undefined;
          const e = await rejection(
            pca().acquireTokenInteractive({
              scopes: [IMAP],
              openBrowser: async (url) => {
                browser = await signInWithBrowser(url, { action: "cancel" });
              },
              successTemplate: SUCCESS,
              errorTemplate: FAILURE,
            }),
          );
          assert.ok(e instanceof ServerError);
          assert.equal(e.errorCode, "access_denied");
          assert.match(e.errorMessage, /^AADSTS65004: User declined/);
          assert.equal(browser?.text, FAILURE);
          assert.equal(entra.tokenRequests.length, 0);
        });
      },
    );

    await t.step("wrong password: the driver and acquireTokenInteractive reject", async () => {
      await withEntra(pki, async (entra, pca) => {
        const e = await rejection(
          pca().acquireTokenInteractive({
            scopes: [IMAP],
            openBrowser: async (url) => {
              await signInWithBrowser(url, { username: UPN, password: "wrong" });
            },
          }),
        );
        assert.ok(e instanceof Error);
        assert.equal(e instanceof AuthError, false, "openBrowser's own error comes through");
        assert.match(e.message, /AADSTS50126/);
        assert.deepEqual(entra.signIns.map((s) => s.errorCode), ["AADSTS50126"]);
      });
    });

    await t.step("redirect URI not registered: the error page fails the driver", async () => {
      await withEntra(pki, async (_entra, pca) => {
        const e = await rejection(
          pca(APP_NO_LOOPBACK).acquireTokenInteractive({
            scopes: [IMAP],
            openBrowser: async (url) => {
              await signInWithBrowser(url, { password: PASSWORD });
            },
          }),
        );
        assert.match(
          String(e),
          /sign-in page says: AADSTS50011: The redirect URI 'http:\/\/localhost:\d+'/,
        );
      });
    });

    await t.step("a page that never answers → rejects at the timeout, browser closed", async () => {
      // Accepts connections and never answers, like a hung server.
      const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const connections: Deno.Conn[] = [];
      const accepting = (async () => {
        for await (const conn of listener) connections.push(conn);
      })();
      try {
        const started = Date.now();
        const e = await rejection(
          signInWithBrowser(`http://127.0.0.1:${listener.addr.port}/authorize`, {
            password: PASSWORD,
            timeoutMs: 3000,
          }),
        );
        assert.match(String(e), /within 3 s|Timeout 3\d{3}ms exceeded/);
        assert.ok(Date.now() - started < 15_000);
      } finally {
        listener.close();
        await accepting.catch(() => {});
        for (const conn of connections) conn.close();
      }
    });
    await t.step(
      "script: prints the redirect URL with the code, never leaving loopback",
      async () => {
        await withEntra(pki, async (entra, pca) => {
          const app = pca();
          const url = await app.getAuthCodeUrl({ scopes: [IMAP], redirectUri: NATIVE_CLIENT });
          const resultFile = await Deno.makeTempFile({ dir: pki.dir });
          const run = await runScript(url, {
            GIA_TEST_PASSWORD: PASSWORD,
            GIA_TEST_USERNAME: UPN,
            GIA_TEST_BROWSER_RESULT: resultFile,
          });
          assert.equal(run.code, 0, run.stderr);
          const printed = new URL(run.stdout.trim());
          assert.equal(`${printed.origin}${printed.pathname}`, NATIVE_CLIENT);
          const code = printed.searchParams.get("code") ?? "";
          assert.equal(code, entra.authCodes[0].code);
          // The page at login.microsoftonline.com was never loaded: the driver blocked it.
          const line = JSON.parse(await Deno.readTextFile(resultFile));
          assert.equal(line.ok, true);
          assert.equal(line.url, printed.href);
          assert.equal(line.failure, "net::ERR_PROXY_CONNECTION_FAILED");
          // The printed address is what a user pastes: the code in it redeems.
          const token = await app.acquireTokenByCode({
            code,
            scopes: [IMAP],
            redirectUri: NATIVE_CLIENT,
          });
          assert.equal(decodeJwt(token.accessToken).payload.upn, UPN);
        });
      },
    );

    await t.step("script: exits 1 with the reason on stderr", async () => {
      await withEntra(pki, async (entra, pca) => {
        const url = await pca().getAuthCodeUrl({ scopes: [IMAP], redirectUri: NATIVE_CLIENT });
        const wrong = await runScript(url, { GIA_TEST_PASSWORD: "wrong", GIA_TEST_USERNAME: UPN });
        assert.equal(wrong.code, 1);
        assert.equal(wrong.stdout, "");
        assert.match(wrong.stderr, /^browser\.ts: sign-in page says: AADSTS50126/);
        const noPassword = await runScript(url, {});
        assert.equal(noPassword.code, 1);
        assert.match(noPassword.stderr, /GIA_TEST_PASSWORD/);
        const remote = await runScript("https://login.microsoftonline.com/x", {
          GIA_TEST_PASSWORD: "p",
        });
        assert.equal(remote.code, 1);
        assert.match(remote.stderr, /refusing to open login\.microsoftonline\.com/);
        assert.equal(entra.signIns.length, 1);
      });
    });
  } finally {
    await Deno.remove(pki.dir, { recursive: true });
  }
});
