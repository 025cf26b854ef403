import assert from "node:assert/strict";
import { pickLanguage } from "./language.ts";

Deno.test("pickLanguage() prefers -Language, then LC_ALL, LC_MESSAGES, LANG", () => {
  const env = (vars: Record<string, string>) => (n: string) => vars[n];
  assert.equal(pickLanguage("de", env({ LANG: "en_US.UTF-8" })), "de");
  assert.equal(pickLanguage(undefined, env({ LANG: "de_DE.UTF-8" }), "linux"), "de");
  assert.equal(pickLanguage(undefined, env({ LC_ALL: "C", LANG: "de_DE.UTF-8" }), "linux"), "en");
  assert.equal(pickLanguage(undefined, env({ LC_MESSAGES: "de_AT" }), "linux"), "de");
  assert.equal(pickLanguage(undefined, env({}), "linux"), "en");
});
