import assert from "node:assert/strict";
import { ACCOUNT, client, options, plain, tlsOptions } from "../../test/bed/bridge_fronts.ts";
import {
  IMAP_CAPABILITIES,
  IMAP_CAPABILITIES_BEFORE_TLS,
  IMAP_GREETING,
  IMAP_LITERAL_LOST,
  IMAP_LOGIN_FAILED,
  IMAP_TLS_REQUIRED,
  IMAP_UPSTREAM_FAILED,
  imapFront,
  imapGreeting,
} from "./imap_front.ts";

Deno.test("IMAP_GREETING is honest: IMAP4rev1, AUTH=PLAIN, no STARTTLS, no LOGINDISABLED", () => {
  assert.match(IMAP_GREETING, /^\* OK \[CAPABILITY IMAP4rev1 .*AUTH=PLAIN.*\] /);
  assert.doesNotMatch(IMAP_CAPABILITIES, /STARTTLS|LOGINDISABLED|XOAUTH2/);
});

Deno.test("imapFront() answers CAPABILITY itself and relays after LOGIN with quoted strings", async () => {
  const events: string[] = [];
  const c = client(["a1 CAPABILITY", 'a2 LOGIN scanner "pass word"', "a3 LIST"]);
  const outcome = await imapFront(c, options(events));
  assert.deepEqual(outcome, { kind: "relay", account: ACCOUNT, upstream: "conn" });
  assert.deepEqual(c.got, [
    `* CAPABILITY ${IMAP_CAPABILITIES}`,
    "a1 OK CAPABILITY completed.",
    "a2 OK Logged in.",
  ]);
  assert.deepEqual(events, ["check scanner", "upstream box@contoso.com"]);
});

Deno.test("imapFront() reads LOGIN literals, asking with + only for synchronizing ones", async () => {
  const c = client(["x LOGIN {7}", "scanner {9+}", "pass word"]);
  const outcome = await imapFront(c, options([]));
  assert.equal(outcome.kind, "relay");
  assert.deepEqual(c.got, ["+ Ready for the literal.", "x OK Logged in."]);
});

Deno.test("imapFront() takes AUTHENTICATE PLAIN with an initial response and after a continuation", async () => {
  const ir = client([`t1 AUTHENTICATE PLAIN ${plain("", "scanner", "pass word")}`]);
  assert.equal((await imapFront(ir, options([]))).kind, "relay");
  assert.deepEqual(ir.got, ["t1 OK Logged in."]);

  const two = client(["t1 authenticate plain", plain("scanner", "scanner", "pass word")]);
  assert.equal((await imapFront(two, options([]))).kind, "relay");
  assert.deepEqual(two.got, ["+ ", "t1 OK Logged in."]);
});

Deno.test("imapFront() checks a wrong password locally: NO [AUTHENTICATIONFAILED], no upstream login", async () => {
  const events: string[] = [];
  const c = client(["a1 LOGIN scanner wrong", "a2 LOGOUT"]);
  const outcome = await imapFront(c, options(events));
  assert.deepEqual(outcome, { kind: "quit", failures: 1 });
  assert.deepEqual(events, ["check scanner"]);
  assert.deepEqual(c.got, [
    `a1 ${IMAP_LOGIN_FAILED}`,
    "* BYE Logging out.",
    "a2 OK LOGOUT completed.",
  ]);
  assert.ok(!c.got.join("\n").includes("wrong"), "the password is never repeated");
});

Deno.test("imapFront() refuses PLAIN for another authorization identity even with the right password", async () => {
  const events: string[] = [];
  const c = client([`a1 AUTHENTICATE PLAIN ${plain("boss", "scanner", "pass word")}`]);
  const outcome = await imapFront(c, options(events));
  assert.deepEqual(outcome, { kind: "gone", failures: 1 });
  assert.deepEqual(c.got, [`a1 ${IMAP_LOGIN_FAILED}`]);
  assert.ok(!events.some((e) => e.startsWith("upstream")));
});

Deno.test("imapFront() answers an unknown user exactly like a wrong password", async () => {
  const [a, b] = [client(["a LOGIN nobody x"]), client(["a LOGIN scanner x"])];
  await imapFront(a, options([]));
  await imapFront(b, options([]));
  assert.deepEqual(a.got, b.got);
});

Deno.test("imapFront() closes the session after three failed logins", async () => {
  const c = client(["a LOGIN a 1", "b LOGIN a 2", "c LOGIN a 3", "d LOGIN scanner x"]);
  const outcome = await imapFront(c, options([]));
  assert.deepEqual(outcome, { kind: "refused", failures: 3 });
  assert.match(c.got.at(-2) ?? "", /^c NO \[AUTHENTICATIONFAILED\] .*too many/);
  assert.equal(c.got.at(-1), "* BYE Too many failed logins.");
});

