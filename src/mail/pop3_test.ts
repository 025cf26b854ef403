import assert from "node:assert/strict";
import { AuthError, ConnectionError, InternalError, MailboxError, ToolError } from "../errors.ts";
import { ScriptedTransport, type ScriptStep } from "../../test/mail/scripted_transport.ts";
import { DOVECOT_CHALLENGE, failScript, runScript, SASL } from "../../test/mail/session_helpers.ts";
import { type Pop3Result, runPop3 } from "./pop3.ts";
import type { SessionOptions } from "./types.ts";

const EXCHANGE_GREETING =
  "+OK The Microsoft Exchange POP3 service is ready. [TQBXADIAUABSADAAMQBDAEEAMAAwADEAMgA=]";
const DOVECOT_GREETING = "+OK Dovecot (Debian) ready.";

const EXCHANGE_LOGIN: ScriptStep[] = [
  `S: ${EXCHANGE_GREETING}`,
  "C: AUTH XOAUTH2",
  "S: +",
  `C: ${SASL}`,
  "S: +OK User successfully authenticated.",
];

function run(
  script: ScriptStep[],
  extra: Partial<SessionOptions> = {},
): Promise<{ result: Pop3Result; transport: ScriptedTransport }> {
  return runScript(runPop3, script, extra);
}

/** Runs a script that must fail; returns the error after checking the script was followed. */
function fail(script: ScriptStep[]): Promise<ToolError> {
  return failScript(runPop3, script);
}

Deno.test("runPop3() logs in to Exchange with the two-line AUTH, runs STAT and quits", async () => {
  const lines: string[] = [];
  const progress: string[] = [];
  const { result, transport } = await run([
    ...EXCHANGE_LOGIN,
    "C: STAT",
    "S: +OK 3 14523",
    "C: QUIT",
    "S: +OK Microsoft Exchange Server POP3 server signing off.",
  ], {
    onLine: (dir, line) => lines.push(`${dir}: ${line}`),
    onProgress: (step, message) => progress.push(`${step}: ${message}`),
  });
  assert.deepEqual(result, { greeting: EXCHANGE_GREETING, count: 3, octets: 14523 });
  assert.deepEqual(progress, [
    "authenticate: Authenticate using XOAuth2.",
    "stat: Read the mailbox size (STAT).",
    "logout: Quit.",
  ]);
  assert.deepEqual(lines, transport.transcript.map((t) => `${t.dir}: ${t.line}`));
  assert.equal(transport.closeCount, 0, "sessions leave closing to the caller");
});

Deno.test("runPop3() accepts Dovecot's '+ ' continuation", async () => {
  const { result } = await run([
    `S: ${DOVECOT_GREETING}`,
    "C: AUTH XOAUTH2",
    "S: + ",
    `C: ${SASL}`,
    "S: +OK Logged in.",
    "C: STAT",
    "S: +OK 0 0",
    "C: QUIT",
    "S: +OK Logging out.",
  ]);
  assert.deepEqual(result, { greeting: DOVECOT_GREETING, count: 0, octets: 0 });
});

Deno.test("runPop3() reports Exchange's rejected login as AuthError POP3_AUTH_FAILED", async () => {
  const error = await fail([
    `S: ${EXCHANGE_GREETING}`,
    "C: AUTH XOAUTH2",
    "S: +",
    `C: ${SASL}`,
    "S: -ERR Authentication failure: unknown user name or bad password.",
  ]);
  assert.ok(error instanceof AuthError);
  assert.equal(error.exitCode, 5);
  assert.equal(error.code, "POP3_AUTH_FAILED");
  assert.equal(
    error.message,
    "POP3 server rejected the login: -ERR Authentication failure: unknown user name or bad password.",
  );
});

Deno.test("runPop3() answers Dovecot's failure challenge with an empty line", async () => {
  const error = await fail([
    `S: ${DOVECOT_GREETING}`,
    "C: AUTH XOAUTH2",
    "S: + ",
    `C: ${SASL}`,
    `S: ${DOVECOT_CHALLENGE}`,
    "C:",
    "S: -ERR [AUTH] Authentication failed.",
  ]);
  assert.ok(error instanceof AuthError);
  assert.equal(error.code, "POP3_AUTH_FAILED");
  assert.match(error.message, /-ERR \[AUTH\] Authentication failed\./);
  assert.match(error.message, /status 401, schemes bearer/);
});

