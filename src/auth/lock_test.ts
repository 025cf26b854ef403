import assert from "node:assert/strict";
import { acquireLock, STALE_LOCK_MS } from "./lock.ts";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "lock_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("acquireLock() creates the lock file and its release removes it", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/x.lock`;
    const release = await acquireLock(path);
    assert.ok(release);
    assert.match(await Deno.readTextFile(path), new RegExp(`^${Deno.pid} \\d+ [0-9a-f]{16}$`));
    await release();
    await assert.rejects(Deno.stat(path), Deno.errors.NotFound);
    await release(); // already gone: no error
  });
});

Deno.test("acquireLock() returns null after timeoutMs when a live process holds the lock", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/x.lock`;
    await Deno.writeTextFile(path, "another process");
    const warnings: string[] = [];
    const started = performance.now();
    const release = await acquireLock(path, { timeoutMs: 100, onWarn: (m) => warnings.push(m) });
    const waited = performance.now() - started;
    assert.equal(release, null);
    assert.ok(waited >= 90 && waited < 1500, `waited ${waited} ms`);
    assert.equal(await Deno.readTextFile(path), "another process");
    assert.deepEqual(warnings, []);
  });
});

Deno.test("a release does not remove a lock that is no longer ours", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/x.lock`;
    const release = await acquireLock(path);
    assert.ok(release);
    await Deno.writeTextFile(path, "taken over");
    await release();
    assert.equal(await Deno.readTextFile(path), "taken over");
  });
});

Deno.test("acquireLock() breaks a stale lock with a warning and takes it", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/x.lock`;
    await Deno.writeTextFile(path, "crashed process");
    const old = (Date.now() - STALE_LOCK_MS - 1000) / 1000;
    await Deno.utime(path, old, old);
    const warnings: string[] = [];
    const release = await acquireLock(path, { timeoutMs: 500, onWarn: (m) => warnings.push(m) });
    assert.ok(release);
    assert.deepEqual(warnings, [
      `removed a stale lock ${path} (older than ${
        STALE_LOCK_MS / 1000
      } s; its process probably died)`,
    ]);
    await release();
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  });
});

Deno.test("acquireLock() throws when the folder is missing", async () => {
  await withDir(async (dir) => {
    await assert.rejects(acquireLock(`${dir}/missing/x.lock`), Deno.errors.NotFound);
  });
});
