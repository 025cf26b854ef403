/**
 * User sign-in, end to end: device code (approved, declined, expired), the
 * interactive sign-in in a real browser (Debian chromium driven by
 * playwright-core as $BROWSER), the paste flow, refresh tokens, and shared
 * mailboxes. The CLI runs as a child process; tokens log in to Dovecot and to
 * the Exchange-like server.
 */
import assert from "node:assert/strict";
import { type CliResult, json, runCli, spawnCli } from "./cli.ts";
import {
  PUBLIC_APP,
  SHARED,
  SHARED_NO_ACCESS,
  startTestBed,
  type TestBed,
  USER,
  USER_PASSWORD,
} from "../bed/testbed.ts";
import { waitUntil } from "../bed/wait.ts";

const BROWSER_SCRIPT = new URL("../bed/browser.ts", import.meta.url).pathname;

/** Plays the user's part of a device-code sign-in once the CLI shows the code. */
async function deviceCodeRun(
  bed: TestBed,
  args: string[],
  answer: (userCode: string) => void,
  env?: Record<string, string>,
): Promise<CliResult> {
  const cli = spawnCli(args, { env });
  const [, userCode] = await cli.waitForStderr(/enter the code (\S+) to authenticate/);
  // Let the CLI poll while the user is still busy, as in real life.
  await waitUntil(
    () => (bed.entra.deviceCodes.find((d) => d.userCode === userCode)?.polls ?? 0) >= 2,
    { timeoutMs: 15_000, what: `two polls of device code ${userCode}` },
  );
  answer(userCode);
  return await cli.done;
}

function userArgs(bed: TestBed, cache: string, ...extra: string[]): string[] {
  return [
    ...bed.common().map((a) => (a === `${bed.dir}/cache` ? `${bed.dir}/${cache}` : a)),
    "-clientId",
    PUBLIC_APP,
    ...extra,
  ];
}

