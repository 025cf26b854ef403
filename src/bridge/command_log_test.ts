import assert from "node:assert/strict";
import type { BridgeProtocol } from "./config.ts";
import { CommandLog, redactCommand, replyStatus } from "./command_log.ts";

const PASSWORD = "Scanner pass 4 the bridge";
const PLAIN = btoa(`\0scanner\0${PASSWORD}`);

/** Runs a session's lines (`C:` client, `S:` server) through a CommandLog; returns the log. */
function session(protocol: BridgeProtocol, steps: string[]): string[] {
  const logged: string[] = [];
  const log = new CommandLog(protocol, (text) => logged.push(text));
  for (const step of steps) {
    if (step.startsWith("C:")) log.read(step.slice(2));
    else log.wrote(step.slice(2).split("\n"));
  }
  return logged;
}

function assertNoSecret(logged: string[], ...secrets: string[]): void {
  const text = logged.join("\n");
  for (const secret of secrets) assert.ok(!text.includes(secret), `${secret} in:\n${text}`);
}

Deno.test("redactCommand() shows POP3's safe commands with their arguments", () => {
  assert.equal(redactCommand("POP3", "USER scanner"), "USER scanner");
  assert.equal(redactCommand("POP3", "capa"), "CAPA");
  assert.equal(redactCommand("POP3", "RETR 1"), "RETR 1");
  assert.equal(redactCommand("POP3", "QUIT"), "QUIT");
});

Deno.test("redactCommand() hides POP3 PASS whole, with spaces and in lower case", () => {
  assert.equal(redactCommand("POP3", `PASS ${PASSWORD}`), "PASS <hidden>");
  assert.equal(redactCommand("POP3", `pass ${PASSWORD}`), "PASS <hidden>");
  assert.equal(
    redactCommand("POP3", "APOP scanner c4c9334bac560ecc979e58001b3e22fb"),
    "APOP <hidden>",
  );
  assert.equal(redactCommand("POP3", `AUTH PLAIN ${PLAIN}`), "AUTH PLAIN <hidden>");
});

Deno.test("redactCommand() hides unknown lines whole, saying only their size", () => {
  assert.equal(redactCommand("POP3", PASSWORD), "<hidden line>");
  assert.equal(redactCommand("SMTP", PLAIN), `<hidden line>`);
  assert.equal(redactCommand("IMAP", "a1 XYZZY secret"), "<hidden line>");
  assert.equal(redactCommand("IMAP", "(bad tag) LOGIN x y"), "<hidden line>");
});

Deno.test("redactCommand() shows IMAP LOGIN's user name only, AUTHENTICATE's mechanism only", () => {
  assert.equal(
    redactCommand("IMAP", `a1 LOGIN scanner "${PASSWORD}"`),
    "a1 LOGIN scanner <hidden>",
  );
  assert.equal(redactCommand("IMAP", `a1 login "scan ner" secret`), 'a1 LOGIN "scan ner" <hidden>');
  assert.equal(redactCommand("IMAP", "a1 LOGIN {7}"), "a1 LOGIN <hidden>");
  assert.equal(redactCommand("IMAP", "a1 LOGIN onlyoneword"), "a1 LOGIN <hidden>");
  assert.equal(
    redactCommand("IMAP", `a2 AUTHENTICATE PLAIN ${PLAIN}`),
    "a2 AUTHENTICATE PLAIN <hidden>",
  );
  assert.equal(redactCommand("IMAP", "a2 authenticate plain"), "a2 AUTHENTICATE PLAIN");
  assert.equal(redactCommand("IMAP", "a3 CAPABILITY"), "a3 CAPABILITY");
  assert.equal(redactCommand("IMAP", "a4 SELECT INBOX"), "a4 SELECT <hidden>");
});

Deno.test("redactCommand() shows SMTP's envelope and AUTH's mechanism only", () => {
  assert.equal(redactCommand("SMTP", "EHLO scanner.local"), "EHLO scanner.local");
  assert.equal(redactCommand("SMTP", "MAIL FROM:<box@contoso.com>"), "MAIL FROM:<box@contoso.com>");
  assert.equal(redactCommand("SMTP", "RCPT TO:<a@b.example>"), "RCPT TO:<a@b.example>");
  assert.equal(redactCommand("SMTP", `AUTH PLAIN ${PLAIN}`), "AUTH PLAIN <hidden>");
  assert.equal(redactCommand("SMTP", `auth login ${btoa("scanner")}`), "AUTH LOGIN <hidden>");
  assert.equal(redactCommand("SMTP", "AUTH LOGIN"), "AUTH LOGIN");
  assert.equal(redactCommand("SMTP", `AUTH ${PLAIN}=`), "AUTH <hidden>");
  assert.equal(redactCommand("SMTP", "VRFY boss"), "VRFY <hidden>");
  // A short base64 answer in the mechanism's place is no mechanism name.
  assert.equal(redactCommand("SMTP", `AUTH ${btoa("pass")}`), "AUTH <hidden>");
  assert.equal(redactCommand("IMAP", "a1 AUTHENTICATE c2VjcmV0"), "a1 AUTHENTICATE <hidden>");
  assert.equal(redactCommand("SMTP", "AUTH xoauth2"), "AUTH XOAUTH2");
});

