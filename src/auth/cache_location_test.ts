import assert from "node:assert/strict";
import { defaultCacheDir } from "./cache_location.ts";

const envOf = (vars: Record<string, string>) => (name: string) => vars[name];

Deno.test("defaultCacheDir() uses XDG_CACHE_HOME on Linux, else ~/.cache", () => {
  assert.equal(
    defaultCacheDir("linux", envOf({ HOME: "/home/ann", XDG_CACHE_HOME: "/var/cache/ann/" })),
    "/var/cache/ann/get-imapaccesstoken",
  );
  assert.equal(
    defaultCacheDir("linux", envOf({ HOME: "/home/ann" })),
    "/home/ann/.cache/get-imapaccesstoken",
  );
  assert.equal(
    defaultCacheDir("freebsd", envOf({ HOME: "/home/ann/" })),
    "/home/ann/.cache/get-imapaccesstoken",
  );
});

Deno.test("defaultCacheDir() ignores an empty or relative XDG_CACHE_HOME", () => {
  for (const xdg of ["", "relative/cache"]) {
    assert.equal(
      defaultCacheDir("linux", envOf({ HOME: "/home/ann", XDG_CACHE_HOME: xdg })),
      "/home/ann/.cache/get-imapaccesstoken",
    );
  }
});

Deno.test("defaultCacheDir() uses ~/Library/Caches on macOS", () => {
  assert.equal(
    defaultCacheDir("darwin", envOf({ HOME: "/Users/ann", XDG_CACHE_HOME: "/tmp/x" })),
    "/Users/ann/Library/Caches/get-imapaccesstoken",
  );
});

Deno.test("defaultCacheDir() uses LOCALAPPDATA on Windows, else USERPROFILE\\AppData\\Local", () => {
  assert.equal(
    defaultCacheDir("windows", envOf({ LOCALAPPDATA: "C:\\Users\\ann\\AppData\\Local\\" })),
    "C:\\Users\\ann\\AppData\\Local\\get-imapaccesstoken",
  );
  assert.equal(
    defaultCacheDir("windows", envOf({ USERPROFILE: "C:\\Users\\ann" })),
    "C:\\Users\\ann\\AppData\\Local\\get-imapaccesstoken",
  );
});

Deno.test("defaultCacheDir() returns null when no home folder is known", () => {
  assert.equal(defaultCacheDir("linux", envOf({})), null);
  assert.equal(defaultCacheDir("linux", envOf({ XDG_CACHE_HOME: "relative" })), null);
  assert.equal(defaultCacheDir("darwin", envOf({ HOME: "" })), null);
  assert.equal(defaultCacheDir("windows", envOf({ HOME: "/home/ann" })), null);
});
