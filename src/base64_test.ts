import assert from "node:assert/strict";
import { base64, base64url, fromBase64 } from "./base64.ts";

Deno.test("base64() and fromBase64() round-trip, also beyond one chunk", () => {
  const big = Uint8Array.from({ length: 100_000 }, (_, i) => i % 256);
  assert.deepEqual(fromBase64(base64(big)), big);
  assert.equal(base64(new TextEncoder().encode("user=a\x01")), "dXNlcj1hAQ==");
  assert.throws(() => fromBase64("***"));
});

Deno.test("base64url() has no padding and URL-safe characters", () => {
  assert.equal(base64url(new Uint8Array([0xfb, 0xff, 0xfe])), "-__-");
  assert.equal(base64url(new Uint8Array([1])), "AQ");
});

Deno.test("fromBase64() accepts what atob accepts: whitespace, missing padding", () => {
  assert.deepEqual(fromBase64("dXNl\r\ncj1h AQ=="), new TextEncoder().encode("user=a\x01"));
  assert.deepEqual(fromBase64("AQ"), new Uint8Array([1]));
  assert.throws(() => fromBase64("A"));
});
