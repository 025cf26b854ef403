import assert from "node:assert/strict";
import { ConfidentialClientApplication, type ICachePlugin } from "@azure/msal-node";
import {
  type CacheIdentity,
  credentialId,
  type FastEntry,
  MAX_FAST_ENTRIES,
  mergeMsalCache,
  TokenCache,
} from "./cache.ts";
import { STALE_LOCK_MS } from "./lock.ts";
import { FetchNetworkClient } from "./network.ts";
import { makeServerPki } from "../../test/bed/pki.ts";
import { startFakeEntra } from "../../test/bed/entra.ts";
import { WORKER_IDENTITY } from "../../test/auth/cache_worker.ts";

const posix = Deno.build.os !== "windows";
/** Appended to a test's name when it is ignored: a skip says why. */
const notPosix = posix ? "" : " (skipped: no POSIX file modes on Windows)";
const SECRET = "Zq8~not-a-real-secret-but-long-enough-1234";
const SCOPE = "https://outlook.office365.com/.default";

const nowSeconds = () => Math.floor(Date.now() / 1000);

async function identity(secret = SECRET): Promise<CacheIdentity> {
  return {
    authorityHost: "https://login.example.test",
    tenantId: "11111111-2222-4333-8444-555555555555",
    clientId: "66666666-7777-4888-8999-000000000000",
    credential: await credentialId("secret", secret),
  };
}

function appEntry(over: Partial<FastEntry> = {}): FastEntry {
  return {
    kind: "app",
    accessToken: "eyJhbGciOiJSUzI1NiJ9.payload.signature",
    expiresOn: nowSeconds() + 3600,
    scopes: [SCOPE],
    ...over,
  };
}

/** A temp folder (removed afterwards) and a cache in a not-yet-existing subfolder of it. */
async function withCache(
  fn: (cache: TokenCache, warnings: string[], root: string) => Promise<void>,
  options: { lockTimeoutMs?: number; id?: CacheIdentity; ownFolder?: boolean } = {},
): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "cache_test_" });
  const warnings: string[] = [];
  try {
    const cache = await TokenCache.open(`${root}/cache`, options.id ?? await identity(), {
      warn: (m) => warnings.push(m),
      lockTimeoutMs: options.lockTimeoutMs,
      ownFolder: options.ownFolder,
    });
    await fn(cache, warnings, root);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

async function leftovers(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.name.endsWith(".tmp") || e.name.includes(".lock")) names.push(e.name);
  }
  return names;
}

const modeOf = async (path: string) => (await Deno.stat(path)).mode! & 0o777;

Deno.test("credentialId() hashes secrets and certificate files, never returning them", async () => {
  const id = await credentialId("secret", SECRET);
  assert.match(id, /^secret:[0-9a-f]{64}$/);
  assert.ok(!id.includes(SECRET));
  assert.equal(id, await credentialId("secret", new TextEncoder().encode(SECRET)));
  assert.notEqual(id, await credentialId("secret", SECRET + "x"));
  const cert = await credentialId("certificate-file", new Uint8Array([1, 2, 3]));
  assert.match(cert, /^cert:[0-9a-f]{64}$/);
  assert.equal(await credentialId("thumbprint", "AB:CD ef01"), "thumbprint:abcdef01");
  assert.equal(await credentialId("user", ""), "user");
});

