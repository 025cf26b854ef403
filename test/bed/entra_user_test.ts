/**
 * The fake Entra ID's user sign-in flows, driven by the real msal-node PublicClientApplication
 * (and, for the sign-in form, by fetch: the real-browser path is in browser_test.ts).
 */
import assert from "node:assert/strict";
import {
  type AccountInfo,
  type AuthenticationResult,
  ConfidentialClientApplication,
  CryptoProvider,
  type DeviceCodeRequest,
  InteractionRequiredAuthError,
  PublicClientApplication,
  ServerError,
} from "@azure/msal-node";
import { assertNoNull, paths, rejection, testNetwork } from "./msal_helpers.ts";
import { waitUntil } from "./wait.ts";
import {
  type EntraApp,
  type EntraUser,
  type FakeEntra,
  type FakeEntraOptions,
  startFakeEntra,
} from "./entra.ts";
import { base64UrlDecodeText, decodeJwt, type JwtPayload, verifyJwtRs256 } from "./jwt.ts";
import { makeServerPki, type ServerPki } from "./pki.ts";

const TENANT = "4d3c2b1a-0f9e-4d8c-b7a6-958473625140";
const PUBLIC_APP = "6b1f0e2d-3c4b-4a59-8e7d-1f2a3b4c5d6e";
const CONFIDENTIAL_APP = "7c2a1f3e-4d5c-4b6a-9f8e-2a3b4c5d6e7f";
const SECRET = "c0nf~secret.value";
const USER_OID = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d";
const UPN = "adele@contoso.example";
const PASSWORD = "Corr3ct-h0rse";
const IMAP = "https://outlook.office.com/IMAP.AccessAsUser.All";
const POP = "https://outlook.office.com/POP.AccessAsUser.All";
const SMTP = "https://outlook.office.com/SMTP.Send";
const EXCHANGE_DEFAULT = "https://outlook.office365.com/.default";
const PASTE_REDIRECT = "https://localhost";

/** What msal hands the device code callback (the type itself is not exported). */
type DeviceCodeResponse = Parameters<DeviceCodeRequest["deviceCodeCallback"]>[0];

const user: EntraUser = {
  tenantId: TENANT,
  upn: UPN,
  password: PASSWORD,
  displayName: "Adele Vance",
  oid: USER_OID,
};
const publicApp: EntraApp = {
  tenantId: TENANT,
  clientId: PUBLIC_APP,
  displayName: "Get-IMAPAccessToken",
  publicClient: true,
  redirectUris: [
    "http://localhost",
    PASTE_REDIRECT,
    "https://login.microsoftonline.com/common/oauth2/nativeclient",
  ],
  delegated: ["IMAP.AccessAsUser.All", "POP.AccessAsUser.All"],
};
const confidentialApp: EntraApp = {
  tenantId: TENANT,
  clientId: CONFIDENTIAL_APP,
  secrets: [SECRET],
  redirectUris: [PASTE_REDIRECT],
  delegated: ["IMAP.AccessAsUser.All"],
};

interface Env {
  pki: ServerPki;
  entra: FakeEntra;
  /** Direct HTTP to the fake (what a browser or a test sends, not msal). */
  http: Deno.HttpClient;
  bodies: Record<string, unknown>[];
  /** A PublicClientApplication on `<url>/<tenant>` that makes no discovery request. */
  pca(clientId?: string, tenant?: string): PublicClientApplication;
  /** Moves the fake's clock (not msal's). */
  advanceClock(seconds: number): void;
}

/** One fresh fake per step, so its records hold that step's traffic only. */
async function withEnv(
  pki: ServerPki,
  fn: (env: Env) => Promise<void>,
  options: Partial<FakeEntraOptions> = {},
) {
  let offsetMs = 0;
  const entra = await startFakeEntra({
    tls: pki,
    apps: [publicApp, confidentialApp],
    users: [user],
    now: () => Date.now() + offsetMs,
    ...options,
  });
  const net = testNetwork(pki.caPem, entra);
  const http = Deno.createHttpClient({ caCerts: [pki.caPem] });
  try {
    await fn({
      pki,
      entra,
      http,
      bodies: net.bodies,
      pca: (clientId = PUBLIC_APP, tenant = TENANT) =>
        new PublicClientApplication({
          auth: {
            clientId,
            authority: `${entra.url}/${tenant}`,
            knownAuthorities: [entra.host],
            authorityMetadata: entra.authorityMetadata(tenant),
          },
          system: { networkClient: net.network },
        }),
      advanceClock: (seconds) => offsetMs += seconds * 1000,
    });
  } finally {
    http.close();
    net.close();
    await entra.close();
  }
}

function unescapeHtml(text: string): string {
  return text.replace(/&#(\d+);/g, (_, n) => String.fromCharCode(Number(n)));
}

/** The first form of a page: its action and the values of its inputs (what a browser sends). */
function formOf(html: string): { action: string; fields: Record<string, string> } {
  const action = /<form method="post"[^>]* action="([^"]+)"/.exec(html)?.[1];
  assert.ok(action, `no form in:\n${html}`);
  const fields: Record<string, string> = {};
  for (const [, attributes] of html.matchAll(/<input\b([^>]*)>/g)) {
    const name = /\bname="([^"]*)"/.exec(attributes)?.[1];
    const value = /\bvalue="([^"]*)"/.exec(attributes)?.[1];
    if (name !== undefined && value !== undefined) fields[unescapeHtml(name)] = unescapeHtml(value);
  }
  return { action: unescapeHtml(action), fields };
}