Deno.test("imapFront() reports an upstream failure as NO [UNAVAILABLE] and closes", async () => {
  const c = client(['a1 LOGIN scanner "pass word"', "a2 NOOP"]);
  const outcome = await imapFront(c, options([], "down"));
  assert.deepEqual(outcome, { kind: "upstream-failed", account: ACCOUNT, reason: "TIMEOUT" });
  assert.deepEqual(c.got, [`a1 ${IMAP_UPSTREAM_FAILED}`, "* BYE Closing the session."]);
});

Deno.test("imapFront() refuses commands before login, bad syntax, other mechanisms and cancels", async () => {
  const events: string[] = [];
  const c = client([
    "a1 SELECT INBOX",
    "a2 STARTTLS",
    "a3 AUTHENTICATE XOAUTH2 abc",
    "a4 AUTHENTICATE PLAIN",
    "*",
    "a5 AUTHENTICATE PLAIN not-base64!",
    'a6 LOGIN scanner "unterminated',
    "a7 LOGIN scanner",
    "a8 LOGIN scanner {5000}",
    "NOTAG",
    "a9 NOOP",
  ]);
  const outcome = await imapFront(c, options(events));
  assert.deepEqual(outcome, { kind: "gone", failures: 0 });
  assert.deepEqual(c.got, [
    "a1 BAD Log in first (LOGIN or AUTHENTICATE PLAIN).",
    "a2 NO STARTTLS is not available on this loopback listener.",
    "a3 NO Unsupported authentication mechanism; use PLAIN or LOGIN.",
    "+ ",
    "a4 BAD Authentication cancelled.",
    "a5 BAD Invalid arguments.",
    "a6 BAD Invalid arguments.",
    "a7 BAD Invalid arguments.",
    "a8 BAD Invalid arguments.",
    "* BAD Malformed command.",
    "a9 OK NOOP completed.",
  ]);
  assert.deepEqual(events, [], "nothing checked, nothing upstream");
});

Deno.test("imapFront() on a STARTTLS listener: LOGINDISABLED, logins refused until STARTTLS", async () => {
  const events: string[] = [];
  const c = client([
    "a CAPABILITY",
    "b LOGIN scanner {9}",
    `c AUTHENTICATE PLAIN ${plain("", "scanner", "pass word")}`,
    "d AUTHENTICATE PLAIN",
    "e STARTTLS",
    "f CAPABILITY",
    "g STARTTLS",
    'h LOGIN scanner "pass word"',
  ]);
  const outcome = await imapFront(c, tlsOptions(events));
  assert.deepEqual(outcome, { kind: "relay", account: ACCOUNT, upstream: "conn" });
  assert.deepEqual(c.got, [
    `* CAPABILITY ${IMAP_CAPABILITIES_BEFORE_TLS}`,
    "a OK CAPABILITY completed.",
    `b ${IMAP_TLS_REQUIRED}`, // no "+" for the literal
    `c ${IMAP_TLS_REQUIRED}`,
    `d ${IMAP_TLS_REQUIRED}`, // no "+" for the response
    "e OK Begin TLS negotiation now.",
    `* CAPABILITY ${IMAP_CAPABILITIES}`,
    "f OK CAPABILITY completed.",
    "g BAD TLS is already active.",
    "h OK Logged in.",
  ]);
  assert.deepEqual(events, ["tls", "check scanner", "upstream box@contoso.com"]);
  assert.match(imapGreeting(true), /\[CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED\]/);
  assert.equal(imapGreeting(false), IMAP_GREETING);
});

Deno.test("imapFront() ends the session when the STARTTLS handshake fails", async () => {
  const c = client(["a STARTTLS", "b LOGIN scanner x"]);
  const outcome = await imapFront(c, { ...options([]), startTls: () => Promise.resolve(false) });
  assert.deepEqual(outcome, { kind: "gone", failures: 0 });
  assert.deepEqual(c.got, ["a OK Begin TLS negotiation now."]);
});

Deno.test("imapFront() ends the session on a literal with a line end inside, and runs nothing from it", async () => {
  // Were the rest of the literal read as a command, this LOGIN would succeed.
  const inside = `first\r\nb2 LOGIN scanner "pass word"`;
  for (
    const lines of [
      [`b1 LOGIN scanner {${inside.length}}`, "first", 'b2 LOGIN scanner "pass word"'],
      [`b1 LOGIN {${inside.length}+}`, "first", 'b2 LOGIN scanner "pass word"'],
      // LITERAL+ too big to take: its bytes are on their way all the same.
      ["b1 LOGIN scanner {5000+}", 'b2 LOGIN scanner "pass word"'],
    ]
  ) {
    const events: string[] = [];
    const c = client(lines);
    const outcome = await imapFront(c, options(events));
    assert.deepEqual(outcome, {
      kind: "protocol error",
      failures: 0,
      reason: "a literal was not sent whole",
    });
    assert.deepEqual(c.got.filter((l) => !l.startsWith("+ ")), [
      `b1 ${IMAP_LITERAL_LOST}`,
      "* BYE Closing the session.",
    ]);
    assert.deepEqual(events, [], "no login checked");
  }
});