Deno.test("redactCommand() escapes ESC and CR in shown text", () => {
  assert.equal(redactCommand("POP3", "USER a\x1b[2Jb\rc"), "USER a\\x1b[2Jb\\x0dc");
  assert.equal(
    redactCommand("SMTP", "EHLO \x1b]0;owned\x07"),
    "EHLO \\x1b]0;owned\\x07",
  );
  assert.equal(redactCommand("IMAP", 'a1 LOGIN "x\x1by" pw'), 'a1 LOGIN "x\\x1by" <hidden>');
});

Deno.test("replyStatus() gives the status of an answer, never its text", () => {
  assert.equal(replyStatus("POP3", ["+OK Capability list follows", "USER", "."]), "+OK");
  assert.equal(replyStatus("POP3", ["-ERR [AUTH] Authentication failed."]), "-ERR");
  assert.equal(replyStatus("IMAP", ["* CAPABILITY IMAP4rev1", "a1 OK done"]), "a1 OK");
  assert.equal(replyStatus("IMAP", ["+ Ready for the literal."]), "+");
  assert.equal(replyStatus("SMTP", ["250-localhost", "250 ENHANCEDSTATUSCODES"]), "250");
  assert.equal(replyStatus("SMTP", ["535 5.7.8 Authentication credentials invalid"]), "535 5.7.8");
  assert.equal(replyStatus("SMTP", ["334 VXNlcm5hbWU6"]), "334");
});

Deno.test("CommandLog() hides SMTP AUTH LOGIN's two base64 answers and AUTH PLAIN's continuation", () => {
  const logged = session("SMTP", [
    "S:220 localhost ESMTP",
    "C:EHLO me",
    "S:250-localhost\n250 ENHANCEDSTATUSCODES",
    "C:AUTH LOGIN",
    `S:334 ${btoa("Username:")}`,
    `C:${btoa("scanner")}`,
    `S:334 ${btoa("Password:")}`,
    `C:${btoa(PASSWORD)}`,
    "S:535 5.7.8 Authentication credentials invalid",
    "C:AUTH PLAIN",
    "S:334 ",
    `C:${PLAIN}`,
    "S:235 2.7.0 Authentication successful",
  ]);
  assertNoSecret(logged, btoa(PASSWORD), PLAIN, btoa("scanner"));
  assert.deepEqual(logged, [
    "S: 220",
    "C: EHLO me",
    "S: 250",
    "C: AUTH LOGIN",
    "S: 334",
    "C: <hidden line>",
    "S: 334",
    `C: <hidden line>`,
    "S: 535 5.7.8",
    "C: AUTH PLAIN",
    "S: 334",
    `C: <hidden line>`,
    "S: 235 2.7.0",
  ]);
});

Deno.test("CommandLog() does not give away the length of a hidden line (a password's)", () => {
  const login = (password: string) =>
    session("IMAP", [
      `C:a1 LOGIN scanner {${password.length}}`,
      "S:+ Ready for the literal.",
      `C:${password}`,
      "S:a1 NO [AUTHENTICATIONFAILED] Authentication failed.",
      "C:a2 AUTHENTICATE PLAIN",
      "S:+ ",
      `C:${btoa(`\0scanner\0${password}`)}`,
      "S:a2 NO [AUTHENTICATIONFAILED] Authentication failed.",
      `C:${password}`,
    ]);
  const short = login("pw");
  assert.deepEqual(short, login("a much longer password than that"));
  assert.deepEqual(short.filter((l) => /\d+ bytes/.test(l)), []);
});

Deno.test("CommandLog() hides a base64 answer that looks like a command", () => {
  // "QUIT" and "RSET" are valid base64: after 334 they are answers, not commands.
  const logged = session("SMTP", ["C:AUTH LOGIN", "S:334 x", "C:QUIT", "S:334 y", "C:RSET"]);
  assert.deepEqual(logged, [
    "C: AUTH LOGIN",
    "S: 334",
    "C: <hidden line>",
    "S: 334",
    "C: <hidden line>",
  ]);
});