/** Submits a page's form as a browser would, without following redirects. */
async function submit(
  env: Env,
  pageUrl: string,
  html: string,
  fields: Record<string, string>,
): Promise<Response> {
  const form = formOf(html);
  return await fetch(new URL(form.action, pageUrl), {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ ...form.fields, ...fields }).toString(),
    redirect: "manual",
    client: env.http,
  });
}

/** Opens the authorize URL and submits the sign-in form; returns the fake's last answer. */
async function signInByFetch(
  env: Env,
  url: string,
  fields: Record<string, string> = { username: UPN, password: PASSWORD, action: "signin" },
): Promise<Response> {
  const page = await fetch(url, { client: env.http });
  const html = await page.text();
  assert.equal(page.status, 200, html);
  return await submit(env, url, html, fields);
}

/** The query of a 302 to the redirect URI. */
function redirectQuery(res: Response, redirectUri = PASTE_REDIRECT): URLSearchParams {
  assert.equal(res.status, 302);
  const location = new URL(res.headers.get("location") ?? "");
  assert.equal(`${location.origin}${location.pathname}`, new URL(redirectUri).href);
  return location.searchParams;
}

/** The paste flow: getAuthCodeUrl, sign in on the form, redeem the code with PKCE. */
async function codeFlow(
  env: Env,
  scopes: string[],
  pca = env.pca(),
): Promise<AuthenticationResult> {
  const pkce = await new CryptoProvider().generatePkceCodes();
  const url = await pca.getAuthCodeUrl({
    scopes,
    redirectUri: PASTE_REDIRECT,
    codeChallenge: pkce.challenge,
    codeChallengeMethod: "S256",
  });
  const query = redirectQuery(await signInByFetch(env, url));
  return await pca.acquireTokenByCode({
    code: query.get("code") ?? "",
    scopes,
    redirectUri: PASTE_REDIRECT,
    codeVerifier: pkce.verifier,
  });
}

function claims(token: string): JwtPayload {
  return decodeJwt(token).payload;
}

/** What every delegated Exchange token must carry (and never a null). */
async function assertUserAccessToken(entra: FakeEntra, token: string, scp: string, appid: string) {
  assert.ok(await verifyJwtRs256(token, entra.signingKey.publicKeyPem));
  const { header, payload } = decodeJwt(token);
  assert.equal(header.typ, "JWT");
  assert.equal(header.kid, entra.signingKey.kid);
  assertNoNull(payload);
  assert.equal(payload.aud, "https://outlook.office.com");
  assert.equal(payload.iss, entra.issuer(TENANT));
  assert.equal(payload.scp, scp);
  assert.equal(payload.upn, UPN);
  assert.equal(payload.unique_name, UPN);
  assert.equal(payload.email, UPN);
  assert.equal(payload.name, "Adele Vance");
  assert.equal(payload.oid, USER_OID);
  assert.equal(payload.tid, TENANT);
  assert.equal(payload.appid, appid);
  assert.equal(payload.idtyp, "user");
  assert.equal(payload.ver, "1.0");
  assert.equal("roles" in payload, false);
  assert.match(String(payload.sub), /^[A-Za-z0-9_-]{43}$/);
  assert.notEqual(payload.sub, USER_OID, "sub is pairwise, not the object ID");
  const now = Date.now() / 1000;
  assert.ok(Math.abs((payload.exp as number) - now - 3599) < 5);
}

