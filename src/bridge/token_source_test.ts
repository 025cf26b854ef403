import assert from "node:assert/strict";
import { TokenSource } from "./token_source.ts";

function source(lifetimeMs: number) {
  let now = 1_000_000;
  let issued = 0;
  const tokens = new TokenSource({
    now: () => now,
    renewBeforeMs: 5 * 60_000,
    fetch: async () => {
      await new Promise((r) => setTimeout(r, 5));
      issued++;
      return { accessToken: `token-${issued}`, expiresOn: new Date(now + lifetimeMs) };
    },
  });
  return { tokens, advance: (ms: number) => now += ms };
}

Deno.test("TokenSource shares one request among concurrent callers", async () => {
  const { tokens } = source(3600_000);
  const got = await Promise.all(Array.from({ length: 50 }, () => tokens.get()));
  assert.deepEqual(new Set(got), new Set(["token-1"]));
  assert.equal(tokens.requests, 1);
});

Deno.test("TokenSource renews a token before it expires, not on every call", async () => {
  const { tokens, advance } = source(3600_000);
  assert.equal(await tokens.get(), "token-1");
  advance(50 * 60_000);
  assert.equal(await tokens.get(), "token-1");
  advance(6 * 60_000); // 4 minutes left: renewed
  assert.equal(await tokens.get(), "token-2");
  assert.equal(tokens.requests, 2);
});

Deno.test("TokenSource drops a refused token once; a stale refusal keeps the newer one", async () => {
  const { tokens } = source(3600_000);
  const first = await tokens.get();
  tokens.refused(first);
  const second = await tokens.get();
  assert.equal(second, "token-2");
  tokens.refused(first); // another session's late report about the old token
  assert.equal(await tokens.get(), "token-2");
  assert.equal(tokens.requests, 2);
});

Deno.test("TokenSource passes a failed request on and tries again on the next call", async () => {
  let calls = 0;
  const tokens = new TokenSource({
    fetch: () => {
      calls++;
      return calls === 1
        ? Promise.reject(new Error("AADSTS7000215"))
        : Promise.resolve({ accessToken: "t", expiresOn: null });
    },
  });
  await assert.rejects(tokens.get(), /AADSTS7000215/);
  assert.equal(await tokens.get(), "t");
});

Deno.test("TokenSource tells onRefused about a refused current token, not about a stale one", async () => {
  const told: string[] = [];
  let issued = 0;
  const tokens = new TokenSource({
    fetch: () => Promise.resolve({ accessToken: `token-${++issued}`, expiresOn: null }),
    onRefused: (token) => told.push(token),
  });
  const first = await tokens.get();
  tokens.refused(first);
  tokens.refused(first); // a second session's report about the same token
  assert.equal(await tokens.get(), "token-2");
  tokens.refused(first); // late: token-2 is current
  assert.deepEqual(told, ["token-1"]);
});

Deno.test("TokenSource does not count a token read from a cache as a request", async () => {
  let calls = 0;
  const tokens = new TokenSource({
    fetch: () =>
      Promise.resolve({ accessToken: `t${++calls}`, expiresOn: null, fromCache: calls === 1 }),
  });
  const first = await tokens.get();
  assert.equal(tokens.requests, 0, "from the cache");
  tokens.refused(first);
  assert.equal(await tokens.get(), "t2");
  assert.equal(tokens.requests, 1);
});
