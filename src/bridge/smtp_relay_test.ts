import assert from "node:assert/strict";
import { client } from "../../test/bed/bridge_fronts.ts";
import { SMTP_EHLO } from "./smtp_front.ts";
import { SMTP_UPSTREAM_LOST, smtpRelay, type SmtpUpstream } from "./smtp_relay.ts";

const MAILBOX = "box@contoso.com";

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
  assert.deepEqual(result, { end: "quit", messages: 1, refusedSenders: 0, sentAs: [] });
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
  assert.deepEqual(result, { end: "quit", messages: 0, refusedSenders: 2, sentAs: [] });
  assert.deepEqual(u.sent, ["QUIT"]);
  assert.deepEqual(c.got, [
    `550 5.7.1 This account may send only as <${MAILBOX}>`,
    `550 5.7.1 The null sender <> is not relayed; this account sends as <${MAILBOX}>`,
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

Deno.test("smtpRelay() relays MAIL FROM an allowed sender (ignoring case) and passes the server's refusal on", async () => {
  const allowedSenders = ["noreply@contoso.com", "helpdesk@contoso.com"];
  const c = client([
    "MAIL FROM:<NoReply@Contoso.com>",
    "RCPT TO:<a@example.org>",
    "DATA",
    "Subject: one",
    ".",
    "MAIL FROM:<helpdesk@contoso.com>",
    "RCPT TO:<a@example.org>",
    "DATA",
    "Subject: two",
    ".",
    "MAIL FROM:<boss@contoso.com>",
    "MAIL FROM:<*@contoso.com>",
    "MAIL FROM:<>",
    "QUIT",
  ]);
  const u = upstream([
    ["250 2.1.0 Sender OK"],
    ["250 2.1.5 Recipient OK"],
    ["354 Start mail input"],
    ["250 2.0.0 OK queued"],
    ["250 2.1.0 Sender OK"],
    ["250 2.1.5 Recipient OK"],
    ["354 Start mail input"],
    ["554 5.2.252 SendAsDenied; box@contoso.com not allowed to send as helpdesk@contoso.com"],
    ["221 2.0.0 Bye"],
  ]);
  const result = await smtpRelay(c, u, MAILBOX, { allowedSenders });
  assert.deepEqual(result, {
    end: "quit",
    messages: 1,
    refusedSenders: 3,
    sentAs: ["noreply@contoso.com"],
  }, "only messages the server accepted count, under the configured spelling");
  assert.deepEqual(u.sent, [
    "MAIL FROM:<NoReply@Contoso.com>",
    "RCPT TO:<a@example.org>",
    "DATA",
    "Subject: one",
    ".",
    "MAIL FROM:<helpdesk@contoso.com>",
    "RCPT TO:<a@example.org>",
    "DATA",
    "Subject: two",
    ".",
    "QUIT",
  ]);
  const refused = `550 5.7.1 This account may send only as <${MAILBOX}> or its 2 allowed sender(s)`;
  assert.deepEqual(c.got.slice(7), [
    "554 5.2.252 SendAsDenied; box@contoso.com not allowed to send as helpdesk@contoso.com",
    refused,
    refused,
    `550 5.7.1 The null sender <> is not relayed; this account sends as <${MAILBOX}> or its 2 allowed sender(s)`,
    "221 2.0.0 Bye",
  ]);
});

Deno.test("smtpRelay() counts a message as sent from the mailbox after MAIL FROM the mailbox replaced an allowed sender", async () => {
  const c = client([
    "MAIL FROM:<noreply@contoso.com>",
    "RSET",
    `MAIL FROM:<${MAILBOX}>`,
    "RCPT TO:<a@example.org>",
    "DATA",
    ".",
  ]);
  const u = upstream([
    ["250 2.1.0 Sender OK"],
    ["250 2.0.0 Resetting"],
    ["250 2.1.0 Sender OK"],
    ["250 2.1.5 Recipient OK"],
    ["354 Start mail input"],
    ["250 2.0.0 OK queued"],
  ]);
  const result = await smtpRelay(c, u, MAILBOX, { allowedSenders: ["noreply@contoso.com"] });
  assert.deepEqual(result, { end: "client closed", messages: 1, refusedSenders: 0, sentAs: [] });
});

Deno.test("smtpRelay() answers 500 5.5.2 to a command with leading white space, a tab, a bare CR, a NUL or another control character, and sends none of them", async () => {
  const hostile = [
    "MAIL\tFROM:<ceo@contoso.com>",
    " MAIL FROM:<ceo@contoso.com>",
    "\tMAIL FROM:<ceo@contoso.com>",
    "MAILFROM:<ceo@contoso.com>",
    "BDAT\t10 LAST",
    `RCPT TO:<a@example.org>\rMAIL FROM:<ceo@contoso.com>`,
    `MAIL FROM:<${MAILBOX}>\rRCPT TO:<a@example.org>`,
    `MAIL FROM:<${MAILBOX}>\0`,
    "RCPT TO:<a@example.org>\x0b",
    "NOOP\x7f",
    "",
    " ",
  ];
  const c = client([...hostile, "QUIT"]);
  const u = upstream([["221 2.0.0 Bye"]]);
  const result = await smtpRelay(c, u, MAILBOX);
  assert.deepEqual(result, { end: "quit", messages: 0, refusedSenders: 0, sentAs: [] });
  assert.deepEqual(u.sent, ["QUIT"]);
  assert.deepEqual(c.got, [...hostile.map(() => "500 5.5.2 Syntax error"), "221 2.0.0 Bye"]);
});

Deno.test("smtpRelay() checks the front's pending MAIL FROM as strictly as any other line", async () => {
  const c = client([]);
  const u = upstream([]);
  const result = await smtpRelay(c, u, MAILBOX, { pending: `MAIL FROM:<${MAILBOX}>\rDATA` });
  assert.equal(result.end, "client closed");
  assert.deepEqual(u.sent, ["QUIT"]);
  assert.deepEqual(c.got, ["500 5.5.2 Syntax error"]);
});

Deno.test("smtpRelay() sends only RCPT, DATA, RSET, NOOP, QUIT, VRFY, HELP (and a checked MAIL) upstream; 502 5.5.1 for anything else", async () => {
  const c = client([
    "ETRN contoso.com",
    "EXPN staff",
    "AUTH XOAUTH2 dXNlcj1", // a second AUTH: answered by the bridge as before
    "XCLIENT ADDR=10.0.0.1",
    "TURN",
    "rcpt TO:<a@example.org>",
    "vrfy box",
    "HELP",
    "NOOP",
    "RSET",
    "QUIT",
  ]);
  const u = upstream([
    ["250 2.1.5 Recipient OK"],
    ["252 2.1.5 Cannot VRFY"],
    ["214 2.0.0 Help"],
    ["250 2.0.0 OK"],
    ["250 2.0.0 Resetting"],
    ["221 2.0.0 Bye"],
  ]);
  const result = await smtpRelay(c, u, MAILBOX);
  assert.equal(result.end, "quit");
  assert.deepEqual(u.sent, [
    "rcpt TO:<a@example.org>",
    "vrfy box",
    "HELP",
    "NOOP",
    "RSET",
    "QUIT",
  ]);
  assert.deepEqual(c.got, [
    "502 5.5.1 Command not relayed",
    "502 5.5.1 Command not relayed",
    "503 5.5.1 Already authenticated",
    "502 5.5.1 Command not relayed",
    "502 5.5.1 Command not relayed",
    "250 2.1.5 Recipient OK",
    "252 2.1.5 Cannot VRFY",
    "214 2.0.0 Help",
    "250 2.0.0 OK",
    "250 2.0.0 Resetting",
    "221 2.0.0 Bye",
  ]);
});

Deno.test("smtpRelay() refuses a message with a bare CR in a line: 554 5.6.0, nothing from that line on (not the final dot) is sent, the session ends", async () => {
  const c = client([
    `MAIL FROM:<${MAILBOX}>`,
    "RCPT TO:<a@example.org>",
    "DATA",
    "Subject: hi",
    "",
    "text\r.\rMAIL FROM:<ceo@contoso.com>",
    "RCPT TO:<b@example.org>",
    ".",
    "RCPT TO:<c@example.org>",
  ]);
  const u = upstream([
    ["250 2.1.0 Sender OK"],
    ["250 2.1.5 Recipient OK"],
    ["354 Start mail input"],
  ]);
  const result = await smtpRelay(c, u, MAILBOX);
  assert.deepEqual(result, { end: "message refused", messages: 0, refusedSenders: 0, sentAs: [] });
  assert.deepEqual(u.sent, [
    `MAIL FROM:<${MAILBOX}>`,
    "RCPT TO:<a@example.org>",
    "DATA",
    "Subject: hi",
    "",
  ]);
  assert.equal(
    c.got.at(-1),
    "554 5.6.0 Message refused: a line has a bare CR; it was not sent. Closing the connection.",
  );
  assert.equal(c.got.length, 4);
});