Deno.test("runPop3() reports -ERR straight after AUTH XOAUTH2 as unsupported", async () => {
  const error = await fail([
    `S: ${DOVECOT_GREETING}`,
    "C: AUTH XOAUTH2",
    "S: -ERR Unsupported authentication mechanism.",
  ]);
  assert.ok(error instanceof AuthError);
  assert.equal(error.code, "POP3_XOAUTH2_UNSUPPORTED");
  assert.match(error.message, /-ERR Unsupported authentication mechanism\./);
});

Deno.test("runPop3() rejects greetings other than +OK", async () => {
  for (const greeting of ["-ERR [SYS/TEMP] Too many connections", "* OK IMAP4 ready"]) {
    const error = await fail([`S: ${greeting}`]);
    assert.ok(error instanceof ConnectionError, greeting);
    assert.equal(error.code, "POP3_BAD_GREETING");
    assert.ok(error.message.includes(greeting));
  }
});

Deno.test("runPop3() maps STAT -ERR to MailboxError POP3_STAT_FAILED", async () => {
  const error = await fail([...EXCHANGE_LOGIN, "C: STAT", "S: -ERR Mailbox is locked."]);
  assert.ok(error instanceof MailboxError);
  assert.equal(error.exitCode, 6);
  assert.equal(error.code, "POP3_STAT_FAILED");
  assert.match(error.message, /-ERR Mailbox is locked\./);
});

Deno.test("runPop3() treats a malformed STAT reply as a protocol violation", async () => {
  for (const reply of ["+OK", "+OK three 14523", "+OK 3", "3 14523"]) {
    const error = await fail([...EXCHANGE_LOGIN, "C: STAT", `S: ${reply}`]);
    assert.ok(error instanceof ConnectionError, reply);
    assert.equal(error.code, "POP3_PROTOCOL_ERROR", reply);
  }
});

Deno.test("runPop3() treats unexpected replies during AUTH as protocol violations", async () => {
  const noContinuation = await fail([
    `S: ${DOVECOT_GREETING}`,
    "C: AUTH XOAUTH2",
    "S: +OK go ahead",
  ]);
  assert.equal(noContinuation.code, "POP3_PROTOCOL_ERROR");

  const oddReply = await fail([
    `S: ${DOVECOT_GREETING}`,
    "C: AUTH XOAUTH2",
    "S: +",
    `C: ${SASL}`,
    "S: * OK what?",
  ]);
  assert.equal(oddReply.code, "POP3_PROTOCOL_ERROR");
});

Deno.test("runPop3() ignores everything that goes wrong during QUIT", async () => {
  for (const ending of [[{ eof: true }], ["S: -ERR whatever"]] as ScriptStep[][]) {
    const { result } = await run([
      ...EXCHANGE_LOGIN,
      "C: STAT",
      "S: +OK 1 2",
      "C: QUIT",
      ...ending,
    ]);
    assert.equal(result.count, 1);
  }
});

Deno.test("runPop3() passes transport errors through unchanged", async () => {
  const closed = new ConnectionError("connection lost", { code: "CONNECTION_CLOSED" });
  const transport = new ScriptedTransport([...EXCHANGE_LOGIN, "C: STAT", { error: closed }]);
  await assert.rejects(runPop3(transport, { sasl: SASL }), (e) => e === closed);
  transport.assertDone();
});

Deno.test("runPop3() never puts the SASL string in an error message", async () => {
  const error = await fail([
    `S: ${DOVECOT_GREETING}`,
    "C: AUTH XOAUTH2",
    "S: +",
    `C: ${SASL}`,
    `S: -ERR Invalid base64 data: ${SASL}`,
  ]);
  assert.equal(error.code, "POP3_AUTH_FAILED");
  assert.match(error.message, /<redacted>/);
});

Deno.test("runPop3() refuses to run without a SASL string", async () => {
  await assert.rejects(runPop3(new ScriptedTransport([]), { sasl: "" }), InternalError);
});