Deno.test("fake Entra device code flow answers msal-node like Entra", async (t) => {
  const pki = await makeServerPki();
  try {
    await t.step("approved after two pending polls → delegated tokens, no discovery", async () => {
      await withEnv(pki, async ({ entra, pca }) => {
        const app = pca();
        let device: DeviceCodeResponse | undefined;
        const result = app.acquireTokenByDeviceCode({
          scopes: [IMAP],
          deviceCodeCallback: (response) => device = response,
        });
        await waitUntil(() => (entra.deviceCodes[0]?.polls ?? 0) >= 2, {
          intervalMs: 20,
          what: "two polls of the device code",
        });
        assert.ok(device);
        entra.approveDeviceCode(device.userCode, UPN);
        const token = await result;
        assert.ok(token);

        assert.match(device.userCode, /^[A-Z0-9]{9}$/);
        assert.equal(device.verificationUri, `${entra.url}/devicelogin`);
        assert.equal(device.interval, 1);
        assert.equal(device.expiresIn, 900);
        assert.equal(
          device.message,
          `To sign in, use a web browser to open the page ${entra.url}/devicelogin and enter ` +
            `the code ${device.userCode} to authenticate.`,
        );
        // authorityMetadata + knownAuthorities: the device code POST and the polls, nothing else.
        assert.deepEqual(paths(entra), [
          `POST /${TENANT}/oauth2/v2.0/devicecode`,
          `POST /${TENANT}/oauth2/v2.0/token`,
          `POST /${TENANT}/oauth2/v2.0/token`,
          `POST /${TENANT}/oauth2/v2.0/token`,
        ]);
        assert.deepEqual(
          entra.tokenRequests.map((r) => [r.status, r.error, r.errorCode]),
          [
            [400, "authorization_pending", "AADSTS70016"],
            [400, "authorization_pending", "AADSTS70016"],
            [200, undefined, undefined],
          ],
        );
        const poll = entra.tokenRequests[0].body;
        assert.equal(poll.grant_type, "device_code", "msal sends the short grant name");
        assert.equal(poll.device_code, device.deviceCode);
        assert.equal(poll.client_id, PUBLIC_APP);
        assert.equal(poll.scope, `${IMAP} openid profile offline_access`);
        assert.equal(entra.deviceCodes[0].status, "redeemed");
        assert.equal(entra.deviceCodes[0].upn, UPN);

        await assertUserAccessToken(entra, token.accessToken, "IMAP.AccessAsUser.All", PUBLIC_APP);
        assert.equal(claims(token.accessToken).appidacr, "0", "public client");
        assert.deepEqual(token.scopes, [IMAP, "openid", "profile", "offline_access"]);
        assert.equal(token.account?.username, UPN);
        assert.equal(token.account?.name, "Adele Vance");
        assert.equal(token.account?.homeAccountId, `${USER_OID}.${TENANT}`);
        assert.equal(token.account?.tenantId, TENANT);
        assert.equal(token.fromCache, false);
        const id = claims(token.idToken);
        assertNoNull(id);
        assert.equal(id.aud, PUBLIC_APP);
        assert.equal(id.iss, `${entra.url}/${TENANT}/v2.0`);
        assert.equal(id.ver, "2.0");
        assert.equal(id.preferred_username, UPN);
        assert.equal(id.sub, claims(token.accessToken).sub);
        assert.ok(await verifyJwtRs256(token.idToken, entra.signingKey.publicKeyPem));
        assert.equal(entra.refreshTokens.length, 1, "offline_access (added by msal) → refresh");
      });
    });

    await t.step("the RFC 8628 grant name works too", async () => {
      await withEnv(pki, async ({ entra, http }) => {
        const base = `${entra.url}/${TENANT}/oauth2/v2.0`;
        const post = (path: string, body: Record<string, string>) =>
          fetch(`${base}/${path}`, {
            method: "POST",
            headers: { "content-type": "application/x-www-form-urlencoded" },
            body: new URLSearchParams(body).toString(),
            client: http,
          }).then(async (r) => ({ status: r.status, json: await r.json() }));
        const code = await post("devicecode", { client_id: PUBLIC_APP, scope: IMAP });
        assert.equal(code.status, 200);
        entra.approveDeviceCode(code.json.user_code.toLowerCase(), UPN.toUpperCase());
        const grant = {
          grant_type: "urn:ietf:params:oauth:grant-type:device_code",
          client_id: PUBLIC_APP,
          device_code: code.json.device_code,
        };
        const res = await post("token", grant);
        assert.equal(res.status, 200);
        // No openid/offline_access asked for: an access token only, scope as granted.
        assert.equal(res.json.scope, IMAP);
        assert.equal(res.json.id_token, undefined);
        assert.equal(res.json.refresh_token, undefined);
        assert.equal(res.json.client_info, undefined);
        const again = await post("token", grant);
        assert.equal(again.status, 400);
        assert.equal(again.json.error, "invalid_grant");
        const unknown = await post("token", { ...grant, device_code: "nope" });
        assert.equal(unknown.json.error, "bad_verification_code");
      });
    });

    await t.step(
      "declined → AuthError post_request_failed; AADSTS65004 only in the body",
      async () => {
        await withEnv(pki, async ({ entra, pca, bodies }) => {
          const result = pca().acquireTokenByDeviceCode({
            scopes: [IMAP],
            deviceCodeCallback: () => {},
          });
          await waitUntil(() => (entra.deviceCodes[0]?.polls ?? 0) >= 1, {
            intervalMs: 20,
            what: "a poll of the device code",
          });
          entra.declineDeviceCode(entra.deviceCodes[0].userCode);
          const e = await rejection(result);
          // msal keeps only the OAuth error name of a failed poll, as the message.
          assert.equal(e.errorCode, "post_request_failed");
          assert.equal(e.errorMessage, "authorization_declined");
          assert.equal(e instanceof ServerError, false);
          const last = bodies.at(-1) ?? {};
          assert.equal(last.error, "authorization_declined");
          assert.deepEqual(last.error_codes, [65004]);
          assert.match(String(last.error_description), /^AADSTS65004: User declined/);
          assert.equal(entra.deviceCodes[0].status, "declined");
        });
      },
    );

    await t.step("expired on the server → expired_token AADSTS70020", async () => {
      await withEnv(pki, async ({ entra, pca, bodies, advanceClock }) => {
        const result = pca().acquireTokenByDeviceCode({
          scopes: [IMAP],
          deviceCodeCallback: () => {},
        });
        await waitUntil(() => (entra.deviceCodes[0]?.polls ?? 0) >= 1, {
          intervalMs: 20,
          what: "a poll of the device code",
        });
        advanceClock(901);
        const e = await rejection(result);
        assert.equal(e.errorCode, "post_request_failed");
        assert.equal(e.errorMessage, "expired_token");
        assert.deepEqual(bodies.at(-1)?.error_codes, [70020]);
        assert.match(String(bodies.at(-1)?.error_description), /This device code has expired/);
        // Too late for the user as well: the device login page says AADSTS70019.
        assert.throws(() => entra.approveDeviceCode(entra.deviceCodes[0].userCode, UPN), /70019/);
      });
    });

    await t.step(
      "confidential app without a credential → invalid_client AADSTS7000218",
      async () => {
        await withEnv(pki, async ({ entra, pca, bodies }) => {
          const result = pca(CONFIDENTIAL_APP).acquireTokenByDeviceCode({
            scopes: [IMAP],
            deviceCodeCallback: () => {},
          });
          const e = await rejection(result);
          assert.equal(e.errorMessage, "invalid_client");
          assert.deepEqual(bodies.at(-1)?.error_codes, [7000218]);
          assert.equal(entra.deviceCodes[0].polls, 1);
        });
      },
    );

    await t.step(
      "unknown client → msal calls back with an empty response, then fails",
      async () => {
        await withEnv(pki, async ({ entra, pca, bodies }) => {
          let device: DeviceCodeResponse | undefined;
          const e = await rejection(
            pca("00000000-0000-0000-0000-0000000000aa").acquireTokenByDeviceCode({
              scopes: [IMAP],
              deviceCodeCallback: (response) => device = response,
            }),
          );
          // msal does not check the device code answer: the callback must check for userCode.
          assert.ok(device);
          assert.equal(device.userCode, undefined);
          assert.equal(device.message, undefined);
          assert.deepEqual(bodies[0].error_codes, [700016]);
          assert.equal(e.errorMessage, "unauthorized_client");
          assert.equal(entra.deviceCodes.length, 0);
        });
      },
    );

    await t.step(
      "permission without consent → invalid_grant AADSTS65001 after approval",
      async () => {
        await withEnv(pki, async ({ entra, pca, bodies }) => {
          const result = pca().acquireTokenByDeviceCode({
            scopes: [SMTP],
            deviceCodeCallback: (r) => entra.approveDeviceCode(r.userCode, UPN),
          });
          const e = await rejection(result);
          assert.equal(e.errorMessage, "invalid_grant");
          const last = bodies.at(-1) ?? {};
          assert.deepEqual(last.error_codes, [65001]);
          assert.equal(last.suberror, "consent_required");
          assert.match(String(last.error_description), new RegExp(`ID '${PUBLIC_APP}'`));
        });
      },
    );

    await t.step("device code endpoint refuses bad scopes like Entra", async () => {
      await withEnv(pki, async ({ entra, http }) => {
        const cases: [string, string, number][] = [
          ["User.Read openid", "invalid_scope", 70011],
          ["https://graph.microsoft.com/User.Read", "invalid_resource", 500011],
          [`${IMAP} https://graph.microsoft.com/User.Read`, "invalid_scope", 28000],
          [
            `${EXCHANGE_DEFAULT} https://outlook.office365.com/POP.AccessAsUser.All`,
            "invalid_scope",
            70011,
          ],
          ["", "invalid_request", 900144],
        ];
        for (const [scope, error, code] of cases) {
          const res = await fetch(`${entra.url}/${TENANT}/oauth2/v2.0/devicecode`, {
            method: "POST",
            headers: { "content-type": "application/x-www-form-urlencoded" },
            body: new URLSearchParams({ client_id: PUBLIC_APP, scope }).toString(),
            client: http,
          });
          const json = await res.json();
          assert.equal(res.status, 400, scope);
          assert.equal(json.error, error, scope);
          assert.deepEqual(json.error_codes, [code], scope);
        }
        assert.throws(() => entra.approveDeviceCode("NOSUCHCDE", UPN), /70018/);
      });
    });

    await t.step("the device login page approves through the sign-in form", async () => {
      await withEnv(pki, async (env) => {
        const { entra, pca, http } = env;
        const result = pca().acquireTokenByDeviceCode({
          scopes: [POP],
          deviceCodeCallback: () => {},
        });
        await waitUntil(() => entra.deviceCodes.length === 1, {
          intervalMs: 20,
          what: "the device code",
        });
        const pageUrl = `${entra.url}/devicelogin`;
        const page = await fetch(pageUrl, { client: http }).then((r) => r.text());
        assert.match(page, /<input id="otc" name="otc"/);
        const wrong = await submit(env, pageUrl, page, { otc: "WRONGCODE" });
        assert.match(await wrong.text(), /id="error" role="alert">AADSTS70018/);
        const signIn = await submit(env, pageUrl, page, { otc: entra.deviceCodes[0].userCode });
        const form = await signIn.text();
        assert.match(form, /<input id="password"/);
        const done = await submit(env, pageUrl, form, {
          username: UPN,
          password: PASSWORD,
          action: "signin",
        });
        assert.match(
          await done.text(),
          /You have signed in to the Get-IMAPAccessToken application/,
        );
        const token = await result;
        assert.ok(token);
        await assertUserAccessToken(entra, token.accessToken, "POP.AccessAsUser.All", PUBLIC_APP);
      });
    });
  } finally {
    await Deno.remove(pki.dir, { recursive: true });
  }
});