Deno.test("user sign-in: device code, browser, paste, refresh, shared mailboxes", async (t) => {
  const bed = await startTestBed({ dovecot: true, entra: { deviceCodeLifetimeSeconds: 60 } });
  const dovecot = bed.dovecot!;
  try {
    await t.step("device code approved after pending polls: IMAP on Dovecot (exit 0)", async () => {
      const args = userArgs(bed, "cache-dc", "-DeviceCode", "-LoginHint", USER);
      const r = await deviceCodeRun(
        bed,
        [...args, "-Port", String(dovecot.imapsPort), "-OutputFormat", "Json"],
        (code) => bed.entra.approveDeviceCode(code, USER),
      );
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const j = json(r);
      assert.equal(j.parameterSet, "devicecode");
      assert.equal(j.signIn, "deviceCode");
      assert.equal(j.user, USER);
      assert.equal(j.mailbox, USER);
      assert.match(j.deviceCode.userCode, /^\S+$/);
      assert.match(j.deviceCode.verificationUri, /^https:\/\/127\.0\.0\.1:\d+\//);
      assert.ok(j.folders.includes("INBOX"));
      assert.match(j.token.claims.scp, /IMAP\.AccessAsUser\.All/);
      assert.match(r.stderr, /enter the code/, "the code is shown on stderr");
      assert.doesNotMatch(r.stderr, /waiting for the sign-in/, "no spinner when not a terminal");
    });

    await t.step(
      "the cached user token opens POP3 on Dovecot with zero token requests",
      async () => {
        const before = bed.entra.tokenRequests.length;
        const r = await runCli([
          ...userArgs(bed, "cache-dc", "-DeviceCode", "-LoginHint", USER),
          "-Protocol",
          "POP3",
          "-Port",
          String(dovecot.pop3sPort),
          "-OutputFormat",
          "Json",
        ]);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.equal(json(r).signIn, "cache");
        assert.equal(json(r).messages.count, 1);
        assert.equal(bed.entra.tokenRequests.length, before);
      },
    );

    await t.step(
      "a token for other scopes comes from the refresh token, without a prompt",
      async () => {
        const refreshes = bed.entra.refreshGrants;
        const r = await runCli([
          ...userArgs(bed, "cache-dc", "-DeviceCode", "-LoginHint", USER),
          "-Scopes",
          "https://outlook.office.com/POP.AccessAsUser.All",
          "-OutputFormat",
          "Json",
          "-NoConnect",
        ]);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.equal(json(r).signIn, "refreshToken");
        assert.equal(bed.entra.refreshGrants, refreshes + 1);
        assert.doesNotMatch(r.stderr, /enter the code/);
      },
    );

    await t.step(
      "no cached sign-in and no way to sign in (-NoConnect, no terminal): exit 3",
      async () => {
        const r = await runCli([...userArgs(bed, "cache-none", "-DeviceCode"), "-NoConnect"]);
        assert.equal(r.code, 3, r.stderr);
        assert.match(r.stderr, /^ERROR: no cached sign-in .* run once interactively/m);
        assert.doesNotMatch(r.stderr, /enter the code/);
      },
    );

    await t.step(
      "a revoked refresh token is a clear error (exit 3) when no sign-in is possible",
      async () => {
        bed.entra.revokeRefreshTokens(USER);
        const r = await runCli([
          ...userArgs(bed, "cache-dc", "-DeviceCode", "-LoginHint", USER),
          "-Scopes",
          "https://outlook.office.com/IMAP.AccessAsUser.All",
          "-OutputFormat",
          "Token",
        ]);
        assert.equal(r.code, 3, r.stderr);
        assert.equal(r.stdout, "");
        assert.match(r.stderr, /^ERROR: .*cannot be renewed.*sign in again/m);
      },
    );

    await t.step("device code declined: exit 3", async () => {
      const r = await deviceCodeRun(
        bed,
        [...userArgs(bed, "cache-declined", "-DeviceCode"), "-OutputFormat", "Json"],
        (code) => bed.entra.declineDeviceCode(code),
      );
      assert.equal(r.code, 3, r.stderr);
      const j = json(r);
      assert.equal(j.error.kind, "token");
      assert.match(j.error.message, /declined/i);
      assert.match(j.error.code, /^AADSTS\d+$/, "Entra's code, not just msal's error name");
    });

    await t.step("device code expired: exit 3", async () => {
      const short = await startTestBed({ entra: { deviceCodeLifetimeSeconds: 2 } });
      try {
        const args = [...short.common(), "-clientId", PUBLIC_APP, "-DeviceCode"];
        const r = await runCli([...args, "-OutputFormat", "Json"]);
        assert.equal(r.code, 3, r.stderr);
        assert.match(json(r).error.message, /expired/i);
      } finally {
        await short.close();
      }
    });

    await t.step("interactive sign-in in a real browser: IMAP on Dovecot (exit 0)", async () => {
      const wrapper = `${bed.dir}/browser.sh`;
      await Deno.writeTextFile(
        wrapper,
        `#!/bin/sh\nexec "${Deno.execPath()}" run --allow-all --quiet "${BROWSER_SCRIPT}" "$1"\n`,
      );
      await Deno.chmod(wrapper, 0o755);
      const r = await runCli(
        [
          ...userArgs(bed, "cache-browser", "-redirectUri", "http://localhost", "-LoginHint", USER),
          "-Port",
          String(dovecot.imapsPort),
          "-OutputFormat",
          "Json",
        ],
        { env: { BROWSER: wrapper, GIA_TEST_PASSWORD: USER_PASSWORD } },
      );
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const j = json(r);
      assert.equal(j.parameterSet, "authorizationcode");
      assert.equal(j.signIn, "interactive");
      assert.equal(j.user, USER);
      assert.ok(j.folders.includes("INBOX"));
      const authorize = bed.entra.authorizeRequests.at(-1)!;
      assert.equal(authorize.query.code_challenge_method, "S256");
      assert.equal(authorize.query.response_mode, "form_post");
      assert.equal(authorize.query.login_hint, USER);
      assert.ok(bed.entra.authCodes.at(-1)!.redeemed, "the code reached msal's loopback listener");
    });

    await t.step("the browser sign-in's cached token opens POP3 on Dovecot", async () => {
      const before = bed.entra.tokenRequests.length;
      const r = await runCli([
        ...userArgs(bed, "cache-browser", "-redirectUri", "http://localhost", "-LoginHint", USER),
        "-Protocol",
        "POP3",
        "-Port",
        String(dovecot.pop3sPort),
        "-OutputFormat",
        "Json",
      ]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.equal(json(r).messages.count, 1);
      assert.equal(bed.entra.tokenRequests.length, before, "no new sign-in, no token request");
    });

    // The paste flow opens the sign-in page in a browser ("true" stands for one that opened);
    // the person copies the address the browser ends on.
    const aBrowser = { env: { BROWSER: "true" } };
    await t.step("paste flow: the redirected address is read from stdin (exit 0)", async () => {
      const cli = spawnCli([
        ...userArgs(bed, "cache-paste", "-redirectUri", "https://localhost", "-LoginHint", USER),
        "-Port",
        String(bed.exchange.imapPort),
        "-OutputFormat",
        "Json",
      ], aBrowser);
      const [url] = await cli.waitForStderr(/https:\/\/127\.0\.0\.1:\d+\/\S+\/authorize\?\S+/);
      const location = await signInOverHttp(bed, url, USER_PASSWORD);
      assert.match(location, /^https:\/\/localhost\/?\?code=/);
      await cli.writeStdin(`${location}\n`);
      const r = await cli.done;
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const j = json(r);
      assert.equal(j.signIn, "authorizationCodePaste");
      assert.ok(j.folders.includes("INBOX"));
    });

    await t.step(
      "paste flow: an error in the pasted address is reported like a token error",
      async () => {
        const cli = spawnCli([
          ...userArgs(
            bed,
            "cache-paste-error",
            "-redirectUri",
            "https://localhost",
            "-LoginHint",
            USER,
          ),
          "-OutputFormat",
          "Json",
        ], aBrowser);
        await cli.waitForStderr(/authorize\?/);
        await cli.writeStdin(
          "https://localhost/?error=access_denied&error_description=AADSTS65004%3a+User+declined+to+consent+to+access+the+app.\n",
        );
        const r = await cli.done;
        assert.equal(r.code, 3, r.stderr);
        assert.equal(json(r).error.code, "AADSTS65004");
      },
    );

    await t.step(
      "paste flow: standard input ends without an address: exit 2 NO_INPUT, not Entra's refusal",
      async () => {
        const r = await runCli([
          ...userArgs(
            bed,
            "cache-no-input",
            "-redirectUri",
            "https://localhost",
            "-LoginHint",
            USER,
          ),
          "-Port",
          String(bed.exchange.imapPort),
        ], { env: { BROWSER: "true" }, stdin: "" });
        assert.equal(r.code, 2, r.stderr);
        assert.match(
          r.stderr,
          /^ERROR: -redirectUri: no address was pasted \(standard input ended\)\. \[NO_INPUT\]$/m,
        );
        assert.doesNotMatch(r.stderr, /Entra ID refused/);
      },
    );

    for (const redirectUri of ["https://localhost", "http://localhost"]) {
      await t.step(
        `-redirectUri ${redirectUri}, no browser, stdin not a terminal: device code instead (exit 0)`,
        async () => {
          const r = await deviceCodeRun(
            bed,
            [
              ...userArgs(
                bed,
                `cache-nobrowser-${redirectUri.split(":")[0]}`,
                "-redirectUri",
                redirectUri,
                "-LoginHint",
                USER,
              ),
              "-Port",
              String(bed.exchange.imapPort),
              "-OutputFormat",
              "Json",
            ],
            (code) => bed.entra.approveDeviceCode(code, USER),
            // An opener that fails: no browser on this machine.
            { BROWSER: "false" },
          );
          assert.equal(r.code, 0, r.stdout + r.stderr);
          assert.match(
            r.stderr,
            /^No browser could be opened and standard input is not a terminal: signing in with a device code instead\.$/m,
          );
          const j = json(r);
          assert.equal(j.parameterSet, "authorizationcode");
          assert.equal(j.signIn, "deviceCode");
          assert.equal(j.user, USER);
          assert.ok(j.folders.includes("INBOX"));
        },
      );
    }

    await t.step("shared mailbox: the user's token opens the shared mailbox (exit 0)", async () => {
      const r = await runCli([
        ...userArgs(bed, "cache-dc", "-DeviceCode", "-LoginHint", USER, "-SharedMailbox", SHARED),
        "-Port",
        String(bed.exchange.imapPort),
      ]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(
        r.stderr,
        new RegExp(`shared mailbox ${SHARED} with the access token of user ${USER}`),
      );
      const session = bed.exchange.sessions.at(-1)!;
      const auth = session.received.find((l) => /AUTHENTICATE XOAUTH2/.test(l))!;
      assert.match(atob(auth.split(" ").at(-1)!), new RegExp(`^user=${SHARED}\\x01`));
    });

    await t.step("shared mailbox without FullAccess: exit 6", async () => {
      const r = await runCli([
        ...userArgs(
          bed,
          "cache-dc",
          "-DeviceCode",
          "-LoginHint",
          USER,
          "-SharedMailbox",
          SHARED_NO_ACCESS,
        ),
        "-Port",
        String(bed.exchange.imapPort),
        "-OutputFormat",
        "Json",
      ]);
      assert.ok([5, 6].includes(r.code), r.stdout + r.stderr);
      assert.equal(r.code, 6, "Exchange accepts the login, then refuses the mailbox");
    });
  } finally {
    await bed.close();
  }
});

/** Signs in on the fake's authorize page with plain HTTP requests; returns the redirect target. */
async function signInOverHttp(bed: TestBed, url: string, password: string): Promise<string> {
  const client = Deno.createHttpClient({ caCerts: [bed.pki.caPem] });
  try {
    const page = await (await fetch(url, { client })).text();
    const form = new URLSearchParams();
    for (const m of page.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) {
      form.set(m[1], m[2].replace(/&amp;/g, "&").replace(/&quot;/g, '"'));
    }
    const username = /id="username"[^>]*value="([^"]*)"/.exec(page)?.[1] ?? "";
    form.set("username", username);
    form.set("password", password);
    form.set("action", "signin");
    const action = /<form method="post" action="([^"]+)"/.exec(page)![1];
    const res = await fetch(new URL(action, url), {
      method: "POST",
      body: form,
      redirect: "manual",
      client,
    });
    await res.body?.cancel();
    return res.headers.get("location") ?? "";
  } finally {
    client.close();
  }
}
