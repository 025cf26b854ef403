import assert from "node:assert/strict";
import { ACCOUNT, client, options, plain, tlsOptions } from "../../test/bed/bridge_fronts.ts";
import type { AccountConfig } from "./config.ts";
import {
  senderRefusal,
  SMTP_AUTH_REQUIRED,
  SMTP_EHLO,
  SMTP_EHLO_BEFORE_TLS,
  SMTP_LOGIN_FAILED,
  SMTP_TLS_REQUIRED,
  SMTP_UPSTREAM_FAILED,
  smtpFront,
} from "./smtp_front.ts";

Deno.test("SMTP_EHLO offers AUTH PLAIN LOGIN and nothing it does not do (no STARTTLS, PIPELINING)", () => {
  assert.ok(SMTP_EHLO.includes("250-AUTH PLAIN LOGIN"));
  assert.doesNotMatch(SMTP_EHLO.join("\n"), /STARTTLS|PIPELINING|CHUNKING|XOAUTH2/);
});

Deno.test("smtpFront() answers EHLO itself and relays after AUTH PLAIN with an initial response", async () => {
  const events: string[] = [];
  const c = client(["EHLO printer", `AUTH PLAIN ${plain("", "scanner", "pass word")}`]);
  const outcome = await smtpFront(c, options(events));
  assert.deepEqual(outcome, { kind: "relay", account: ACCOUNT, upstream: "conn" });
  assert.deepEqual(c.got, [...SMTP_EHLO, "235 2.7.0 Authentication successful"]);
  assert.deepEqual(events, ["check scanner", "upstream box@contoso.com"]);
});

Deno.test("smtpFront() takes AUTH PLAIN after 334 and AUTH LOGIN in both forms", async () => {
  const two = client(["AUTH PLAIN", plain("scanner", "scanner", "pass word")]);
  assert.equal((await smtpFront(two, options([]))).kind, "relay");
  assert.deepEqual(two.got, ["334 ", "235 2.7.0 Authentication successful"]);

  const login = client(["auth login", btoa("scanner"), btoa("pass word")]);
  assert.equal((await smtpFront(login, options([]))).kind, "relay");
  assert.deepEqual(login.got, [
    `334 ${btoa("Username:")}`,
    `334 ${btoa("Password:")}`,
    "235 2.7.0 Authentication successful",
  ]);

  const ir = client([`AUTH LOGIN ${btoa("scanner")}`, btoa("pass word")]);
  assert.equal((await smtpFront(ir, options([]))).kind, "relay");
});

Deno.test("smtpFront() checks a wrong password locally: 535 5.7.8, no upstream login", async () => {
  const events: string[] = [];
  const c = client([`AUTH PLAIN ${plain("", "scanner", "wrong")}`, "QUIT"]);
  const outcome = await smtpFront(c, options(events));
  assert.deepEqual(outcome, { kind: "quit", failures: 1 });
  assert.deepEqual(events, ["check scanner"]);
  assert.deepEqual(c.got, [SMTP_LOGIN_FAILED, "221 2.0.0 Bye"]);
});

Deno.test("smtpFront() refuses PLAIN acting for another user, and an unknown user, like a wrong password", async () => {
  const events: string[] = [];
  const other = client([`AUTH PLAIN ${plain("boss", "scanner", "pass word")}`]);
  await smtpFront(other, options(events));
  const unknown = client([`AUTH PLAIN ${plain("", "nobody", "pass word")}`]);
  await smtpFront(unknown, options(events));
  assert.deepEqual(other.got, [SMTP_LOGIN_FAILED]);
  assert.deepEqual(unknown.got, other.got);
  assert.ok(!events.some((e) => e.startsWith("upstream")));
});

Deno.test("smtpFront() closes the session after three failed logins with 421", async () => {
  const bad = `AUTH PLAIN ${plain("", "a", "b")}`;
  const c = client([bad, bad, bad, "EHLO x"]);
  const outcome = await smtpFront(c, options([]));
  assert.deepEqual(outcome, { kind: "refused", failures: 3 });
  assert.match(c.got.at(-1) ?? "", /^421 4\.7\.0 /);
});

Deno.test("smtpFront() reports an upstream failure as 454 4.7.0", async () => {
  const c = client([`AUTH PLAIN ${plain("", "scanner", "pass word")}`]);
  const outcome = await smtpFront(c, options([], "down"));
  assert.deepEqual(outcome, { kind: "upstream-failed", account: ACCOUNT, reason: "TIMEOUT" });
  assert.deepEqual(c.got, [SMTP_UPSTREAM_FAILED]);
});

Deno.test("smtpFront() relays nothing for a client that has not logged in", async () => {
  const events: string[] = [];
  const c = client([
    "MAIL FROM:<box@contoso.com>",
    "RCPT TO:<someone@example.org>",
    "DATA",
    "STARTTLS",
    "AUTH XOAUTH2 abc",
    "AUTH PLAIN",
    "*",
    "AUTH PLAIN !!!",
    "HELO x",
    "NOOP",
  ]);
  const outcome = await smtpFront(c, options(events));
  assert.deepEqual(outcome, { kind: "gone", failures: 0 });
  assert.deepEqual(c.got, [
    SMTP_AUTH_REQUIRED,
    SMTP_AUTH_REQUIRED,
    SMTP_AUTH_REQUIRED,
    "502 5.5.1 STARTTLS is not available on this loopback listener.",
    "504 5.5.4 Unrecognized authentication type; use PLAIN or LOGIN",
    "334 ",
    "501 5.0.0 Authentication cancelled",
    "501 5.5.2 Cannot decode the response",
    "250 localhost",
    "250 2.0.0 OK",
  ]);
  assert.deepEqual(events, []);
});