Deno.test("fake Entra authorization code flow (paste) answers msal-node like Entra", async (t) => {
  const pki = await makeServerPki();
  try {
    await t.step("getAuthCodeUrl → sign-in form → acquireTokenByCode with PKCE", async () => {
      await withEnv(pki, async (env) => {
        const { entra } = env;
        const app = env.pca();
        const pkce = await new CryptoProvider().generatePkceCodes();
        const url = await app.getAuthCodeUrl({
          scopes: [IMAP],
          redirectUri: PASTE_REDIRECT,
          codeChallenge: pkce.challenge,
          codeChallengeMethod: "S256",
          state: "paste-state",
          loginHint: UPN,
        });
        assert.ok(url.startsWith(`${entra.url}/${TENANT}/oauth2/v2.0/authorize?`));
        const page = await fetch(url, { client: env.http });
        const html = await page.text();
        assert.equal(page.headers.get("content-type"), "text/html; charset=utf-8");
        assert.match(
          html,
          /<input id="username" name="username" type="text"[^>]* value="adele@contoso\.example">/,
        );
        assert.match(
          html,
          /<button id="signin" type="submit" name="action" value="signin">Sign in<\/button>/,
        );
        assert.match(
          html,
          /<button id="cancel" type="submit" name="action" value="cancel">Cancel<\/button>/,
        );
        assert.match(html, new RegExp(`action="/${TENANT}/oauth2/v2.0/authorize/submit"`));
        const query = redirectQuery(
          await submit(env, url, html, { password: PASSWORD, action: "signin" }),
        );
        const { query: sent } = entra.authorizeRequests[0];
        assert.equal(sent.response_type, "code");
        assert.equal(sent.response_mode, "query");
        assert.equal(sent.code_challenge_method, "S256");
        assert.equal(sent.code_challenge, pkce.challenge);
        assert.equal(sent.client_info, "1");
        assert.equal(sent.redirect_uri, PASTE_REDIRECT);
        assert.equal(sent.scope, `${IMAP} openid profile offline_access`);
        assert.equal(sent.login_hint, UPN);
        assert.equal(query.get("state"), "paste-state");
        assert.equal(
          JSON.parse(base64UrlDecodeText(query.get("client_info") ?? "")).uid,
          USER_OID,
        );
        assert.ok(query.get("session_state"));
        const code = query.get("code") ?? "";
        assert.deepEqual(entra.signIns.map((s) => [s.username, s.outcome]), [[UPN, "code"]]);
        assert.equal(entra.authCodes[0].code, code);
        assert.equal(entra.authCodes[0].redeemed, false);

        const token = await app.acquireTokenByCode({
          code,
          scopes: [IMAP],
          redirectUri: PASTE_REDIRECT,
          codeVerifier: pkce.verifier,
        });
        await assertUserAccessToken(entra, token.accessToken, "IMAP.AccessAsUser.All", PUBLIC_APP);
        assert.equal(token.account?.username, UPN);
        assert.equal(entra.authCodes[0].redeemed, true);
        const body = entra.tokenRequests[0].body;
        assert.equal(body.grant_type, "authorization_code");
        assert.equal(body.code_verifier, pkce.verifier);
        assert.equal(body.redirect_uri, PASTE_REDIRECT);
        assert.equal(body.client_info, "1");
        assert.equal(body.client_secret, undefined);
        assert.deepEqual(paths(entra), [
          `GET /${TENANT}/oauth2/v2.0/authorize`,
          `POST /${TENANT}/oauth2/v2.0/authorize/submit`,
          `POST /${TENANT}/oauth2/v2.0/token`,
        ]);

        // A code works once.
        const e = await rejection(app.acquireTokenByCode({
          code,
          scopes: [IMAP],
          redirectUri: PASTE_REDIRECT,
          codeVerifier: pkce.verifier,
        }));
        assert.ok(e instanceof ServerError);
        assert.equal(e.errorCode, "invalid_grant");
        assert.equal(String(e.errorNo), "54005");
      });
    });

    await t.step("wrong code_verifier → invalid_grant AADSTS501481", async () => {
      await withEnv(pki, async (env) => {
        const app = env.pca();
        const pkce = await new CryptoProvider().generatePkceCodes();
        const other = await new CryptoProvider().generatePkceCodes();
        const url = await app.getAuthCodeUrl({
          scopes: [IMAP],
          redirectUri: PASTE_REDIRECT,
          codeChallenge: pkce.challenge,
          codeChallengeMethod: "S256",
        });
        const code = redirectQuery(await signInByFetch(env, url)).get("code") ?? "";
        const e = await rejection(app.acquireTokenByCode({
          code,
          scopes: [IMAP],
          redirectUri: PASTE_REDIRECT,
          codeVerifier: other.verifier,
        }));
        assert.ok(e instanceof ServerError);
        assert.equal(e.errorCode, "invalid_grant");
        assert.equal(String(e.errorNo), "501481");
        assert.match(e.errorMessage, /AADSTS501481: The Code_Verifier does not match/);
        // Without a verifier at all, Entra names the missing parameter.
        const e2 = await rejection(app.acquireTokenByCode({
          code,
          scopes: [IMAP],
          redirectUri: PASTE_REDIRECT,
        }));
        assert.equal(String((e2 as ServerError).errorNo), "900144");
        assert.match(e2.errorMessage, /'code_verifier'/);
      });
    });

    await t.step("bad credentials show the form again; the right ones then work", async () => {
      await withEnv(pki, async (env) => {
        const { entra } = env;
        const url = await env.pca().getAuthCodeUrl({ scopes: [IMAP], redirectUri: PASTE_REDIRECT });
        const first = await signInByFetch(env, url, { username: UPN, password: "nope" });
        assert.equal(first.status, 200);
        const html = await first.text();
        assert.match(html, /<p id="error" role="alert" data-code="AADSTS50126">AADSTS50126: /);
        const second = await submit(env, url, html, {
          username: "who@contoso.example",
          password: "x",
        });
        const html2 = await second.text();
        assert.match(html2, /data-code="AADSTS50034"/);
        assert.match(html2, /value="who@contoso\.example"/, "the form keeps what was typed");
        const third = await submit(env, url, html2, { username: UPN, password: PASSWORD });
        assert.ok(redirectQuery(third).get("code"));
        assert.deepEqual(
          entra.signIns.map((s) => [s.outcome, s.errorCode]),
          [["bad_credentials", "AADSTS50126"], ["bad_credentials", "AADSTS50034"], [
            "code",
            undefined,
          ]],
        );
      });
    });

    await t.step("cancel → access_denied AADSTS65004 in the redirect", async () => {
      await withEnv(pki, async (env) => {
        const url = await env.pca().getAuthCodeUrl({
          scopes: [IMAP],
          redirectUri: PASTE_REDIRECT,
          state: "s1",
        });
        const query = redirectQuery(await signInByFetch(env, url, { action: "cancel" }));
        assert.equal(query.get("error"), "access_denied");
        assert.match(
          query.get("error_description") ?? "",
          /^AADSTS65004: User declined .*\r\nTrace ID: /,
        );
        assert.equal(query.get("state"), "s1");
        assert.equal(query.get("code"), null);
        assert.equal(env.entra.signIns[0].outcome, "declined");
      });
    });

    await t.step(
      "bad client or redirect URI → error page; loopback ports are ignored",
      async () => {
        await withEnv(pki, async ({ entra, http }) => {
          const authorize = (params: Record<string, string>, tenant = TENANT) =>
            fetch(
              `${entra.url}/${tenant}/oauth2/v2.0/authorize?${new URLSearchParams({
                client_id: PUBLIC_APP,
                response_type: "code",
                scope: IMAP,
                ...params,
              })}`,
              { client: http, redirect: "manual" },
            );
          const cases: [Record<string, string>, string, number][] = [
            [{ redirect_uri: "https://evil.example/cb" }, TENANT, 50011],
            [{ redirect_uri: "http://localhost:5000/other" }, TENANT, 50011],
            [{ redirect_uri: "http://127.0.0.1:5000" }, TENANT, 50011],
            [{}, TENANT, 900971],
            [{ redirect_uri: PASTE_REDIRECT, client_id: "nobody" }, TENANT, 700016],
            [{ redirect_uri: PASTE_REDIRECT }, "nosuchtenant.example", 90002],
          ];
          for (const [params, tenant, code] of cases) {
            const res = await authorize(params, tenant);
            const html = await res.text();
            assert.equal(res.status, 400, JSON.stringify(params));
            assert.match(html, new RegExp(`<p id="error" role="alert" data-code="AADSTS${code}">`));
          }
          assert.match(
            entra.authorizeRequests[0].errorCode ?? "",
            /^AADSTS50011$/,
          );
          // Entra ignores the port of http://localhost redirect URIs (and the trailing slash).
          for (
            const uri of ["http://localhost:5000", "http://localhost:61234/", "http://localhost"]
          ) {
            const res = await authorize({ redirect_uri: uri });
            assert.equal(res.status, 200, uri);
            await res.body?.cancel();
          }
          // Once the redirect URI is good, errors go back to the app.
          const bad = await authorize({ redirect_uri: PASTE_REDIRECT, response_type: "token" });
          assert.equal(redirectQuery(bad).get("error"), "unsupported_response_type");
          const none = await authorize({
            redirect_uri: PASTE_REDIRECT,
            prompt: "none",
            state: "x",
          });
          const q = redirectQuery(none);
          assert.equal(q.get("error"), "login_required");
          assert.equal(q.get("state"), "x");
          const shortChallenge = await authorize({
            redirect_uri: PASTE_REDIRECT,
            code_challenge: "short",
            code_challenge_method: "S256",
          });
          assert.match(
            redirectQuery(shortChallenge).get("error_description") ?? "",
            /AADSTS501491/,
          );
        });
      },
    );

    await t.step("response_mode=form_post answers with a self-posting form", async () => {
      await withEnv(pki, async (env) => {
        const pkce = await new CryptoProvider().generatePkceCodes();
        const url = `${env.entra.url}/${TENANT}/oauth2/v2.0/authorize?${new URLSearchParams({
          client_id: PUBLIC_APP,
          response_type: "code",
          redirect_uri: "http://localhost:43210",
          response_mode: "form_post",
          scope: `${IMAP} openid profile offline_access`,
          state: "st<&>",
          client_info: "1",
          code_challenge: pkce.challenge,
          code_challenge_method: "S256",
        })}`;
        const res = await signInByFetch(env, url);
        assert.equal(res.status, 200);
        const html = await res.text();
        const form = formOf(html);
        assert.equal(form.action, "http://localhost:43210");
        assert.deepEqual(Object.keys(form.fields).sort(), [
          "client_info",
          "code",
          "session_state",
          "state",
        ]);
        assert.equal(form.fields.state, "st<&>");
        assert.equal(form.fields.code, env.entra.authCodes[0].code);
        assert.match(html, /<script>document\.forms\[0\]\.submit\(\);<\/script>/);
      });
    });

    await t.step("scopes: no consent → consent_required; .default → every permission", async () => {
      await withEnv(pki, async (env) => {
        const url = await env.pca().getAuthCodeUrl({ scopes: [SMTP], redirectUri: PASTE_REDIRECT });
        const query = redirectQuery(await signInByFetch(env, url));
        assert.equal(query.get("error"), "consent_required");
        assert.match(
          query.get("error_description") ?? "",
          /^AADSTS65001: The user or administrator/,
        );

        const token = await codeFlow(env, [EXCHANGE_DEFAULT]);
        const access = claims(token.accessToken);
        assert.equal(access.aud, "https://outlook.office365.com");
        assert.equal(access.scp, "IMAP.AccessAsUser.All POP.AccessAsUser.All");
        // Entra spells .default out in the answer's scope.
        const answer = env.bodies.at(-1)?.scope;
        assert.equal(
          answer,
          "https://outlook.office365.com/IMAP.AccessAsUser.All " +
            "https://outlook.office365.com/POP.AccessAsUser.All openid profile offline_access",
        );
        assert.deepEqual(token.scopes, String(answer).split(" "));
      });
    });

    await t.step("a nonce from the authorize request is echoed in the ID token", async () => {
      await withEnv(pki, async (env) => {
        const app = env.pca();
        const url = await app.getAuthCodeUrl({
          scopes: [IMAP],
          redirectUri: PASTE_REDIRECT,
          nonce: "n-0S6_WzA2Mj",
        });
        const code = redirectQuery(await signInByFetch(env, url)).get("code") ?? "";
        const token = await app.acquireTokenByCode({
          code,
          scopes: [IMAP],
          redirectUri: PASTE_REDIRECT,
          nonce: "n-0S6_WzA2Mj",
        });
        assert.equal(claims(token.idToken).nonce, "n-0S6_WzA2Mj");
      });
    });

    await t.step("a code older than 10 minutes → invalid_grant AADSTS70008", async () => {
      await withEnv(pki, async (env) => {
        const app = env.pca();
        const url = await app.getAuthCodeUrl({ scopes: [IMAP], redirectUri: PASTE_REDIRECT });
        const code = redirectQuery(await signInByFetch(env, url)).get("code") ?? "";
        env.advanceClock(601);
        const e = await rejection(
          app.acquireTokenByCode({ code, scopes: [IMAP], redirectUri: PASTE_REDIRECT }),
        );
        assert.equal(String((e as ServerError).errorNo), "70008");
      });
    });

    await t.step(
      "confidential app: the code needs the secret; a public one must not send one",
      async () => {
        await withEnv(pki, async (env) => {
          const { entra } = env;
          const noSecret = await rejection(codeFlow(env, [IMAP], env.pca(CONFIDENTIAL_APP)));
          assert.equal(String((noSecret as ServerError).errorNo), "7000218");
          assert.equal((noSecret as ServerError).errorCode, "invalid_client");

          const net = testNetwork(env.pki.caPem, entra);
          try {
            const cca = new ConfidentialClientApplication({
              auth: {
                clientId: CONFIDENTIAL_APP,
                clientSecret: SECRET,
                authority: `${entra.url}/${TENANT}`,
                knownAuthorities: [entra.host],
                authorityMetadata: entra.authorityMetadata(TENANT),
              },
              system: { networkClient: net.network },
            });
            const url = await cca.getAuthCodeUrl({ scopes: [IMAP], redirectUri: PASTE_REDIRECT });
            const code = redirectQuery(await signInByFetch(env, url)).get("code") ?? "";
            const token = await cca.acquireTokenByCode({
              code,
              scopes: [IMAP],
              redirectUri: PASTE_REDIRECT,
            });
            await assertUserAccessToken(
              entra,
              token.accessToken,
              "IMAP.AccessAsUser.All",
              CONFIDENTIAL_APP,
            );
            assert.equal(claims(token.accessToken).appidacr, "1");
          } finally {
            net.close();
          }

          const res = await fetch(`${entra.url}/${TENANT}/oauth2/v2.0/token`, {
            method: "POST",
            headers: { "content-type": "application/x-www-form-urlencoded" },
            body: new URLSearchParams({
              grant_type: "authorization_code",
              client_id: PUBLIC_APP,
              client_secret: "anything",
              code: "x",
              redirect_uri: PASTE_REDIRECT,
            }).toString(),
            client: env.http,
          });
          assert.equal(res.status, 401);
          assert.deepEqual((await res.json()).error_codes, [700025]);
        });
      },
    );

    await t.step(
      "tenant aliases: organizations signs the user in to their own tenant",
      async () => {
        await withEnv(pki, async (env) => {
          const token = await codeFlow(env, [IMAP], env.pca(PUBLIC_APP, "organizations"));
          assert.equal(claims(token.accessToken).tid, TENANT);
          assert.equal(claims(token.idToken).iss, `${env.entra.url}/${TENANT}/v2.0`);
          assert.equal(env.entra.requests[0].path, "/organizations/oauth2/v2.0/authorize");
        });
      },
    );
  } finally {
    await Deno.remove(pki.dir, { recursive: true });
  }
});

