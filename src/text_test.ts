import assert from "node:assert/strict";
import { lookAlike, MAX_SHOWN, shown } from "./text.ts";

Deno.test("shown() makes invisible and look-alike characters visible", () => {
  assert.equal(shown("box\u200b@contoso.com"), "box<U+200B>@contoso.com");
  assert.equal(shown("\u2212clientId"), "<U+2212>clientId");
  assert.equal(shown("\u201cx\u201d"), "<U+201C>x<U+201D>");
  assert.equal(shown("a\x1b[31m"), "a\\x1b[31m");
  assert.equal(shown("jürgen@contoso.de"), "jürgen@contoso.de", "ordinary letters stay");
});

Deno.test("shown() cuts a long value and says how long it was", () => {
  const long = "x".repeat(120 * 1024);
  const s = shown(long);
  assert.equal(s, `${"x".repeat(MAX_SHOWN)}… (122880 characters)`);
  assert.equal(shown("x".repeat(MAX_SHOWN)), "x".repeat(MAX_SHOWN));
});

Deno.test("lookAlike() names the first odd character", () => {
  assert.equal(lookAlike("a\u00a0b\u200b"), "U+00A0");
  assert.equal(lookAlike("plain-ascii"), null);
});
