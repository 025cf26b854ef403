import assert from "node:assert/strict";
import type { FrontLines } from "./front.ts";
import { SMTP_EHLO } from "./smtp_front.ts";
import { SMTP_UPSTREAM_LOST, smtpRelay, type SmtpUpstream } from "./smtp_relay.ts";

const MAILBOX = "box@contoso.com";

function client(input: string[]): FrontLines & { got: string[] } {
  const queue = [...input];
  const got: string[] = [];
  return {
    got,
    readLine: () => Promise.resolve(queue.length > 0 ? queue.shift() ?? null : null),
    write: (...lines) => {
      got.push(...lines);
      return Promise.resolve(true);
    },
  };
}

/** An upstream that records what it got and answers each command from `replies` in order. */
function upstream(replies: string[][]): SmtpUpstream & { sent: string[] } {
  const sent: string[] = [];
  return {
    sent,
    send: (line) => {
      sent.push(line);
      return Promise.resolve();
    },
    reply: () => {
      const next = replies.shift();
      return next ? Promise.resolve(next) : Promise.reject(new Error("server gone"));
    },
  };
}

Deno.test("smtpRelay() relays a transaction from the mapped mailbox, the message line by line", async () => {
  const c = client([
    "MAIL FROM:<Box@Contoso.com> SIZE=100",
    "RCPT TO:<someone@example.org>",
    "DATA",
    "Subject: hi",
    "",
    "..dot-stuffed",
    ".",
    "QUIT",
  ]);
  const u = upstream([
    ["250 2.1.0 Sender OK"],
    ["250 2.1.5 Recipient OK"],
    ["354 Start mail input"],
    ["250 2.0.0 OK queued"],
    ["221 2.0.0 Bye"],
  ]);
  const result = await smtpRelay(c, u, MAILBOX);
  assert.deepEqual(result, { end: "quit", messages: 1, refusedSenders: 0 });
  assert.deepEqual(u.sent, [
    "MAIL FROM:<Box@Contoso.com> SIZE=100",
    "RCPT TO:<someone@example.org>",
    "DATA",
    "Subject: hi",
    "",
    "..dot-stuffed",
    ".",
    "QUIT",
  ]);
  assert.deepEqual(c.got, [
    "250 2.1.0 Sender OK",
    "250 2.1.5 Recipient OK",
    "354 Start mail input",
    "250 2.0.0 OK queued",
    "221 2.0.0 Bye",
  ]);
});

Deno.test("smtpRelay() refuses MAIL FROM another address with 550 5.7.1 and never sends it upstream", async () => {
  const c = client(["MAIL FROM:<boss@contoso.com>", "MAIL FROM:<>", "MAIL FROM boss", "QUIT"]);
  const u = upstream([["221 2.0.0 Bye"]]);
  const result = await smtpRelay(c, u, MAILBOX);
  assert.deepEqual(result, { end: "quit", messages: 0, refusedSenders: 2 });
  assert.deepEqual(u.sent, ["QUIT"]);
  assert.deepEqual(c.got, [
    `550 5.7.1 This account may send only as <${MAILBOX}>`,
    `550 5.7.1 This account may send only as <${MAILBOX}>`,
    "501 5.5.4 Syntax: MAIL FROM:<address>",
    "221 2.0.0 Bye",
  ]);
});

Deno.test("smtpRelay() answers EHLO, AUTH, STARTTLS and BDAT itself", async () => {
  const c = client(["EHLO again", "AUTH PLAIN x", "STARTTLS", "BDAT 10 LAST"]);
  const u = upstream([["250 2.0.0 Resetting"]]);
  const result = await smtpRelay(c, u, MAILBOX);
  assert.equal(result.end, "client closed");
  assert.deepEqual(u.sent, ["RSET", "QUIT"]);
  assert.deepEqual(c.got, [
    ...SMTP_EHLO,
    "503 5.5.1 Already authenticated",
    "502 5.5.1 STARTTLS is not available on this loopback listener.",
    "502 5.5.1 BDAT is not supported here; use DATA",
  ]);
});

Deno.test("smtpRelay() answers 421 when the server is lost", async () => {
  const c = client(["RCPT TO:<a@b.example>", "NOOP"]);
  const result = await smtpRelay(c, upstream([]), MAILBOX);
  assert.equal(result.end, "server error");
  assert.deepEqual(c.got, [SMTP_UPSTREAM_LOST]);
});

Deno.test("smtpRelay() handles the front's pending MAIL FROM first, and knows TLS is up", async () => {
  const c = client(["STARTTLS", "QUIT"]);
  const u = upstream([["250 2.1.0 Sender OK"], ["221 2.0.0 Bye"]]);
  const result = await smtpRelay(c, u, MAILBOX, {
    secure: true,
    pending: `MAIL FROM:<${MAILBOX}>`,
  });
  assert.equal(result.end, "quit");
  assert.deepEqual(u.sent, [`MAIL FROM:<${MAILBOX}>`, "QUIT"]);
  assert.deepEqual(c.got, [
    "250 2.1.0 Sender OK",
    "503 5.5.1 TLS is already active",
    "221 2.0.0 Bye",
  ]);
});