Deno.test("fake Entra refresh tokens answer msal-node acquireTokenSilent like Entra", async (t) => {
  const pki = await makeServerPki();
  const silent = (app: PublicClientApplication, account: AccountInfo, scopes = [IMAP]) =>
    app.acquireTokenSilent({ account, scopes, forceRefresh: true });
  try {
    await t.step(
      "cache first; a refresh rotates the token and the old one stays valid",
      async () => {
        await withEnv(pki, async (env) => {
          const { entra } = env;
          const app = env.pca();
          const first = await codeFlow(env, [IMAP], app);
          const account = first.account!;
          const cached = await app.acquireTokenSilent({ account, scopes: [IMAP] });
          assert.equal(cached.fromCache, true);
          assert.equal(cached.accessToken, first.accessToken);
          assert.equal(entra.refreshGrants, 0);

          const refreshed = await silent(app, account);
          assert.equal(refreshed.fromCache, false);
          assert.notEqual(refreshed.accessToken, first.accessToken);
          await assertUserAccessToken(
            entra,
            refreshed.accessToken,
            "IMAP.AccessAsUser.All",
            PUBLIC_APP,
          );
          assert.equal(entra.refreshGrants, 1);
          const body = entra.tokenRequests.at(-1)!.body;
          assert.equal(body.grant_type, "refresh_token");
          assert.equal(body.refresh_token, entra.refreshTokens[0].token);
          assert.equal(body.scope, `${IMAP} openid profile offline_access`);
          assert.equal(entra.refreshTokens.length, 2, "a new refresh token on every redemption");
          assert.equal(entra.refreshTokens[0].redemptions, 1);

          // Another resource permission with the same refresh token (Entra's are multi-scope).
          const pop = await silent(app, account, [POP]);
          assert.equal(claims(pop.accessToken).scp, "POP.AccessAsUser.All");
        });
      },
    );

    await t.step("revoked → ServerError invalid_grant AADSTS50173", async () => {
      await withEnv(pki, async (env) => {
        const app = env.pca();
        const { account } = await codeFlow(env, [IMAP], app);
        env.entra.revokeRefreshTokens(UPN.toUpperCase());
        const e = await rejection(silent(app, account!));
        assert.ok(e instanceof ServerError);
        assert.equal(e instanceof InteractionRequiredAuthError, false);
        assert.equal(e.errorCode, "invalid_grant");
        assert.equal(String(e.errorNo), "50173");
        assert.match(e.errorMessage, /revoked, a fresh auth token is needed/);
        assert.equal(env.entra.refreshTokens[0].revoked, true);
        // Signing in again gives a refresh token that works.
        const again = await codeFlow(env, [IMAP], app);
        assert.equal((await silent(app, again.account!)).fromCache, false);
      });
    });

    await t.step("unused for 90 days → invalid_grant AADSTS700082", async () => {
      await withEnv(pki, async (env) => {
        const app = env.pca();
        const { account } = await codeFlow(env, [IMAP], app);
        env.advanceClock(91 * 86400);
        const e = await rejection(silent(app, account!));
        assert.equal(String((e as ServerError).errorNo), "700082");
        assert.match(e.errorMessage, /inactive for 90\.00:00:00/);
      });
    });

    await t.step("no consent for the new scope → InteractionRequiredAuthError", async () => {
      await withEnv(pki, async (env) => {
        const app = env.pca();
        const { account } = await codeFlow(env, [IMAP], app);
        const e = await rejection(silent(app, account!, [SMTP]));
        // suberror consent_required is what makes msal say "interaction required".
        assert.ok(e instanceof InteractionRequiredAuthError);
        assert.equal(e.errorCode, "invalid_grant");
        assert.equal(e.subError, "consent_required");
        assert.equal(String(e.errorNo), "65001");
      });
    });

    await t.step(
      ".default is spelled out in the answer, so msal's cache never matches it",
      async () => {
        await withEnv(pki, async (env) => {
          const app = env.pca();
          const { account } = await codeFlow(env, [EXCHANGE_DEFAULT], app);
          for (let i = 1; i <= 2; i++) {
            const token = await app.acquireTokenSilent({
              account: account!,
              scopes: [EXCHANGE_DEFAULT],
            });
            assert.equal(token.fromCache, false);
            assert.equal(env.entra.refreshGrants, i);
          }
          // With the permission spelled out, the cached token is found.
          const imap = await app.acquireTokenSilent({
            account: account!,
            scopes: ["https://outlook.office365.com/IMAP.AccessAsUser.All"],
          });
          assert.equal(imap.fromCache, true);
        });
      },
    );
  } finally {
    await Deno.remove(pki.dir, { recursive: true });
  }
});
