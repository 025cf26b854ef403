import assert from "node:assert/strict";
import { REDACTED, Redactor, redactorOf } from "./redact.ts";

const TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL291dGxvb2sifQ.c2ln";

function scrub(text: string, secret: string, label: string): string {
  const r = new Redactor();
  r.add(secret, label);
  return r.redact(text);
}

Deno.test("Redactor.redact() removes a credential also where a server cut it short", () => {
  assert.equal(scrub(`NO bad ${TOKEN} here`, TOKEN, "<t>"), "NO bad <t> here");
  assert.equal(scrub(`NO ${TOKEN.slice(0, 50)}...`, TOKEN, "<t>"), "NO <t>...");
  assert.equal(scrub(`NO ${TOKEN.slice(0, 20)}`, TOKEN, "<t>"), `NO ${TOKEN.slice(0, 20)}`);
  assert.equal(scrub(`${TOKEN}${TOKEN}`, TOKEN, "<t>"), "<t><t>");
});

Deno.test("Redactor.add() ignores values under 8 characters", () => {
  assert.equal(scrub("a wrong password", "wrong", "<s>"), "a wrong password");
});

Deno.test("redactorOf() labels every secret <redacted>", () => {
  assert.equal(
    redactorOf(["s3cret-value", "another-one"]).redact("x s3cret-value another-one"),
    `x ${REDACTED} ${REDACTED}`,
  );
});
