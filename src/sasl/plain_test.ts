import assert from "node:assert/strict";
import { decodeSaslResponse, parsePlainResponse } from "./plain.ts";

const b64 = (text: string) => btoa(String.fromCharCode(...new TextEncoder().encode(text)));

Deno.test("parsePlainResponse() reads authzid, user and password", () => {
  assert.deepEqual(parsePlainResponse(b64("\0scanner\0pass word ü")), {
    user: "scanner",
    password: "pass word ü",
    actingForOther: false,
  });
  assert.equal(parsePlainResponse(b64("Scanner\0scanner\0pw"))?.actingForOther, false);
  assert.equal(parsePlainResponse(b64("admin\0scanner\0pw"))?.actingForOther, true);
});

Deno.test("parsePlainResponse() refuses what is not a PLAIN response", () => {
  for (const bad of ["not base64!", "=", b64("scanner\0pw"), b64("a\0b\0c\0d")]) {
    assert.equal(parsePlainResponse(bad), undefined, bad);
  }
  // Not UTF-8.
  assert.equal(parsePlainResponse(btoa("\0u\0\xff")), undefined);
});

Deno.test("decodeSaslResponse() takes = as the empty response", () => {
  assert.equal(decodeSaslResponse("="), "");
  assert.equal(decodeSaslResponse(b64("user")), "user");
  assert.equal(decodeSaslResponse("***"), undefined);
});
