import assert from "node:assert/strict";
import { parseCommandLine } from "../cli/parse.ts";
import type { Options } from "../cli/options.ts";
import { buildXoauth2 } from "../sasl/xoauth2.ts";
import { cachedOutput } from "./cached_token.ts";
import { cacheFolder, openTokenCache } from "./token_cache.ts";

const TENANT = "11111111-2222-3333-4444-555555555555";
const CLIENT = "66666666-7777-8888-9999-000000000000";
const SECRET = "Qx8~vR2.pL9_kT4-mN7wZ3yB6cD1fH5jS0aE";
const BOX = "box@contoso.com";
const noEnv = () => undefined;

function jwt(claims: Record<string, unknown>): string {
  const part = (v: unknown) =>
    btoa(JSON.stringify(v)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  return `${part({ alg: "RS256" })}.${part(claims)}.sig`;
}

const GOOD = {
  aud: "https://outlook.office365.com",
  tid: TENANT,
  roles: ["IMAP.AccessAsApp", "POP.AccessAsApp"],
};

function optionsFor(clientId: string, dir: string, ...more: string[]): Options {
  const c = parseCommandLine([
    "-tenantID",
    TENANT,
    "-clientId",
    clientId,
    "-targetMailbox",
    BOX,
    "-TokenCachePath",
    dir,
    ...more,
  ]);
  assert.equal(c.kind, "run");
  return (c as { options: Options }).options;
}

const options = (dir: string, ...more: string[]) => optionsFor(CLIENT, dir, ...more);

/** A cache folder holding `claims` as this app's token (secret SECRET), valid for `seconds`. */
async function withToken(
  claims: Record<string, unknown>,
  test: (dir: string, token: string) => Promise<void>,
  seconds = 3600,
  clientId = CLIENT,
): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    const token = jwt({ ...claims, exp: Math.floor(Date.now() / 1000) + seconds });
    const o = optionsFor(clientId, dir, "-clientsecret", SECRET);
    const cache = await openTokenCache(o, dir, { secret: SECRET, warn: () => {} });
    await cache.writeFast({
      accessToken: token,
      expiresOn: Math.floor(Date.now() / 1000) + seconds,
      scopes: ["https://outlook.office365.com/.default"],
      kind: "app",
    });
    await test(dir, token);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("cachedOutput() gives the cached token or its XOAUTH2 string when nothing else would be printed", async () => {
  await withToken(GOOD, async (dir, token) => {
    const run = (...more: string[]) =>
      cachedOutput(options(dir, "-clientsecret", SECRET, ...more), noEnv);
    assert.equal(await run("-OutputFormat", "Token"), token);
    assert.equal(await run("-OutputFormat", "Sasl"), buildXoauth2(BOX, token));
    assert.equal(await run("-OutputFormat", "Token", "-Protocol", "POP3"), token);
  });
});

Deno.test("cachedOutput() steps aside whenever the full run would print more or read input once", async () => {
  await withToken(GOOD, async (dir) => {
    const run = (...args: string[]) => cachedOutput(options(dir, ...args), noEnv);
    const token = ["-OutputFormat", "Token"];
    assert.equal(await run("-clientsecret", SECRET), undefined, "Text output");
    assert.equal(await run("-clientsecret", SECRET, "-OutputFormat", "Json"), undefined);
    assert.equal(await run("-clientsecret", SECRET, ...token, "-Verbose"), undefined);
    assert.equal(await run("-clientsecret", "-", ...token), undefined, "stdin is read once");
    assert.equal(await run("-clientsecret", ` ${SECRET}`, ...token), undefined, "trim warning");
    assert.equal(await run("-clientsecret", `"${SECRET}"`, ...token), undefined, "quoted");
    assert.equal(await run("-clientsecret", "other", ...token), undefined, "another secret");
    assert.equal(await run("-clientsecret", SECRET, ...token, "-NoTokenCache"), undefined);
    assert.equal(await run("-clientsecret", SECRET, ...token, "-Protocol", "SMTP"), undefined);
  });
});

Deno.test("cachedOutput() steps aside for a token the claims check finds fault with", async () => {
  const token = ["-clientsecret", SECRET, "-OutputFormat", "Token"];
  for (
    const claims of [
      { ...GOOD, roles: [] },
      { ...GOOD, roles: ["POP.AccessAsApp"] }, // -Protocol IMAP given below
      { ...GOOD, tid: "99999999-2222-3333-4444-555555555555" },
      { ...GOOD, aud: "https://graph.microsoft.com" },
    ]
  ) {
    await withToken(claims, async (dir) => {
      assert.equal(
        await cachedOutput(options(dir, ...token, "-Protocol", "IMAP"), noEnv),
        undefined,
        JSON.stringify(claims),
      );
    });
  }
});

Deno.test("cachedOutput() steps aside for a token about to expire and for a damaged cache", async () => {
  await withToken(GOOD, async (dir) => {
    const o = options(dir, "-clientsecret", SECRET, "-OutputFormat", "Token");
    assert.equal(await cachedOutput(o, noEnv), undefined, "less than 5 minutes left");
  }, 200);
  await withToken(GOOD, async (dir) => {
    for await (const entry of Deno.readDir(dir)) {
      await Deno.writeTextFile(`${dir}/${entry.name}`, "{ not json");
    }
    const o = options(dir, "-clientsecret", SECRET, "-OutputFormat", "Token");
    assert.equal(await cachedOutput(o, noEnv), undefined);
  });
});

Deno.test("cachedOutput() steps aside when the client ID is the tenant's ID (a warning)", async () => {
  await withToken(
    GOOD,
    async (dir) => {
      const o = optionsFor(TENANT, dir, "-clientsecret", SECRET, "-OutputFormat", "Token");
      assert.equal(await cachedOutput(o, noEnv), undefined);
    },
    3600,
    TENANT,
  );
});

Deno.test("cachedOutput() changes nothing and steps aside when the cache file is open to others", async () => {
  await withToken(GOOD, async (dir) => {
    const [file] = [...Deno.readDirSync(dir)].map((e) => `${dir}/${e.name}`);
    await Deno.chmod(file, 0o644);
    const o = options(dir, "-clientsecret", SECRET, "-OutputFormat", "Token");
    assert.equal(await cachedOutput(o, noEnv), undefined);
    // The full run tightens it and says so; this path must not have done it first.
    assert.equal((await Deno.stat(file)).mode! & 0o777, 0o644);
  });
});

Deno.test("cachedOutput() answers for a certificate file or a link to one, not for /dev/fd (maybe readable once)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const pem = `${dir}/app.pem`;
    await Deno.writeTextFile(pem, "the cache key hashes these bytes");
    const link = `${dir}/link.pem`;
    await Deno.symlink(pem, link);
    const cert = (path: string) =>
      options(dir, "-clientcertificate", path, "-OutputFormat", "Token");
    const token = jwt({ ...GOOD, exp: Math.floor(Date.now() / 1000) + 3600 });
    const cache = await openTokenCache(cert(pem), dir, { warn: () => {} });
    await cache.writeFast({
      accessToken: token,
      expiresOn: Math.floor(Date.now() / 1000) + 3600,
      scopes: ["https://outlook.office365.com/.default"],
      kind: "app",
    });
    assert.equal(await cachedOutput(cert(pem), noEnv), token, "a regular file");
    assert.equal(await cachedOutput(cert(link), noEnv), token, "a link to it (certbot's live/)");
    // The same bytes through a descriptor, so the same entry: only the check steps aside.
    if (Deno.build.os === "linux") {
      const file = await Deno.open(pem);
      try {
        const real = await Deno.realPath(pem);
        const fd = [...Deno.readDirSync("/proc/self/fd")].map((e) => e.name)
          .find((n) => {
            try {
              return Deno.readLinkSync(`/proc/self/fd/${n}`) === real;
            } catch {
              return false;
            }
          });
        assert.ok(fd, "the open file's descriptor");
        assert.equal(await cachedOutput(cert(`/dev/fd/${fd}`), noEnv), undefined, "/dev/fd");
      } finally {
        file.close();
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cachedOutput() leaves the default cache folder open to others as it is (the full run tightens it)", async () => {
  const xdg = await Deno.makeTempDir();
  try {
    const env = (name: string) => name === "XDG_CACHE_HOME" ? xdg : undefined;
    const c = parseCommandLine([
      ...["-tenantID", TENANT, "-clientId", CLIENT, "-targetMailbox", BOX],
      ...["-clientsecret", SECRET, "-OutputFormat", "Token"],
    ]);
    assert.equal(c.kind, "run");
    const o = (c as { options: Options }).options;
    const dir = cacheFolder(o, env);
    assert.ok(dir && dir.startsWith(xdg), dir ?? "no folder");
    const cache = await openTokenCache(o, dir, { secret: SECRET, warn: () => {} });
    await cache.writeFast({
      accessToken: jwt({ ...GOOD, exp: Math.floor(Date.now() / 1000) + 3600 }),
      expiresOn: Math.floor(Date.now() / 1000) + 3600,
      scopes: ["https://outlook.office365.com/.default"],
      kind: "app",
    });
    await Deno.chmod(dir, 0o755);
    assert.equal(await cachedOutput(o, env), undefined);
    assert.equal((await Deno.stat(dir)).mode! & 0o777, 0o755);
  } finally {
    await Deno.remove(xdg, { recursive: true });
  }
});
