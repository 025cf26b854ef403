/**
 * The persistent token cache seen from outside: requests the fake Entra ID
 * counts, what the JSON says, the file's permissions, and concurrent runs.
 */
import assert from "node:assert/strict";
import { runCli, secretArgs } from "./cli.ts";
import { APP, MAILBOX, SECRET, startTestBed, TENANT } from "../bed/testbed.ts";
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