Deno.test("smtpFront() on a STARTTLS listener offers AUTH only after STARTTLS", async () => {
  const events: string[] = [];
  const c = client([
    "EHLO printer",
    `AUTH PLAIN ${plain("", "scanner", "pass word")}`,
    "MAIL FROM:<box@contoso.com>",
    "STARTTLS",
    "EHLO printer",
    "STARTTLS",
    `AUTH PLAIN ${plain("", "scanner", "pass word")}`,
  ]);
  const outcome = await smtpFront(c, tlsOptions(events));
  assert.deepEqual(outcome, { kind: "relay", account: ACCOUNT, upstream: "conn" });
  assert.deepEqual(c.got, [
    ...SMTP_EHLO_BEFORE_TLS,
    SMTP_TLS_REQUIRED,
    SMTP_TLS_REQUIRED,
    "220 2.0.0 Ready to start TLS",
    ...SMTP_EHLO,
    "503 5.5.1 TLS is already active",
    "235 2.7.0 Authentication successful",
  ]);
  assert.equal(SMTP_TLS_REQUIRED, "530 5.7.0 Must issue a STARTTLS command first");
  assert.deepEqual(events, ["tls", "check scanner", "upstream box@contoso.com"]);
});

Deno.test("smtpFront() lets an allow-listed client send as its account without AUTH", async () => {
  const events: string[] = [];
  const c = client([
    "EHLO scanner",
    "MAIL FROM:<boss@contoso.com>",
    "MAIL FROM:box",
    "MAIL FROM:<BOX@contoso.com> SIZE=100",
  ]);
  const outcome = await smtpFront(c, { ...options(events), withoutAuth: ACCOUNT });
  assert.deepEqual(outcome, {
    kind: "relay",
    account: ACCOUNT,
    upstream: "conn",
    pending: "MAIL FROM:<BOX@contoso.com> SIZE=100",
  });
  assert.deepEqual(c.got, [
    ...SMTP_EHLO,
    "550 5.7.1 This account may send only as <box@contoso.com>",
    "501 5.5.4 Syntax: MAIL FROM:<address>",
  ]);
  assert.deepEqual(events, ["upstream box@contoso.com"], "upstream only for its own mailbox");

  const down = client(["MAIL FROM:<box@contoso.com>"]);
  const failed = await smtpFront(down, { ...options([], "down"), withoutAuth: ACCOUNT });
  assert.deepEqual(failed, { kind: "upstream-failed", account: ACCOUNT, reason: "TIMEOUT" });
  assert.deepEqual(down.got, [SMTP_UPSTREAM_FAILED]);
});

Deno.test("smtpFront() without the allow-list: MAIL FROM gets 530, no upstream connection", async () => {
  const events: string[] = [];
  const c = client(["MAIL FROM:<box@contoso.com>", "RCPT TO:<a@b.c>"]);
  await smtpFront(c, options(events));
  assert.deepEqual(c.got, [SMTP_AUTH_REQUIRED, SMTP_AUTH_REQUIRED]);
  assert.deepEqual(events, []);
  // On a STARTTLS listener an allow-listed device must start TLS first, too.
  const before = client(["MAIL FROM:<box@contoso.com>"]);
  await smtpFront(before, {
    ...options(events),
    withoutAuth: ACCOUNT,
    startTls: () => Promise.resolve(true),
  });
  assert.deepEqual(before.got, [SMTP_TLS_REQUIRED]);
  assert.deepEqual(events, []);
});

Deno.test("senderRefusal() allows the mailbox and the allowed senders ignoring case, never <> or a pattern", () => {
  const senders = { mailbox: "box@contoso.com", allowedSenders: ["noreply@contoso.com"] };
  for (
    const from of [
      "box@contoso.com",
      "BOX@Contoso.COM",
      "noreply@contoso.com",
      "NoReply@contoso.com",
    ]
  ) {
    assert.equal(senderRefusal(senders, from), undefined, from);
  }
  for (const from of ["boss@contoso.com", "*@contoso.com", "noreply@contoso.com.evil", "noreply"]) {
    assert.equal(
      senderRefusal(senders, from),
      "550 5.7.1 This account may send only as <box@contoso.com> or its 1 allowed sender(s)",
      from,
    );
  }
  assert.match(senderRefusal(senders, "") ?? "", /^550 5\.7\.1 The null sender <> is not relayed/);
  assert.equal(
    senderRefusal({ mailbox: "box@contoso.com" }, "noreply@contoso.com"),
    "550 5.7.1 This account may send only as <box@contoso.com>",
  );
});

Deno.test("smtpFront() lets an allow-listed client send as an allowed sender, logging in upstream as the mailbox", async () => {
  const events: string[] = [];
  const account: AccountConfig = { ...ACCOUNT, allowedSenders: ["noreply@contoso.com"] };
  const c = client([
    "EHLO scanner",
    "MAIL FROM:<>",
    "MAIL FROM:<other@contoso.com>",
    "MAIL FROM:<NOREPLY@contoso.com>",
  ]);
  const outcome = await smtpFront(c, { ...options(events), withoutAuth: account });
  assert.deepEqual(outcome, {
    kind: "relay",
    account,
    upstream: "conn",
    pending: "MAIL FROM:<NOREPLY@contoso.com>",
  });
  assert.deepEqual(c.got, [
    ...SMTP_EHLO,
    "550 5.7.1 The null sender <> is not relayed; this account sends as <box@contoso.com> or its 1 allowed sender(s)",
    "550 5.7.1 This account may send only as <box@contoso.com> or its 1 allowed sender(s)",
  ]);
  assert.deepEqual(events, ["upstream box@contoso.com"], "one upstream login, as the mailbox");
});
