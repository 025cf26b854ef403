import assert from "node:assert/strict";
import { ACCOUNT, client, options, tlsOptions } from "../../test/bed/bridge_fronts.ts";
import {
  POP3_CAPA,
  POP3_CAPA_BEFORE_TLS,
  POP3_LOGIN_FAILED,
  POP3_TLS_REQUIRED,
  POP3_UPSTREAM_FAILED,
  pop3Front,
} from "./pop3_front.ts";

Deno.test("pop3Front() answers CAPA itself and relays after USER/PASS (password with spaces)", async () => {
  const events: string[] = [];
  const c = client(["CAPA", "USER scanner", "PASS pass word", "STAT"]);
  const outcome = await pop3Front(c, options(events));
  assert.deepEqual(outcome, { kind: "relay", account: ACCOUNT, upstream: "conn" });
  assert.deepEqual(c.got, [...POP3_CAPA, "+OK Send the password (PASS).", "+OK Logged in."]);
  assert.deepEqual(events, ["check scanner", "upstream box@contoso.com"]);
});

Deno.test("pop3Front() checks a wrong password locally: -ERR, no upstream login", async () => {
  const events: string[] = [];
  const c = client(["USER scanner", "PASS wrong", "QUIT"]);
  const outcome = await pop3Front(c, options(events));
  assert.deepEqual(outcome, { kind: "quit", failures: 1 });
  assert.deepEqual(events, ["check scanner"]);
  assert.ok(c.got.includes(POP3_LOGIN_FAILED));
  assert.ok(!c.got.join("\n").includes("wrong"), "the password is never repeated");
});

Deno.test("pop3Front() answers an unknown user exactly like a wrong password", async () => {
  const [a, b] = [client(["USER nobody", "PASS x"]), client(["USER scanner", "PASS x"])];
  await pop3Front(a, options([]));
  await pop3Front(b, options([]));
  assert.deepEqual(a.got, b.got);
});

Deno.test("pop3Front() closes the session after three failed logins", async () => {
  const c = client(["USER a", "PASS 1", "USER a", "PASS 2", "USER a", "PASS 3", "USER scanner"]);
  const outcome = await pop3Front(c, options([]));
  assert.deepEqual(outcome, { kind: "refused", failures: 3 });
  assert.match(c.got.at(-1) ?? "", /^-ERR \[AUTH\] .*too many/);
});

Deno.test("pop3Front() reports an upstream failure as -ERR [SYS/TEMP]", async () => {
  const c = client(["USER scanner", "PASS pass word"]);
  const outcome = await pop3Front(c, options([], "down"));
  assert.deepEqual(outcome, { kind: "upstream-failed", account: ACCOUNT, reason: "TIMEOUT" });
  assert.equal(c.got.at(-1), POP3_UPSTREAM_FAILED);
  assert.match(POP3_UPSTREAM_FAILED, /^-ERR \[SYS\/TEMP\] /);
});

Deno.test("pop3Front() refuses commands before login and PASS before USER", async () => {
  const events: string[] = [];
  const c = client(["STAT", "PASS x", "AUTH PLAIN", "STLS", "RETR 1"]);
  const outcome = await pop3Front(c, options(events));
  assert.deepEqual(outcome, { kind: "gone", failures: 0 });
  assert.equal(c.got.length, 5);
  for (const line of c.got) assert.match(line, /^-ERR /);
  assert.deepEqual(events, [], "nothing checked, nothing upstream");
});

Deno.test("pop3Front() on a STARTTLS listener refuses USER/PASS until STLS, then starts over", async () => {
  const events: string[] = [];
  const c = client(["CAPA", "USER scanner", "PASS pass word", "STLS", "CAPA", "STLS", "PASS x"]);
  c.got.length = 0;
  const outcome = await pop3Front(c, tlsOptions(events));
  assert.deepEqual(outcome, { kind: "gone", failures: 0 });
  assert.deepEqual(c.got, [
    ...POP3_CAPA_BEFORE_TLS,
    POP3_TLS_REQUIRED,
    POP3_TLS_REQUIRED,
    "+OK Begin TLS negotiation.",
    ...POP3_CAPA,
    "-ERR TLS is already active.",
    "-ERR Send USER first.",
  ]);
  assert.deepEqual(events, ["tls"], "no password check before TLS");
});

Deno.test("pop3Front() ends the session when the STLS handshake fails, and refuses STLS elsewhere", async () => {
  const failed = client(["STLS", "USER scanner"]);
  const outcome = await pop3Front(failed, {
    ...options([]),
    startTls: () => Promise.resolve(false),
  });
  assert.deepEqual(outcome, { kind: "gone", failures: 0 });
  assert.deepEqual(failed.got, ["+OK Begin TLS negotiation."]);
  const implicit = client(["STLS", "CAPA"]);
  await pop3Front(implicit, { ...options([]), secure: true });
  assert.deepEqual(implicit.got, ["-ERR TLS is already active.", ...POP3_CAPA]);
});