Deno.test("TokenCache.open() names the file by a hash of the identity and does no I/O", async () => {
  const root = await Deno.makeTempDir({ prefix: "cache_test_" });
  try {
    const dir = `${root}/not-yet`;
    const id = await identity();
    const cache = await TokenCache.open(dir, id);
    assert.match(cache.path, new RegExp(`^${dir}/[0-9a-f]{40}\\.json$`));
    await assert.rejects(Deno.stat(dir), Deno.errors.NotFound);
    // Case and a trailing slash do not make another identity; another credential does.
    const same = await TokenCache.open(dir, {
      ...id,
      authorityHost: "HTTPS://LOGIN.EXAMPLE.TEST/",
      tenantId: id.tenantId.toUpperCase(),
    });
    assert.equal(same.path, cache.path);
    const other = await TokenCache.open(dir, await identity("another secret"));
    assert.notEqual(other.path, cache.path);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("readFast() finds a written token by scope set and user, with enough validity left", async () => {
  await withCache(async (cache, warnings) => {
    assert.equal(await cache.readFast([SCOPE]), null, "no file yet is a silent miss");
    const now = nowSeconds();
    await cache.writeFast(appEntry({ accessToken: "app-token", expiresOn: now + 3600 }));
    await cache.writeFast({
      kind: "user",
      accessToken: "user-token",
      expiresOn: now + 1800,
      scopes: ["IMAP.AccessAsUser.All", "offline_access"],
      username: "Ann@Contoso.com",
    });
    assert.equal((await cache.readFast([SCOPE.toUpperCase()]))?.accessToken, "app-token");
    const user = await cache.readFast(["offline_access", "imap.accessasuser.all"], {
      user: "ann@contoso.COM",
    });
    assert.deepEqual(user, {
      kind: "user",
      accessToken: "user-token",
      expiresOn: now + 1800,
      scopes: ["IMAP.AccessAsUser.All", "offline_access"],
      username: "Ann@Contoso.com",
    });
    assert.equal(
      await cache.readFast(["offline_access", "IMAP.AccessAsUser.All"], {
        user: "bob@contoso.com",
      }),
      null,
    );
    assert.equal(await cache.readFast(["offline_access"]), null, "a subset is another scope set");
    // 1800 s left: enough by default, not when 2000 s are required.
    assert.equal(
      await cache.readFast(["offline_access", "IMAP.AccessAsUser.All"], {
        minValiditySeconds: 2000,
      }),
      null,
    );
    assert.equal(
      await cache.readFast([SCOPE], { now: now + 3400 }),
      null,
      "within 300 s of expiry",
    );
    assert.ok(await cache.readFast([SCOPE], { now: now + 3200 }));
    // A newer token for the same scopes replaces the older one.
    await cache.writeFast(appEntry({ accessToken: "app-token-2", expiresOn: now + 3000 }));
    assert.equal((await cache.readFast([SCOPE]))?.accessToken, "app-token-2");
    assert.deepEqual(warnings, []);
  });
});

Deno.test("writeFast() stores version 1 with the identity but no credential material", async () => {
  await withCache(async (cache) => {
    const entry = appEntry({ accessToken: "tok" });
    // Extra fields (here a password) are not copied into the file.
    await cache.writeFast({ ...entry, password: SECRET } as FastEntry);
    const text = await Deno.readTextFile(cache.path);
    const secretHash = (await credentialId("secret", SECRET)).slice("secret:".length);
    for (const forbidden of [SECRET, secretHash, "secret:", "credential"]) {
      assert.ok(!text.includes(forbidden), `file contains ${forbidden}`);
      assert.ok(!cache.path.includes(forbidden), `file name contains ${forbidden}`);
    }
    assert.deepEqual(JSON.parse(text), {
      version: 1,
      identity: {
        authorityHost: "https://login.example.test",
        tenantId: "11111111-2222-4333-8444-555555555555",
        clientId: "66666666-7777-4888-8999-000000000000",
      },
      msal: "",
      fast: [entry],
    });
  });
});

Deno.test({
  name: "writeFast() makes the folder 0700 and the file 0600" + notPosix,
  ignore: !posix,
  fn: () =>
    withCache(async (cache, warnings) => {
      await cache.writeFast(appEntry());
      assert.equal(await modeOf(cache.dir), 0o700);
      assert.equal(await modeOf(cache.path), 0o600);
      assert.deepEqual(warnings, []);
      assert.deepEqual(await leftovers(cache.dir), []);
    }),
});

Deno.test({
  name: "writeFast() tightens the tool's own looser folder (with a warning) and replaces a 0644 " +
    "file" + notPosix,
  ignore: !posix,
  fn: () =>
    withCache(async (cache, warnings) => {
      await Deno.mkdir(cache.dir, { mode: 0o755 });
      await Deno.chmod(cache.dir, 0o755);
      await Deno.writeTextFile(cache.path, "{}", { mode: 0o644 });
      await Deno.chmod(cache.path, 0o644);
      await cache.writeFast(appEntry());
      assert.equal(await modeOf(cache.dir), 0o700);
      assert.equal(await modeOf(cache.path), 0o600);
      assert.ok(
        warnings.some((w) => /open to other users \(mode 0755\)/.test(w)),
        String(warnings),
      );
    }, { ownFolder: true }),
});

Deno.test({
  name: "a folder the tool does not own is never chmodded: open to others, it is not used" +
    notPosix,
  ignore: !posix,
  fn: () =>
    withCache(async (cache, warnings, root) => {
      // A shared folder like /tmp (sticky, world-writable), directly and through a link.
      const shared = `${root}/shared`;
      await Deno.mkdir(shared);
      await Deno.chmod(shared, 0o1777);
      for (const dir of [shared, `${root}/link`]) {
        if (dir !== shared) await Deno.symlink(shared, dir);
        const other = await TokenCache.open(dir, await identity(), {
          warn: (m) => warnings.push(m),
        });
        await other.writeFast(appEntry());
        assert.equal(await other.readFast([SCOPE]), null);
        assert.equal((await Deno.stat(shared)).mode! & 0o7777, 0o1777, "mode unchanged");
        assert.deepEqual([...Deno.readDirSync(shared)], [], `nothing written through ${dir}`);
      }
      assert.ok(
        warnings.some((w) => /open to other users \(mode 1777\)/.test(w)),
        String(warnings),
      );
      // Even the tool's own folder is not tightened through a symbolic link.
      const own = await TokenCache.open(`${root}/link`, await identity(), {
        warn: (m) => warnings.push(m),
        ownFolder: true,
      });
      await own.writeFast(appEntry());
      assert.equal((await Deno.stat(shared)).mode! & 0o7777, 0o1777, "link target unchanged");
      void cache;
    }),
});

Deno.test({
  name: "readFast() tightens a cache file open to others and ignores a linked one" + notPosix,
  ignore: !posix,
  fn: () =>
    withCache(async (cache, warnings, root) => {
      await cache.writeFast(appEntry({ accessToken: "tok" }));
      await Deno.chmod(cache.path, 0o644);
      assert.equal((await cache.readFast([SCOPE]))?.accessToken, "tok");
      assert.equal(await modeOf(cache.path), 0o600, "the fast path tightened the file");
      assert.ok(warnings.some((w) => /was open to other users \(mode 0644\)/.test(w)));
      // A symbolic link in place of the file is not followed.
      await Deno.rename(cache.path, `${root}/elsewhere.json`);
      await Deno.symlink(`${root}/elsewhere.json`, cache.path);
      const fresh = await TokenCache.open(cache.dir, await identity(), {
        warn: (m) => warnings.push(m),
      });
      assert.equal(await fresh.readFast([SCOPE]), null);
      assert.ok(warnings.some((w) => /a symbolic link/.test(w)), String(warnings));
    }),
});

Deno.test("forget() removes the token from the fast entries and from msal's part", async () => {
  await withCache(async (cache) => {
    await cache.writeFast(appEntry({ accessToken: "bad", scopes: ["a"] }));
    await cache.writeFast(appEntry({ accessToken: "good", scopes: ["b"] }));
    const msal = JSON.stringify({
      AccessToken: { k1: { secret: "bad", target: "a" }, k2: { secret: "good", target: "b" } },
      RefreshToken: { r: { secret: "refresh" } },
    });
    await cache.msalPlugin().afterCacheAccess({
      cacheHasChanged: true,
      tokenCache: { serialize: () => msal },
    });
    assert.equal(await cache.forget("bad"), true);
    assert.equal(await cache.readFast(["a"]), null);
    assert.equal((await cache.readFast(["b"]))?.accessToken, "good");
    const file = JSON.parse(await Deno.readTextFile(cache.path));
    assert.deepEqual(Object.keys(JSON.parse(file.msal).AccessToken), ["k2"]);
    assert.deepEqual(Object.keys(JSON.parse(file.msal).RefreshToken), ["r"], "sign-in kept");
    assert.equal(await cache.forget("bad"), false, "nothing left to remove");
  });
});

Deno.test("writeFast() writes through a 0600 temp file, flushed and renamed over the cache file", async () => {
  await withCache(async (cache) => {
    const calls: string[] = [];
    const realOpen = Deno.open;
    const realRename = Deno.rename;
    const spy = Deno as unknown as Record<string, unknown>;
    spy.open = (path: string | URL, options?: Deno.OpenOptions) => {
      calls.push(`open ${String(path).slice(cache.path.length)} ${JSON.stringify(options)}`);
      return realOpen(path, options);
    };
    spy.rename = (from: string | URL, to: string | URL) => {
      calls.push(`rename ${String(from).slice(cache.path.length)} -> ${String(to) === cache.path}`);
      return realRename(from, to);
    };
    try {
      await cache.writeFast(appEntry());
    } finally {
      spy.open = realOpen;
      spy.rename = realRename;
    }
    assert.equal(calls.length, 2, calls.join("\n"));
    assert.match(
      calls[0],
      /^open \.[0-9a-f]{16}\.tmp \{"write":true,"createNew":true,"mode":384\}$/,
    );
    assert.match(calls[1], /^rename \.[0-9a-f]{16}\.tmp -> true$/);
    assert.deepEqual(await leftovers(cache.dir), []);
  });
});

Deno.test("writeFast() prunes expired entries and keeps the longest-living ones beyond the limit", async () => {
  await withCache(async (cache) => {
    const now = nowSeconds();
    await cache.writeFast(appEntry({ scopes: ["keep"] }));
    // Planted directly: writeFast itself would prune an expired entry at once.
    const file = JSON.parse(await Deno.readTextFile(cache.path));
    file.fast.push(appEntry({ scopes: ["expired"], expiresOn: now - 1 }));
    await Deno.writeTextFile(cache.path, JSON.stringify(file));
    for (let i = 0; i < MAX_FAST_ENTRIES + 4; i++) {
      await cache.writeFast(appEntry({ scopes: [`s${i}`], expiresOn: now + 100_000 + i }));
    }
    const { fast } = JSON.parse(await Deno.readTextFile(cache.path)) as { fast: FastEntry[] };
    assert.equal(fast.length, MAX_FAST_ENTRIES);
    const scopes = new Set(fast.map((e) => e.scopes[0]));
    assert.ok(!scopes.has("expired"));
    assert.ok(!scopes.has("keep"), "expires first, so dropped beyond the limit");
    for (let i = 4; i < MAX_FAST_ENTRIES + 4; i++) assert.ok(scopes.has(`s${i}`), `s${i}`);
  });
});

Deno.test("a corrupt cache file is a warning and a miss, and the next write replaces it", async () => {
  await withCache(async (cache, warnings) => {
    const token = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.secret-part";
    await Deno.mkdir(cache.dir, { recursive: true, mode: 0o700 });
    await Deno.writeTextFile(cache.path, `{"version":1,"fast":[{"accessToken":"${token}"`, {
      mode: 0o600,
    });
    assert.equal(await cache.readFast([SCOPE]), null);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /is not a valid cache file; ignoring it/);
    assert.ok(!warnings[0].includes(token), "the warning must not quote the file");
    await cache.writeFast(appEntry({ accessToken: "fresh" }));
    assert.equal((await cache.readFast([SCOPE]))?.accessToken, "fresh");
    assert.equal(warnings.length, 1, `the same problem is reported once: ${warnings}`);
  });
});

Deno.test("a cache file of another version or identity is ignored with a warning", async () => {
  await withCache(async (cache, warnings) => {
    await cache.writeFast(appEntry());
    const good = JSON.parse(await Deno.readTextFile(cache.path));
    await Deno.writeTextFile(cache.path, JSON.stringify({ ...good, version: 2 }));
    assert.equal(await cache.readFast([SCOPE]), null);
    await Deno.writeTextFile(
      cache.path,
      JSON.stringify({ ...good, identity: { ...good.identity, clientId: "someone-else" } }),
    );
    assert.equal(await cache.readFast([SCOPE]), null);
    assert.equal(warnings.length, 2, String(warnings));
    assert.match(warnings[0], /unknown version 2/);
    assert.match(warnings[1], /belongs to another/);
  });
});

Deno.test("an unreadable cache file is a warning, never an exception", async () => {
  await withCache(async (cache, warnings) => {
    // A folder where the file should be: reading and replacing it both fail.
    await Deno.mkdir(cache.dir, { mode: 0o700 });
    await Deno.mkdir(cache.path);
    assert.equal(await cache.readFast([SCOPE]), null);
    await cache.writeFast(appEntry());
    await cache.msalPlugin().afterCacheAccess({
      cacheHasChanged: true,
      tokenCache: { serialize: () => "{}" },
    });
    assert.ok(warnings.some((w) => /cannot read/.test(w)), String(warnings));
    assert.ok(warnings.some((w) => /cannot write/.test(w)), String(warnings));
    assert.deepEqual(await leftovers(cache.dir), []);
  });
});

Deno.test("writeFast() gives up on a held lock after lockTimeoutMs, with a warning", async () => {
  await withCache(async (cache, warnings) => {
    await cache.writeFast(appEntry({ accessToken: "before" }));
    const lock = `${cache.path}.lock`;
    await Deno.writeTextFile(lock, "another process");
    const started = performance.now();
    await cache.writeFast(appEntry({ accessToken: "after" }));
    const waited = performance.now() - started;
    assert.ok(waited >= 140 && waited < 1500, `waited ${waited} ms`);
    assert.equal(await Deno.readTextFile(lock), "another process", "someone else's lock stays");
    assert.equal((await cache.readFast([SCOPE]))?.accessToken, "before");
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /stayed locked by another process for 150 ms/);
    await Deno.remove(lock);
  }, { lockTimeoutMs: 150 });
});

Deno.test("a lock older than 10 s is stale: removed (with a warning) and the write goes on", async () => {
  await withCache(async (cache, warnings) => {
    await Deno.mkdir(cache.dir, { recursive: true, mode: 0o700 });
    const lock = `${cache.path}.lock`;
    await Deno.writeTextFile(lock, "crashed process");
    const old = (Date.now() - STALE_LOCK_MS - 1000) / 1000;
    await Deno.utime(lock, old, old);
    await cache.writeFast(appEntry({ accessToken: "written" }));
    assert.equal((await cache.readFast([SCOPE]))?.accessToken, "written");
    assert.equal(warnings.length, 1, String(warnings));
    assert.match(warnings[0], /removed a stale lock/);
    assert.deepEqual(await leftovers(cache.dir), []);
  }, { lockTimeoutMs: 500 });
});

Deno.test("20 processes writing at once lose no entry", async () => {
  const root = await Deno.makeTempDir({ prefix: "cache_test_" });
  const dir = `${root}/cache`;
  const count = 20;
  try {
    const children = Array.from({ length: count }, (_, i) => {
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "test/auth/cache_worker.ts", dir, String(i)],
        cwd: new URL("../../", import.meta.url),
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      return { child, stderr: new Response(child.stderr).text(), stdout: child.stdout.getReader() };
    });
    // Start signal only once every worker is loaded, so they all hit the lock together.
    const decoder = new TextDecoder();
    const stdout: string[] = children.map(() => "");
    await Promise.all(children.map(async ({ stdout: reader }, i) => {
      while (!stdout[i].includes("ready")) {
        const { value, done } = await reader.read();
        if (done) break;
        stdout[i] += decoder.decode(value);
      }
    }));
    await Promise.all(children.map(async ({ child }) => {
      const writer = child.stdin.getWriter();
      await writer.write(new TextEncoder().encode("go\n"));
      await writer.close();
    }));
    const results = await Promise.all(children.map(async ({ child, stderr, stdout: reader }) => {
      for (;;) if ((await reader.read()).done) break;
      return { status: await child.status, stderr: await stderr };
    }));
    for (const [i, r] of results.entries()) {
      assert.equal(r.status.code, 0, `worker ${i}: ${r.stderr}`);
      assert.equal(r.stderr, "", `worker ${i}`);
    }
    const cache = await TokenCache.open(dir, WORKER_IDENTITY);
    const file = JSON.parse(await Deno.readTextFile(cache.path)) as { fast: FastEntry[] };
    assert.deepEqual(
      file.fast.map((e) => e.accessToken).sort(),
      Array.from({ length: count }, (_, i) => `token-${i}`).sort(),
    );
    for (let i = 0; i < count; i++) {
      assert.equal((await cache.readFast([`scope-${i}`]))?.accessToken, `token-${i}`);
    }
    assert.deepEqual(await leftovers(dir), []);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("mergeMsalCache() keeps others' new entries, applies ours and our removals", () => {
  const base = { AccessToken: { a: 1, gone: 1 }, Account: {} };
  const theirs = { AccessToken: { a: 1, gone: 1, theirs: 1 }, Account: { x: 1 }, Extra: 1 };
  const ours = { AccessToken: { a: 2, mine: 1 }, Account: {}, AppMetadata: { m: 1 } };
  assert.deepEqual(
    JSON.parse(mergeMsalCache(JSON.stringify(base), JSON.stringify(ours), JSON.stringify(theirs))),
    {
      AccessToken: { a: 2, theirs: 1, mine: 1 },
      Account: { x: 1 },
      Extra: 1,
      AppMetadata: { m: 1 },
    },
  );
  assert.equal(mergeMsalCache("", '{"A":{}}', "not json"), '{"A":{}}');
  const merged = JSON.parse(mergeMsalCache("", '{"A":{"__proto__":{"p":1}}}', '{"A":{}}'));
  assert.deepEqual(Object.keys(merged.A), ["__proto__"]);
  assert.equal(({} as Record<string, unknown>).p, undefined);
});

Deno.test("msalPlugin() merges two writers and recovers from a bad msal blob", async () => {
  await withCache(async (cache, warnings) => {
    const fakeMsal = (state: Record<string, unknown>) => ({
      deserialize(s: string) {
        if (s === "") return;
        const parsed = JSON.parse(s);
        if (parsed.Reject) throw new Error("unsupported cache schema");
        Object.assign(state, parsed);
      },
      serialize: () => JSON.stringify(state),
    });
    const a = { AccessToken: {} as Record<string, number> };
    const b = { AccessToken: {} as Record<string, number> };
    const pluginA = cache.msalPlugin();
    const pluginB = cache.msalPlugin();
    await pluginA.beforeCacheAccess({ tokenCache: fakeMsal(a) });
    await pluginB.beforeCacheAccess({ tokenCache: fakeMsal(b) });
    a.AccessToken.fromA = 1;
    b.AccessToken.fromB = 1;
    await pluginA.afterCacheAccess({ cacheHasChanged: true, tokenCache: fakeMsal(a) });
    await pluginB.afterCacheAccess({ cacheHasChanged: true, tokenCache: fakeMsal(b) });
    const stored = () => JSON.parse(Deno.readTextFileSync(cache.path)).msal;
    assert.deepEqual(JSON.parse(stored()), { AccessToken: { fromA: 1, fromB: 1 } });

    // No change: no write.
    const before = stored();
    await pluginA.afterCacheAccess({
      cacheHasChanged: false,
      tokenCache: { serialize: () => '{"AccessToken":{}}' },
    });
    assert.equal(stored(), before);
    assert.deepEqual(warnings, []);

    // A blob msal rejects: warned, and msal is reset to an empty snapshot.
    await pluginA.afterCacheAccess({
      cacheHasChanged: true,
      tokenCache: { serialize: () => '{"Reject":true}' },
    });
    const seen: string[] = [];
    await pluginA.beforeCacheAccess({
      tokenCache: {
        deserialize(s) {
          seen.push(s);
          if (s !== "") throw new Error("unsupported cache schema");
        },
      },
    });
    assert.equal(seen.at(-1), "");
    assert.match(warnings.at(-1) ?? "", /msal could not load/);

    // msal part not JSON at all: warned, never handed to msal.
    const file = JSON.parse(Deno.readTextFileSync(cache.path));
    await Deno.writeTextFile(cache.path, JSON.stringify({ ...file, msal: "{broken" }));
    const handed: string[] = [];
    await pluginB.beforeCacheAccess({ tokenCache: { deserialize: (s) => handed.push(s) } });
    assert.deepEqual(handed, []);
    assert.match(warnings.at(-1) ?? "", /msal part .* is corrupt/);
  });
});

Deno.test("msal-node with the cache plugin: the second app instance gets the token from the file", async () => {
  const pki = await makeServerPki();
  const tenantId = "11111111-2222-4333-8444-555555555555";
  const clientId = "66666666-7777-4888-8999-000000000000";
  const entra = await startFakeEntra({
    tls: { certPem: pki.certPem, keyPem: pki.keyPem },
    apps: [{ tenantId, clientId, secrets: [SECRET, "second-secret-value"] }],
  });
  const root = await Deno.makeTempDir({ prefix: "cache_test_" });
  const warnings: string[] = [];
  const authority = `${entra.url}/${tenantId}`;
  async function acquire(secret: string) {
    const cache = await TokenCache.open(root, {
      authorityHost: entra.url,
      tenantId,
      clientId,
      credential: await credentialId("secret", secret),
    }, { warn: (m) => warnings.push(m) });
    const network = new FetchNetworkClient({ caCerts: [pki.caPem], timeoutMs: 5000 });
    try {
      const cachePlugin: ICachePlugin = cache.msalPlugin();
      const app = new ConfidentialClientApplication({
        auth: {
          clientId,
          authority,
          clientSecret: secret,
          knownAuthorities: [entra.host],
          authorityMetadata: JSON.stringify({
            token_endpoint: `${authority}/oauth2/v2.0/token`,
            authorization_endpoint: `${authority}/oauth2/v2.0/authorize`,
            jwks_uri: `${authority}/discovery/v2.0/keys`,
            issuer: `${authority}/v2.0`,
          }),
        },
        cache: { cachePlugin },
        system: { networkClient: network },
      });
      const result = await app.acquireTokenByClientCredential({ scopes: [SCOPE] });
      return { result: result!, cache };
    } finally {
      network.close();
    }
  }
  try {
    const first = await acquire(SECRET);
    assert.equal(first.result.fromCache, false);
    assert.equal(entra.tokenRequests.length, 1);
    const text = await Deno.readTextFile(first.cache.path);
    assert.ok(text.includes(first.result.accessToken), "msal's blob holds the token");
    assert.ok(!text.includes(SECRET), "never the client secret");

    const requestsBefore = entra.requests.length;
    const second = await acquire(SECRET);
    assert.equal(second.result.fromCache, true);
    assert.equal(second.result.accessToken, first.result.accessToken);
    assert.equal(entra.requests.length, requestsBefore, "no request at all");

    // Another credential of the same app has its own file, so msal asks Entra again.
    const other = await acquire("second-secret-value");
    assert.notEqual(other.cache.path, first.cache.path);
    assert.equal(other.result.fromCache, false);
    assert.equal(entra.tokenRequests.length, 2);
    assert.deepEqual(warnings, []);
    if (posix) assert.equal(await modeOf(first.cache.path), 0o600);
  } finally {
    await entra.close();
    await Deno.remove(root, { recursive: true });
    await Deno.remove(pki.dir, { recursive: true });
  }
});

Deno.test("readFast() is cheap: file read + parse of a full cache file", async () => {
  await withCache(async (cache, warnings) => {
    const jwtSized = "eyJ" + "x".repeat(1800);
    for (let i = 0; i < MAX_FAST_ENTRIES; i++) {
      await cache.writeFast(appEntry({ accessToken: `${jwtSized}${i}`, scopes: [`scope-${i}`] }));
    }
    await cache.msalPlugin().afterCacheAccess({
      cacheHasChanged: true,
      tokenCache: { serialize: () => JSON.stringify({ AccessToken: { k: "y".repeat(8000) } }) },
    });
    const size = (await Deno.stat(cache.path)).size;
    const times: number[] = [];
    for (let i = 0; i < 200; i++) {
      const started = performance.now();
      const entry = await cache.readFast(["scope-7"]);
      times.push(performance.now() - started);
      assert.equal(entry?.accessToken, `${jwtSized}7`);
    }
    times.sort((a, b) => a - b);
    const median = times[100];
    console.log(
      `readFast on a ${size}-byte file: first ${times.at(-1)!.toFixed(2)} ms max, ` +
        `median ${median.toFixed(3)} ms`,
    );
    assert.ok(median < 10, `median ${median} ms`);
    assert.deepEqual(warnings, []);
  });
});

Deno.test("cache.ts loads no npm package (msal stays off the fast path)", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", new URL("./cache.ts", import.meta.url).href],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    modules: { specifier: string }[];
  };
  const specifiers = info.modules.map((m) => m.specifier);
  assert.deepEqual(specifiers.filter((s) => !s.startsWith("file:")), []);
  assert.deepEqual(specifiers.map((s) => s.split("/").at(-1)).sort(), ["cache.ts", "lock.ts"]);
});