Deno.test("CommandLog() logs SMTP DATA and the message's size, never its content", () => {
  const logged = session("SMTP", [
    "C:MAIL FROM:<box@contoso.com>",
    "S:250 2.1.0 Sender OK",
    "C:RCPT TO:<a@b.example>",
    "S:250 2.1.5 Recipient OK",
    "C:DATA",
    "S:354 Start mail input",
    "C:Subject: secret plans",
    "C:",
    "C:PASS hunter2",
    "C:.",
    "S:250 2.0.0 OK queued",
    "C:QUIT",
  ]);
  assertNoSecret(logged, "secret plans", "hunter2");
  assert.deepEqual(logged, [
    "C: MAIL FROM:<box@contoso.com>",
    "S: 250 2.1.0",
    "C: RCPT TO:<a@b.example>",
    "S: 250 2.1.5",
    "C: DATA",
    "S: 354",
    "C: (message: 39 bytes)",
    "S: 250 2.0.0",
    "C: QUIT",
  ]);
});

Deno.test("CommandLog() hides IMAP literals and AUTHENTICATE PLAIN's continuation", () => {
  const logged = session("IMAP", [
    "C:a1 LOGIN {7}",
    "S:+ Ready for the literal.",
    `C:scanner {${PASSWORD.length}}`,
    "S:+ Ready for the literal.",
    `C:${PASSWORD}`,
    "S:a1 NO [AUTHENTICATIONFAILED] Authentication failed.",
    "C:a2 LOGIN {7+}",
    `C:scanner {${PASSWORD.length}+}`,
    `C:${PASSWORD}`,
    "S:a2 NO [AUTHENTICATIONFAILED] Authentication failed.",
    "C:a3 AUTHENTICATE PLAIN",
    "S:+ ",
    `C:${PLAIN}`,
    "S:a3 OK Logged in.",
  ]);
  assertNoSecret(logged, PASSWORD, PLAIN);
  assert.deepEqual(logged, [
    "C: a1 LOGIN <hidden>",
    "S: +",
    "C: <hidden line>",
    "S: +",
    "C: <hidden line>",
    "S: a1 NO",
    "C: a2 LOGIN <hidden>",
    "C: <hidden line>",
    "C: <hidden line>",
    "S: a2 NO",
    "C: a3 AUTHENTICATE PLAIN",
    "S: +",
    `C: <hidden line>`,
    "S: a3 OK",
  ]);
});

Deno.test("CommandLog() hides every line after a literal with a line end inside", () => {
  const inside = `first\r\nb2 LOGIN scanner "${PASSWORD}"`;
  const logged = session("IMAP", [
    `C:b1 LOGIN scanner {${inside.length}}`,
    "S:+ Ready for the literal.",
    "C:first",
    `C:b2 LOGIN scanner "${PASSWORD}"`,
    "C:b3 NOOP",
    "S:b1 BAD A literal was not sent whole.",
  ]);
  assertNoSecret(logged, PASSWORD, "first", "b2", "b3");
  assert.deepEqual(logged, [
    "C: b1 LOGIN scanner <hidden>",
    "S: +",
    "C: <hidden line>",
    "C: <hidden line>",
    "C: <hidden line>",
    "S: b1 BAD",
  ]);
});

Deno.test("CommandLog() reads on after a literal that fits its line, and after a refused one", () => {
  const logged = session("IMAP", [
    "C:a1 LOGIN {7+}",
    "C:scanner {4}",
    "S:+ Ready for the literal.",
    "C:pass",
    "S:a1 NO [AUTHENTICATIONFAILED] Authentication failed.",
    "C:a2 NOOP",
    "C:a3 LOGIN scanner {5000}",
    "S:a3 BAD Invalid arguments.",
    "C:a4 CAPABILITY", // hidden all the same: a client might have sent the literal
    "C:a5 NOOP",
  ]);
  assert.deepEqual(logged, [
    "C: a1 LOGIN <hidden>",
    "C: <hidden line>",
    "S: +",
    "C: <hidden line>",
    "S: a1 NO",
    "C: a2 NOOP",
    "C: a3 LOGIN scanner <hidden>",
    "S: a3 BAD",
    "C: <hidden line>",
    "C: a5 NOOP",
  ]);
});

Deno.test("CommandLog() logs a POP3 login as USER and PASS <hidden>", () => {
  const logged = session("POP3", [
    "S:+OK ready",
    "C:CAPA",
    "S:+OK Capability list follows\nUSER\n.",
    "C:USER scanner",
    "S:+OK Send the password (PASS).",
    `C:PASS ${PASSWORD}`,
    "S:+OK Logged in.",
  ]);
  assertNoSecret(logged, PASSWORD, "Scanner pass");
  assert.deepEqual(logged, [
    "S: +OK",
    "C: CAPA",
    "S: +OK",
    "C: USER scanner",
    "S: +OK",
    "C: PASS <hidden>",
    "S: +OK",
  ]);
});
