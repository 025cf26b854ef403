/**
 * The persistent token cache seen from outside: requests the fake Entra ID
 * counts, what the JSON says, the file's permissions, and concurrent runs.
 */
import assert from "node:assert/strict";
import { runCli, secretArgs } from "./cli.ts";
import { APP, APP_NO_ROLES, MAILBOX, SECRET, startTestBed, TENANT } from "../bed/testbed.ts";
import { startFakeEntra } from "../bed/entra.ts";

function tokenPosts(requests: { method: string; path: string }[]): number {
  return requests.filter((r) => r.method === "POST" && r.path.endsWith("/token")).length;
}

Deno.test("token cache: reuse, renewal, isolation, permissions, concurrency, corruption", async (t) => {
  const bed = await startTestBed();
  const cacheDir = `${bed.dir}/cache`;
  const withSecret = [...bed.common(), ...secretArgs()];
  const posts = () => tokenPosts(bed.entra.requests);
  try {
    await t.step("a second run within the token's lifetime makes zero token requests", async () => {
      const first = await runCli([...withSecret, "-OutputFormat", "Json", "-NoConnect"]);
      assert.equal(first.code, 0, first.stderr);
      assert.equal(JSON.parse(first.stdout).token.fromCache, false);
      assert.equal(JSON.parse(first.stdout).signIn, "clientCredentials");
      const before = posts();
      const token = await runCli([...withSecret, "-OutputFormat", "Token"]);
      assert.equal(token.code, 0, token.stderr);
      assert.equal(token.stdout.trim(), bed.entra.issuedTokens.at(-1));
      const json = await runCli([
        ...withSecret,
        "-OutputFormat",
        "Json",
        "-Port",
        String(bed.exchange.imapPort),
      ]);
      assert.equal(json.code, 0, json.stderr);
      const j = JSON.parse(json.stdout);
      assert.equal(j.token.fromCache, true);
      assert.equal(j.signIn, "cache");
      assert.equal(posts(), before, "no token request for cached runs");
    });

    await t.step("the cache file is owner-only (0600) in an owner-only folder (0700)", async () => {
      const files = [...Deno.readDirSync(cacheDir)].filter((e) => e.isFile);
      assert.ok(files.length >= 1);
      for (const f of files) {
        assert.equal((await Deno.stat(`${cacheDir}/${f.name}`)).mode! & 0o777, 0o600, f.name);
        const text = await Deno.readTextFile(`${cacheDir}/${f.name}`);
        assert.ok(!text.includes(SECRET), "the secret itself is never stored");
      }
      assert.equal((await Deno.stat(cacheDir)).mode! & 0o777, 0o700);
    });

    await t.step("a token got with the secret is not used by a certificate run", async () => {
      const before = posts();
      const r = await runCli([
        ...bed.common(),
        "-clientId",
        APP,
        "-clientcertificate",
        bed.cert.combinedFile,
        "-targetMailbox",
        MAILBOX,
        "-OutputFormat",
        "Json",
        "-NoConnect",
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(JSON.parse(r.stdout).token.fromCache, false);
      assert.equal(posts(), before + 1);
      assert.ok(bed.entra.tokenRequests.at(-1)!.body.client_assertion);
      // ... nor by another secret of the same app.
      const other = await runCli(
        [
          ...withSecret.map((a) => (a === SECRET ? "another-secret-value" : a)),
          "-OutputFormat",
          "Token",
        ],
      );
      assert.equal(other.code, 3, "the other secret is checked by Entra, not served from cache");
    });

    await t.step("20 concurrent runs all succeed and leave a valid cache", async () => {
      const dir = `${bed.dir}/cache-concurrent`;
      const args = withSecret.map((a) => (a === cacheDir ? dir : a));
      const runs = await Promise.all(
        Array.from({ length: 20 }, () => runCli([...args, "-OutputFormat", "Token"])),
      );
      for (const r of runs) assert.equal(r.code, 0, r.stderr);
      const files = [...Deno.readDirSync(dir)];
      assert.equal(files.length, 1, `only the cache file remains: ${files.map((f) => f.name)}`);
      JSON.parse(await Deno.readTextFile(`${dir}/${files[0].name}`));
      const again = await runCli([...args, "-OutputFormat", "Json", "-NoConnect"]);
      assert.equal(JSON.parse(again.stdout).token.fromCache, true);
    });

    await t.step("a corrupt cache file gives a warning and the run still succeeds", async () => {
      const dir = `${bed.dir}/cache-corrupt`;
      const args = withSecret.map((a) => (a === cacheDir ? dir : a));
      assert.equal((await runCli([...args, "-OutputFormat", "Token"])).code, 0);
      const [file] = [...Deno.readDirSync(dir)];
      await Deno.writeTextFile(`${dir}/${file.name}`, "{ this is not json");
      const r = await runCli([...args, "-NoConnect"]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /WARNING: .*cache/i);
      const j = await runCli([...args, "-OutputFormat", "Json", "-NoConnect"]);
      assert.equal(JSON.parse(j.stdout).token.fromCache, true, "the next write repaired it");
    });

    await t.step("-NoTokenCache neither reads nor writes the cache", async () => {
      const before = posts();
      const r = await runCli([
        ...withSecret,
        "-NoTokenCache",
        "-OutputFormat",
        "Json",
        "-NoConnect",
      ]);
      assert.equal(JSON.parse(r.stdout).token.fromCache, false);
      assert.equal(posts(), before + 1);
    });

    await t.step("a token with less than 5 minutes left is renewed", async () => {
      const shortLived = await startFakeEntra({
        tls: { certPem: bed.pki.certPem, keyPem: bed.pki.keyPem },
        apps: [{ tenantId: TENANT, clientId: APP, secrets: [SECRET], roles: ["IMAP.AccessAsApp"] }],
        tokenLifetimeSeconds: 240,
      });
      try {
        const args = withSecret.map((a) => (a === bed.entra.url ? shortLived.url : a))
          .map((a) => (a === cacheDir ? `${bed.dir}/cache-short` : a));
        for (let i = 0; i < 2; i++) {
          const r = await runCli([...args, "-OutputFormat", "Json", "-NoConnect"]);
          assert.equal(r.code, 0, r.stderr);
          assert.equal(JSON.parse(r.stdout).token.fromCache, false, `run ${i + 1} renews`);
        }
        assert.equal(tokenPosts(shortLived.requests), 2);
      } finally {
        await shortLived.close();
      }
    });
  } finally {
    await bed.close();
  }
});

Deno.test("token cache: a token that failed is not served again", async (t) => {
  const bed = await startTestBed();
  const imap = ["-Port", String(bed.exchange.imapPort)];
  const posts = () => tokenPosts(bed.entra.requests);
  try {
    const cases: [string, string[]][] = [
      // The claims check finds no IMAP role: the server refuses it too (exit 5).
      ["a token without the role", [...bed.common(), ...secretArgs({ clientId: APP_NO_ROLES })]],
      ["the same with -Diagnose", [
        ...bed.common(),
        ...secretArgs({ clientId: APP_NO_ROLES }),
        "-Diagnose",
      ]],
      // A token with the role that the mail server refuses for this mailbox.
      ["a token the mail server rejected", [
        ...bed.common(),
        ...secretArgs({ mailbox: "nobody@contoso.com" }),
      ]],
    ];
    for (const [name, args] of cases) {
      await t.step(`${name}: the next run requests a fresh token`, async () => {
        const dir = `${bed.dir}/cache-${posts()}`;
        const run = [...args.map((a) => (a === `${bed.dir}/cache` ? dir : a)), ...imap];
        for (let i = 0; i < 2; i++) {
          const before = posts();
          const r = await runCli([...run, "-OutputFormat", "Json"]);
          assert.equal(r.code, 5, `run ${i + 1}: ${r.stdout}${r.stderr}`);
          assert.equal(JSON.parse(r.stdout).token.fromCache, false, `run ${i + 1}`);
          assert.equal(posts(), before + 1, `run ${i + 1} asked Entra ID`);
        }
        const [file] = [...Deno.readDirSync(dir)].filter((f) => f.name.endsWith(".json"));
        const text = await Deno.readTextFile(`${dir}/${file.name}`);
        assert.ok(!text.includes(bed.entra.issuedTokens.at(-1)!), "the token left the cache");
      });
    }
  } finally {
    await bed.close();
  }
});

Deno.test("token cache: -TokenCachePath never changes the mode of an existing folder", async () => {
  const bed = await startTestBed();
  try {
    const shared = `${bed.dir}/shared`;
    await Deno.mkdir(shared);
    await Deno.chmod(shared, 0o1777);
    await Deno.symlink(shared, `${bed.dir}/link`);
    for (const dir of [shared, `${bed.dir}/link`]) {
      const before = tokenPosts(bed.entra.requests);
      const r = await runCli([
        ...bed.common().map((a) => (a === `${bed.dir}/cache` ? dir : a)),
        ...secretArgs(),
        "-NoConnect",
      ]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(
        r.stderr,
        /^ERROR: -TokenCachePath: .* is open to other users \(mode 1777\).*\[UNSAFE_CACHE_FOLDER\]\n$/,
      );
      assert.equal((await Deno.stat(shared)).mode! & 0o7777, 0o1777, "mode unchanged");
      assert.deepEqual([...Deno.readDirSync(shared)], [], "nothing written");
      assert.equal(tokenPosts(bed.entra.requests), before, "no token request");
    }
  } finally {
    await bed.close();
  }
});
