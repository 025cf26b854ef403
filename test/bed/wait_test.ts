import assert from "node:assert/strict";
import { waitUntil } from "./wait.ts";

Deno.test("waitUntil() resolves with the first result that is not false or undefined", async () => {
  let calls = 0;
  const value = await waitUntil(() => ++calls >= 3 && `after ${calls}`, { intervalMs: 1 });
  assert.equal(value, "after 3");
  assert.equal(await waitUntil(() => "", { intervalMs: 1 }), "", "an empty string counts");
  assert.equal(await waitUntil(() => Promise.resolve(0)), 0, "async checks and 0 count");
});

Deno.test("waitUntil() fails after timeoutMs, naming what it waited for", async () => {
  const started = Date.now();
  await assert.rejects(
    waitUntil(() => false, { timeoutMs: 60, intervalMs: 10, what: "the sky to fall" }),
    /^Error: timed out after 60 ms waiting for the sky to fall$/,
  );
  assert.ok(Date.now() - started >= 60);
  await assert.rejects(
    waitUntil(() => undefined, { timeoutMs: 1, what: () => Promise.resolve("a late state") }),
    /waiting for a late state$/,
  );
});

Deno.test("waitUntil() ends with the error a check throws", async () => {
  await assert.rejects(
    waitUntil(() => {
      throw new Error("the server exited");
    }),
    /^Error: the server exited$/,
  );
});
