import assert from "node:assert/strict";
import {
  AuthError,
  ConnectionError,
  InternalError,
  MailboxError,
  ToolError,
  UsageError,
} from "../errors.ts";
import { dovecotPath, startDovecot } from "../../test/bed/dovecot.ts";
import { startExchange } from "../../test/bed/exchange.ts";
import { exportSpkiPem, signJwt } from "../../test/bed/jwt.ts";
import { makeServerPki } from "../../test/bed/pki.ts";
import { ScriptedTransport, type ScriptStep } from "../../test/mail/scripted_transport.ts";
import {
  assertGoodbye,
  DOVECOT_CHALLENGE,
  GOODBYE,
  SASL,
  TOKEN,
} from "../../test/mail/session_helpers.ts";
import { buildXoauth2 } from "../sasl/xoauth2.ts";
import { advise } from "../diagnose/advice.ts";
import { connectPlain } from "./tls_transport.ts";
import {
  buildTestMessage,
  defaultClientName,
  dotStuff,
  formatDate,
  loginSmtp,
  runSmtp,
  type SmtpOptions,
  type SmtpResult,
} from "./smtp.ts";

/** The fix a user is shown for an error: the advice table is the one source of guidance. */
function adviceFix(error: ToolError): string {
  return advise(error.code, { mailbox: "box@contoso.com", clientId: "C" }, "en")?.fix ?? "";
}

const MAILBOX = "shared@contoso.com";
const HOST = "TB0P264MB0001.testbed.prod.outlook.com";
const GREETING =
  `220 ${HOST} Microsoft ESMTP MAIL Service ready at Mon, 20 Nov 2023 09:28:37 +0000`;
const TLS = { hostname: "smtp.office365.com", caCerts: ["-----BEGIN CERTIFICATE-----"] };
const OPTIONS: SmtpOptions = { sasl: SASL, mailbox: MAILBOX, clientName: "client.test", tls: TLS };

/** Exchange's EHLO reply; `extension` is STARTTLS before TLS and AUTH after it. */
function ehlo(extension: string): ScriptStep[] {
  return [
    "C: EHLO client.test",
    `S: 250-${HOST} Hello [203.0.113.7]`,
    "S: 250-SIZE 157286400",
    "S: 250-PIPELINING",
    "S: 250-DSN",
    "S: 250-ENHANCEDSTATUSCODES",
    `S: 250-${extension}`,
    "S: 250-8BITMIME",
    "S: 250-BINARYMIME",
    "S: 250-CHUNKING",
    "S: 250 SMTPUTF8",
  ];
}

/** Exchange up to the TLS handshake and the second EHLO. */
const EXCHANGE_TLS: ScriptStep[] = [
  `S: ${GREETING}`,
  ...ehlo("STARTTLS"),
  "C: STARTTLS",
  "S: 220 2.0.0 SMTP server ready",
  { startTls: true },
  ...ehlo("AUTH LOGIN XOAUTH2"),
];

/** Exchange up to the credentials. */
const EXCHANGE_AUTH: ScriptStep[] = [
  ...EXCHANGE_TLS,
  "C: AUTH XOAUTH2",
  "S: 334 ",
  `C: ${SASL}`,
];

const EXCHANGE_LOGIN: ScriptStep[] = [...EXCHANGE_AUTH, "S: 235 2.7.0 Authentication successful"];

const QUIT: ScriptStep[] = ["C: QUIT", "S: 221 2.0.0 Service closing transmission channel"];

async function run(
  script: ScriptStep[],
  extra: Partial<SmtpOptions> = {},
  transportOptions: { secure?: boolean } = {},
): Promise<{ result: SmtpResult; transport: ScriptedTransport }> {
  const transport = new ScriptedTransport(script, transportOptions);
  const result = await runSmtp(transport, { ...OPTIONS, ...extra });
  transport.assertDone();
  return { result, transport };
}

/**
 * Runs a script that must fail; checks that it was followed, and that the
 * error is a `ToolError` with a code and without the SASL string or token.
 */
async function fail(
  script: ScriptStep[],
  extra: Partial<SmtpOptions> = {},
): Promise<{ error: ToolError; transport: ScriptedTransport }> {
  const transport = new ScriptedTransport(script, { goodbye: GOODBYE });
  const error = await runSmtp(transport, { ...OPTIONS, ...extra }).then(
    () => assert.fail("runSmtp() should have failed"),
    (e: unknown) => e,
  );
  transport.assertDone();
  assert.ok(error instanceof ToolError, `not a ToolError: ${error}`);
  assertGoodbye(error, transport);
  assert.ok(!error.message.includes(SASL), "error message contains the SASL string");
  assert.ok(!error.message.includes(TOKEN), "error message contains the token");
  assert.ok(error.code, "error without code");
  return { error, transport };
}

// ---------------------------------------------------------------- success

Deno.test("runSmtp() logs in to Exchange after STARTTLS and quits", async () => {
  const lines: string[] = [];
  const progress: string[] = [];
  const { result, transport } = await run([...EXCHANGE_LOGIN, ...QUIT], {
    onLine: (dir, line) => lines.push(`${dir}: ${line}`),
    onProgress: (step, message) => progress.push(`${step}: ${message}`),
  });
  assert.deepEqual(result, {
    greeting: GREETING,
    capabilities: [
      "SIZE 157286400",
      "PIPELINING",
      "DSN",
      "ENHANCEDSTATUSCODES",
      "AUTH LOGIN XOAUTH2",
      "8BITMIME",
      "BINARYMIME",
      "CHUNKING",
      "SMTPUTF8",
    ],
    authenticated: true,
  });
  // The token only ever travels after the handshake.
  assert.deepEqual(transport.sentInClear, ["EHLO client.test", "STARTTLS"]);
  assert.deepEqual(transport.startTlsCalls, [TLS]);
  assert.deepEqual(progress, [
    "starttls: Start TLS (STARTTLS).",
    "authenticate: Authenticate using XOAuth2.",
    "logout: Quit.",
  ]);
  assert.deepEqual(lines, transport.transcript.map((t) => `${t.dir}: ${t.line}`));
  assert.equal(transport.closeCount, 0, "the caller closes the transport");
});

Deno.test("runSmtp() accepts '334' without a space and a multi-line greeting", async () => {
  const { result } = await run([
    "S: 220-mail.example.test ESMTP",
    "S: 220-Unauthorized use prohibited",
    "S: 220 Ready",
    "C: EHLO client.test",
    "S: 250-mail.example.test",
    "S: 250 starttls",
    "C: STARTTLS",
    "S: 220 Go ahead",
    { startTls: true },
    "C: EHLO client.test",
    "S: 250-mail.example.test",
    "S: 250-auth=plain xoauth2",
    "S: 250 8bitmime",
    "C: AUTH XOAUTH2",
    "S: 334",
    `C: ${SASL}`,
    "S: 235 Accepted",
    ...QUIT,
  ]);
  assert.equal(result.greeting, "220-mail.example.test ESMTP");
  assert.deepEqual(result.capabilities, ["AUTH=PLAIN XOAUTH2", "8BITMIME"]);
});

Deno.test("runSmtp() skips STARTTLS on a transport that is already TLS", async () => {
  const { transport } = await run(
    [
      `S: ${GREETING}`,
      ...ehlo("AUTH LOGIN XOAUTH2"),
      "C: AUTH XOAUTH2",
      "S: 334 ",
      `C: ${SASL}`,
      "S: 235 2.7.0 Authentication successful",
      ...QUIT,
    ],
    {},
    { secure: true },
  );
  assert.deepEqual(transport.startTlsCalls, []);
});

Deno.test("runSmtp() uses this machine's host name when no client name is given", async () => {
  const name = defaultClientName();
  assert.match(name, /^[A-Za-z0-9.-]+$/);
  const script = [...EXCHANGE_LOGIN, ...QUIT].map((step) =>
    step === "C: EHLO client.test" ? `C: EHLO ${name}` : step
  );
  await run(script, { clientName: undefined });
});

Deno.test("runSmtp() ignores everything that goes wrong during QUIT", async () => {
  const endings: ScriptStep[][] = [
    [{ eof: true }],
    ["S: 421 4.4.2 Connection dropped"],
    ["S: garbage"],
    [{ error: new ConnectionError("no answer", { code: "TIMEOUT" }) }],
  ];
  for (const ending of endings) {
    const { result } = await run([...EXCHANGE_LOGIN, "C: QUIT", ...ending]);
    assert.equal(result.authenticated, true);
  }
});

// ---------------------------------------------------------------- test message

/** The lines of the test message as the script expects them (Date and Message-ID vary). */
function messageSteps(from: string, to: string): ScriptStep[] {
  const template = buildTestMessage({ from, to, date: new Date(0), id: "x" });
  return template.map((line) => {
    if (line.startsWith("Date: ")) {
      return { C: /^Date: (Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d \w{3} \d{4} \d\d:\d\d:\d\d \+0000$/ };
    }
    if (line.startsWith("Message-ID: ")) {
      const domain = from.split("@")[1].replace(/\./g, "\\.");
      return { C: new RegExp(`^Message-ID: <[0-9a-f]{32}@${domain}>$`) };
    }
    return `C: ${line}`;
  });
}

Deno.test("runSmtp() sends one test message when asked and reports the queue reply", async () => {
  const queued = "250 2.0.0 OK <abc@contoso.com> [Hostname=TB0P264MB0001] Queued mail for delivery";
  const progress: string[] = [];
  const { result, transport } = await run([
    ...EXCHANGE_LOGIN,
    `C: MAIL FROM:<${MAILBOX}>`,
    "S: 250 2.1.0 Sender OK",
    "C: RCPT TO:<admin@contoso.com>",
    "S: 250 2.1.5 Recipient OK",
    "C: DATA",
    "S: 354 Start mail input; end with <CRLF>.<CRLF>",
    ...messageSteps(MAILBOX, "admin@contoso.com"),
    "C: .",
    `S: ${queued}`,
    ...QUIT,
  ], {
    sendTestMessageTo: "admin@contoso.com",
    onProgress: (step, message) => progress.push(`${step}: ${message}`),
  });
  assert.equal(result.queued, queued);
  assert.deepEqual(progress.map((p) => p.split(":")[0]), [
    "starttls",
    "authenticate",
    "send",
    "logout",
  ]);
  assert.ok(progress.includes("send: Send a test message to admin@contoso.com."));
  const message = transport.sent.slice(transport.sent.indexOf("DATA") + 1, -2);
  assert.equal(message.length, buildTestMessage({ from: "a@b", to: "c@d" }).length);
});

Deno.test("buildTestMessage() writes RFC 5322 headers and a short plain-text body", () => {
  const lines = buildTestMessage({
    from: MAILBOX,
    to: "admin@contoso.com",
    date: new Date(Date.UTC(2024, 1, 29, 8, 5, 9)),
    id: "0123abcd",
  });
  const blank = lines.indexOf("");
  assert.deepEqual(lines.slice(0, blank), [
    "Date: Thu, 29 Feb 2024 08:05:09 +0000",
    `From: ${MAILBOX}`,
    "To: admin@contoso.com",
    "Subject: Get-IMAPAccessToken test message",
    "Message-ID: <0123abcd@contoso.com>",
    "MIME-Version: 1.0",
    "Content-Type: text/plain; charset=utf-8",
    "Content-Transfer-Encoding: 7bit",
    "Auto-Submitted: auto-generated",
  ]);
  const body = lines.slice(blank + 1);
  assert.ok(body.length > 0 && body.every((line) => line.length <= 78), body.join("\n"));
  assert.ok(body.some((line) => line.includes(MAILBOX)));
  assert.ok(lines.every((line) => !/[\r\n]/.test(line)));

  const random = buildTestMessage({ from: MAILBOX, to: "a@b.test" })[4];
  assert.match(random, /^Message-ID: <[0-9a-f]{32}@contoso\.com>$/);
  assert.notEqual(random, buildTestMessage({ from: MAILBOX, to: "a@b.test" })[4]);

  const utf8 = buildTestMessage({ from: "jürgen@contoso.com", to: "a@b.test" });
  assert.ok(utf8.includes("Content-Transfer-Encoding: 8bit"));
});

Deno.test("formatDate() writes RFC 5322 dates in UTC", () => {
  assert.equal(formatDate(new Date(0)), "Thu, 01 Jan 1970 00:00:00 +0000");
  assert.equal(
    formatDate(new Date(Date.UTC(2023, 11, 31, 23, 59, 59))),
    "Sun, 31 Dec 2023 23:59:59 +0000",
  );
});

Deno.test("dotStuff() doubles a leading dot, and only that", () => {
  assert.deepEqual(dotStuff([".", "..x", "a.b", "", ". leading", "x."]), [
    "..",
    "...x",
    "a.b",
    "",
    ".. leading",
    "x.",
  ]);
});

// ---------------------------------------------------------------- never the token in clear

Deno.test("runSmtp() refuses a server without STARTTLS and never sends the token", async () => {
  const { error, transport } = await fail([`S: ${GREETING}`, ...ehlo("AUTH LOGIN XOAUTH2")]);
  assert.ok(error instanceof ConnectionError);
  assert.equal(error.code, "SMTP_NO_STARTTLS");
  assert.equal(error.exitCode, 4);
  assert.match(error.message, /token was not sent/);
  assert.deepEqual(transport.sent, ["EHLO client.test"]);
});

Deno.test("runSmtp() stops when STARTTLS is refused or the handshake fails", async () => {
  const refused = await fail([
    `S: ${GREETING}`,
    ...ehlo("STARTTLS"),
    "C: STARTTLS",
    "S: 454 4.7.0 TLS not available due to temporary reason",
  ]);
  assert.ok(refused.error instanceof ConnectionError);
  assert.equal(refused.error.code, "SMTP_STARTTLS_FAILED");

  const untrusted = new ConnectionError("TLS certificate is not trusted", {
    code: "TLS_UNTRUSTED",
  });
  const transport = new ScriptedTransport([
    `S: ${GREETING}`,
    ...ehlo("STARTTLS"),
    "C: STARTTLS",
    "S: 220 2.0.0 SMTP server ready",
    { startTls: true, error: untrusted },
  ]);
  await assert.rejects(runSmtp(transport, OPTIONS), (e) => e === untrusted);
  transport.assertDone();
  assert.equal(transport.secure, false);
  assert.ok(!transport.sent.includes(SASL));
});

Deno.test("runSmtp() requires AUTH XOAUTH2 after STARTTLS before sending the token", async () => {
  for (const offer of ["AUTH LOGIN PLAIN", "AUTH=LOGIN", "X-ANONYMOUSTLS"]) {
    const { error, transport } = await fail(
      EXCHANGE_TLS.map((step) => step === "S: 250-AUTH LOGIN XOAUTH2" ? `S: 250-${offer}` : step),
    );
    assert.ok(error instanceof AuthError, offer);
    assert.equal(error.code, "SMTP_XOAUTH2_UNSUPPORTED");
    assert.equal(error.exitCode, 5);
    assert.ok(!transport.sent.some((line) => line.startsWith("AUTH")), offer);
  }
});

// ---------------------------------------------------------------- login failures

Deno.test("runSmtp() maps Exchange's 535 5.7.3 to AuthError SMTP_AUTH_FAILED", async () => {
  const { error } = await fail([
    ...EXCHANGE_AUTH,
    `S: 535 5.7.3 Authentication unsuccessful [${HOST}]`,
  ]);
  assert.ok(error instanceof AuthError);
  assert.equal(error.code, "SMTP_AUTH_FAILED");
  assert.equal(error.exitCode, 5);
  assert.match(error.message, /535 5\.7\.3 Authentication unsuccessful/);
  assert.match(adviceFix(error), /SMTP\.SendAsApp/);
});

Deno.test("runSmtp() maps the 5.7.139 variants and 5.7.30 to their own codes, exit 5", async () => {
  const cases: [string, string][] = [
    [
      "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the " +
      "Tenant. Visit https://aka.ms/smtp_auth_disabled for more information.",
      "SMTP_AUTH_DISABLED_TENANT",
    ],
    [
      "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the " +
      "Mailbox. Visit https://aka.ms/smtp_auth_disabled for more information.",
      "SMTP_AUTH_DISABLED_MAILBOX",
    ],
    [
      "535 5.7.139 Authentication unsuccessful, basic authentication is disabled.",
      "SMTP_BASIC_AUTH_DISABLED",
    ],
    [
      "535 5.7.139 Authentication unsuccessful, the request did not meet the criteria.",
      "SMTP_AUTH_FAILED",
    ],
    [
      "550 5.7.30 Basic authentication is not supported for Client Submission.",
      "SMTP_BASIC_AUTH_RETIRED",
    ],
  ];
  for (const [reply, code] of cases) {
    const { error } = await fail([...EXCHANGE_AUTH, `S: ${reply}`]);
    assert.ok(error instanceof AuthError, code);
    assert.equal(error.code, code);
    assert.equal(error.exitCode, 5);
    assert.ok(adviceFix(error), `${code} has advice`);
  }
  const { error } = await fail([
    ...EXCHANGE_AUTH,
    "S: 535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the " +
    "Tenant.",
  ]);
  assert.match(adviceFix(error), /Set-TransportConfig -SmtpClientAuthenticationDisabled \$false/);
});

Deno.test("runSmtp() maps 530 5.7.57 to MailboxError SMTP_NOT_AUTHENTICATED", async () => {
  const { error } = await fail([
    ...EXCHANGE_AUTH,
    "S: 530 5.7.57 Client not authenticated to send mail",
  ]);
  assert.ok(error instanceof MailboxError);
  assert.equal(error.code, "SMTP_NOT_AUTHENTICATED");
  assert.equal(error.exitCode, 6);

  const atMailFrom = await fail([
    ...EXCHANGE_LOGIN,
    `C: MAIL FROM:<${MAILBOX}>`,
    "S: 530 5.7.57 Client not authenticated to send mail. Error: 535 5.7.139",
  ], { sendTestMessageTo: "admin@contoso.com" });
  assert.ok(atMailFrom.error instanceof MailboxError);
  assert.equal(atMailFrom.error.code, "SMTP_NOT_AUTHENTICATED");
});

Deno.test("runSmtp() answers Dovecot's failure challenge with an empty line", async () => {
  const { error, transport } = await fail([
    ...EXCHANGE_AUTH,
    DOVECOT_CHALLENGE.replace(/^\+ /, "S: 334 "),
    "C:",
    "S: 535 5.7.8 Authentication failed.",
  ]);
  assert.ok(error instanceof AuthError);
  assert.equal(error.code, "SMTP_AUTH_FAILED");
  assert.match(error.message, /535 5\.7\.8 Authentication failed\./);
  assert.match(error.message, /server detail: status 401, schemes bearer/);
  assert.equal(transport.sent.at(-1), "");
});

Deno.test("runSmtp() reports AUTH XOAUTH2 refused before the credentials", async () => {
  const unsupported = await fail([
    ...EXCHANGE_TLS,
    "C: AUTH XOAUTH2",
    "S: 504 5.7.4 Unrecognized authentication type",
  ]);
  assert.ok(unsupported.error instanceof AuthError);
  assert.equal(unsupported.error.code, "SMTP_XOAUTH2_UNSUPPORTED");
  assert.ok(!unsupported.transport.sent.includes(SASL));

  const refused = await fail([
    ...EXCHANGE_TLS,
    "C: AUTH XOAUTH2",
    "S: 535 5.7.3 Authentication unsuccessful",
  ]);
  assert.equal(refused.error.code, "SMTP_AUTH_FAILED");
});

Deno.test("runSmtp() turns 421 anywhere into ConnectionError SMTP_SERVICE_UNAVAILABLE", async () => {
  const scripts: ScriptStep[][] = [
    ["S: 421 4.3.2 Service not available"],
    [`S: ${GREETING}`, "C: EHLO client.test", "S: 421 4.7.0 Too many connections"],
    [...EXCHANGE_TLS, "C: AUTH XOAUTH2", "S: 421 4.4.0 Failed to connect to relay server"],
    [...EXCHANGE_AUTH, "S: 421 4.7.66 Connection dropped"],
    [
      ...EXCHANGE_LOGIN,
      `C: MAIL FROM:<${MAILBOX}>`,
      "S: 421-4.3.2 The system is going down",
      "S: 421 4.3.2 Try again later",
    ],
  ];
  for (const script of scripts) {
    const { error } = await fail(script, { sendTestMessageTo: "admin@contoso.com" });
    assert.ok(error instanceof ConnectionError, String(script.at(-1)));
    assert.equal(error.code, "SMTP_SERVICE_UNAVAILABLE");
    assert.equal(error.exitCode, 4);
  }
});

// ---------------------------------------------------------------- sending failures

Deno.test("runSmtp() maps refusals while sending to MailboxError SMTP_SEND_FAILED or SMTP_SEND_AS_DENIED", async () => {
  const to = "admin@contoso.com";
  const head: ScriptStep[] = [...EXCHANGE_LOGIN, `C: MAIL FROM:<${MAILBOX}>`];
  const cases: [ScriptStep[], RegExp, string][] = [
    [
      [...head, "S: 550 5.7.60 SMTP; Client does not have permissions to send as this sender"],
      /refused MAIL FROM.*5\.7\.60/,
      "SMTP_SEND_AS_DENIED",
    ],
    [
      [
        ...head,
        "S: 250 2.1.0 Sender OK",
        `C: RCPT TO:<${to}>`,
        "S: 550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found",
      ],
      /refused RCPT TO/,
      "SMTP_SEND_FAILED",
    ],
    [
      [
        ...head,
        "S: 250 2.1.0 Sender OK",
        `C: RCPT TO:<${to}>`,
        "S: 250 2.1.5 Recipient OK",
        "C: DATA",
        "S: 554 5.5.1 No valid recipients",
      ],
      /refused DATA/,
      "SMTP_SEND_FAILED",
    ],
    [
      [
        ...head,
        "S: 250 2.1.0 Sender OK",
        `C: RCPT TO:<${to}>`,
        "S: 250 2.1.5 Recipient OK",
        "C: DATA",
        "S: 354 Start mail input; end with <CRLF>.<CRLF>",
        ...messageSteps(MAILBOX, to),
        "C: .",
        "S: 554 5.2.0 STOREDRV.Submission.Exception:SendAsDeniedException",
      ],
      /refused the message/,
      "SMTP_SEND_AS_DENIED",
    ],
    [
      [
        ...head,
        "S: 250 2.1.0 Sender OK",
        `C: RCPT TO:<${to}>`,
        "S: 250 2.1.5 Recipient OK",
        "C: DATA",
        "S: 354 Start mail input; end with <CRLF>.<CRLF>",
        ...messageSteps(MAILBOX, to),
        "C: .",
        `S: 554 5.2.252 SendAsDenied; app@contoso.com not allowed to send as ${MAILBOX}; ` +
        "STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied",
      ],
      /refused the message.*5\.2\.252 SendAsDenied/,
      "SMTP_SEND_AS_DENIED",
    ],
  ];
  for (const [script, message, code] of cases) {
    const { error } = await fail(script, { sendTestMessageTo: to });
    assert.ok(error instanceof MailboxError, String(script.at(-1)));
    assert.equal(error.code, code);
    assert.equal(error.exitCode, 6);
    assert.match(error.message, message);
  }
  const { error } = await fail(cases[0][0], { sendTestMessageTo: to });
  assert.match(adviceFix(error), /Add-RecipientPermission .*SendAs/);
});

// ---------------------------------------------------------------- protocol errors

Deno.test("runSmtp() rejects greetings other than 220", async () => {
  const { error } = await fail(["S: 554 5.7.1 No SMTP service here"]);
  assert.ok(error instanceof ConnectionError);
  assert.equal(error.code, "SMTP_BAD_GREETING");
  assert.match(error.message, /554 5\.7\.1 No SMTP service here/);
  const imap = await fail(["S: * OK The Microsoft Exchange IMAP4 service is ready."]);
  assert.equal(imap.error.code, "SMTP_PROTOCOL_ERROR");
});

Deno.test("runSmtp() reports a refused EHLO as SMTP_EHLO_FAILED", async () => {
  const { error } = await fail([
    `S: ${GREETING}`,
    "C: EHLO client.test",
    "S: 501 5.5.4 Invalid domain name",
  ]);
  assert.equal(error.code, "SMTP_EHLO_FAILED");
  assert.equal(error.exitCode, 4);
});

Deno.test("runSmtp() rejects malformed and inconsistent replies", async () => {
  const scripts: ScriptStep[][] = [
    [`S: ${GREETING}`, "C: EHLO client.test", "S: 250-a", "S: 251 b"],
    [`S: ${GREETING}`, "C: EHLO client.test", "S: 25O ok"],
    [`S: ${GREETING}`, "C: EHLO client.test", ...Array(100).fill("S: 250-X")],
    [...EXCHANGE_TLS, "C: AUTH XOAUTH2", "S: 235 2.7.0 Authentication successful"],
    [...EXCHANGE_AUTH, "S: 334 ", "C:", "S: 235 2.7.0 Authentication successful"],
    [`S: ${GREETING}`, ...ehlo("STARTTLS"), "C: STARTTLS", "S: 250 OK"],
  ];
  for (const script of scripts) {
    const { error } = await fail(script);
    assert.ok(error instanceof ConnectionError, String(script.at(-1)));
    assert.equal(error.code, "SMTP_PROTOCOL_ERROR", error.message);
  }
});

Deno.test("runSmtp() passes transport errors through unchanged", async () => {
  const timeout = new ConnectionError("no answer from host:587 within 1 s", { code: "TIMEOUT" });
  const transport = new ScriptedTransport([...EXCHANGE_AUTH, { error: timeout }]);
  await assert.rejects(runSmtp(transport, OPTIONS), (e) => e === timeout);
  transport.assertDone();
});

Deno.test("runSmtp() never puts the SASL string in an error message", async () => {
  // A broken server that echoes the credentials back.
  const { error } = await fail([...EXCHANGE_AUTH, `S: 535 5.7.8 Bad credentials ${SASL}`]);
  assert.equal(error.code, "SMTP_AUTH_FAILED");
  assert.match(error.message, /<redacted>/);
});

Deno.test("runSmtp() refuses bad options before sending anything", async () => {
  const cases: [Partial<SmtpOptions>, new (...args: never[]) => Error][] = [
    [{ sasl: "" }, InternalError],
    [{ mailbox: "not-an-address" }, UsageError],
    [{ sendTestMessageTo: "a@b.test>\x00" }, UsageError],
    [{ sendTestMessageTo: "<a@b.test>" }, UsageError],
    [{ sendTestMessageTo: "a@b.test\r\nRCPT TO:<x@y>" }, UsageError],
    [{ clientName: "bad name" }, UsageError],
    [{ clientName: "-dash.example" }, UsageError],
  ];
  for (const [extra, type] of cases) {
    const transport = new ScriptedTransport([]);
    await assert.rejects(runSmtp(transport, { ...OPTIONS, ...extra }), type);
    assert.deepEqual(transport.transcript, [], JSON.stringify(extra));
  }
  // Address literals are valid EHLO names.
  await run(
    [...EXCHANGE_LOGIN, ...QUIT].map((s) =>
      s === "C: EHLO client.test" ? "C: EHLO [192.0.2.1]" : s
    ),
    { clientName: "[192.0.2.1]" },
  );
});

// ---------------------------------------------------------------- real servers

const rsa = {
  name: "RSASSA-PKCS1-v1_5",
  modulusLength: 2048,
  publicExponent: new Uint8Array([1, 0, 1]),
  hash: "SHA-256",
};

/** Connects to `port` on 127.0.0.1 and runs the session with `sasl`; always closes. */
async function smtpOver(
  port: number,
  caPem: string,
  options: Omit<SmtpOptions, "tls" | "clientName">,
): Promise<SmtpResult> {
  const transport = await connectPlain({ host: "127.0.0.1", port, timeoutMs: 5000 });
  try {
    return await runSmtp(transport, {
      clientName: "client.test",
      tls: { hostname: "127.0.0.1", caCerts: [caPem] },
      ...options,
    });
  } finally {
    transport.close();
  }
}

Deno.test("runSmtp() over connectPlain() against the Exchange-like server", async (t) => {
  const pki = await makeServerPki();
  await Deno.remove(pki.dir, { recursive: true });
  const signer = await crypto.subtle.generateKey(rsa, true, ["sign", "verify"]);
  const appId = "11111111-2222-3333-4444-555555555555";
  const locked = "locked@contoso.com";
  const token = (roles = ["SMTP.SendAsApp"]) => {
    const now = Math.floor(Date.now() / 1000);
    return signJwt({ alg: "RS256", typ: "JWT" }, {
      aud: "https://outlook.office365.com",
      iss: "https://sts.windows.net/tenant-id/",
      nbf: now,
      exp: now + 600,
      appid: appId,
      roles,
    }, signer.privateKey);
  };
  const publicKeyPem = await exportSpkiPem(signer.publicKey);
  const start = (extra: { smtpNoStartTls?: boolean; smtpAuthDisabled?: "tenant" } = {}) =>
    startExchange({
      tls: { certPem: pki.certPem, keyPem: pki.keyPem },
      tokenKey: { publicKeyPem },
      mailboxPermissions: { [MAILBOX]: [appId], [locked]: [] },
      ...extra,
    });

  const server = await start();
  const noStartTls = await start({ smtpNoStartTls: true });
  const disabled = await start({ smtpAuthDisabled: "tenant" });
  try {
    await t.step("logs in and delivers exactly one well-formed test message", async () => {
      const sasl = buildXoauth2(MAILBOX, await token());
      const result = await smtpOver(server.smtpPort, pki.caPem, {
        sasl,
        mailbox: MAILBOX,
        sendTestMessageTo: "admin@contoso.com",
      });
      assert.match(result.queued ?? "", /^250 2\.0\.0 OK <[0-9a-f]{32}@contoso\.com> .*Queued/);
      assert.ok(result.capabilities.includes("AUTH LOGIN XOAUTH2"));
      const session = server.sessions.at(-1)!;
      assert.equal(session.credentialsBeforeTls, false);
      assert.equal(session.receivedSecure[session.received.indexOf(sasl)], true);
      assert.equal(session.delivered.length, 1);
      const [message] = session.delivered;
      assert.equal(message.from, MAILBOX);
      assert.deepEqual(message.to, ["admin@contoso.com"]);
      const [head, body] = message.data.split("\r\n\r\n");
      assert.match(head, /^Date: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d \+0000\r\n/);
      assert.match(head, new RegExp(`\r\nFrom: ${MAILBOX}\r\n`));
      assert.match(head, /\r\nSubject: Get-IMAPAccessToken test message\r\n/);
      assert.match(head, /\r\nMessage-ID: <[0-9a-f]{32}@contoso\.com>\r\n/);
      assert.match(body, /test message from Get-IMAPAccessToken/);
      assert.equal(session.received.at(-1), "QUIT");
    });

    await t.step("a server without STARTTLS gets exit 4 and never the token", async () => {
      const sasl = buildXoauth2(MAILBOX, await token());
      const error = await smtpOver(noStartTls.smtpPort, pki.caPem, { sasl, mailbox: MAILBOX })
        .then(() => assert.fail("should fail"), (e: unknown) => e);
      assert.ok(error instanceof ConnectionError);
      assert.equal(error.code, "SMTP_NO_STARTTLS");
      assert.equal(error.exitCode, 4);
      const [session] = noStartTls.sessions;
      assert.deepEqual(session.received, ["EHLO client.test"]);
      assert.equal(session.credentialsBeforeTls, false);
    });

    await t.step("Exchange's failures map to their codes", async () => {
      const cases: [number, string, string[] | undefined, string, number][] = [
        [server.smtpPort, MAILBOX, ["IMAP.AccessAsApp"], "SMTP_AUTH_FAILED", 5],
        [disabled.smtpPort, MAILBOX, undefined, "SMTP_AUTH_DISABLED_TENANT", 5],
        [server.smtpPort, locked, undefined, "SMTP_SEND_AS_DENIED", 6],
      ];
      for (const [port, mailbox, roles, code, exitCode] of cases) {
        const sasl = buildXoauth2(mailbox, await token(roles));
        const error = await smtpOver(port, pki.caPem, {
          sasl,
          mailbox,
          sendTestMessageTo: "admin@contoso.com",
        }).then(() => assert.fail(`${code}: should fail`), (e: unknown) => e);
        assert.ok(error instanceof ToolError, String(error));
        assert.equal(error.code, code, error.message);
        assert.equal(error.exitCode, exitCode);
        assert.ok(!error.message.includes(sasl));
      }
    });
  } finally {
    await Promise.all([server.close(), noStartTls.close(), disabled.close()]);
  }
});

const noDovecot = dovecotPath() === null;

Deno.test({
  name: "runSmtp() over connectPlain() against Dovecot's submission service" +
    (noDovecot ? " (skipped: Dovecot not installed)" : ""),
  ignore: noDovecot,
  fn: async (t) => {
    const issuer = "https://login.microsoftonline.com/tenant-id/v2.0";
    const kid = "smtp-kid";
    const user = "alice@contoso.test";
    const pki = await makeServerPki();
    const signer = await crypto.subtle.generateKey(rsa, true, ["sign", "verify"]);
    const stranger = await crypto.subtle.generateKey(rsa, true, ["sign", "verify"]);
    const dovecot = await startDovecot({
      tls: { certFile: pki.certFile, keyFile: pki.keyFile },
      issuers: [issuer],
      signingKey: { kid, publicKeyPem: await exportSpkiPem(signer.publicKey) },
    });
    // Dovecot needs typ JWT, kid, sub, exp, iss and the email claim (its oauth2 settings in test/bed/dovecot.ts).
    const token = (key: CryptoKey) => {
      const now = Math.floor(Date.now() / 1000);
      return signJwt({ alg: "RS256", typ: "JWT", kid }, {
        iss: issuer,
        sub: "app-object-id",
        aud: "https://outlook.office365.com",
        nbf: now,
        exp: now + 600,
        email: user,
        roles: ["SMTP.SendAsApp"],
      }, key);
    };
    try {
      const port = dovecot.submissionPort!;
      await t.step("a valid token logs in and the test message reaches the sink", async () => {
        const progress: string[] = [];
        const result = await smtpOver(port, pki.caPem, {
          sasl: buildXoauth2(user, await token(signer.privateKey)),
          mailbox: user,
          sendTestMessageTo: "admin@contoso.test",
          onProgress: (step) => progress.push(step),
        });
        assert.deepEqual(progress, ["starttls", "authenticate", "send", "logout"]);
        assert.match(result.greeting, /^220 /);
        assert.ok(result.capabilities.some((c) => /^AUTH .*XOAUTH2/.test(c)));
        assert.match(result.queued ?? "", /^250 /);
        assert.equal(dovecot.relayed.length, 1);
        const [message] = dovecot.relayed;
        assert.equal(message.from, user);
        assert.deepEqual(message.to, ["admin@contoso.test"]);
        assert.match(message.data, new RegExp(`\r\nFrom: ${user}\r\n`));
        assert.match(message.data, /\r\nSubject: Get-IMAPAccessToken test message\r\n/);
        assert.match(message.data, /\r\nMessage-ID: <[0-9a-f]{32}@contoso\.test>\r\n/);
      });

      await t.step("a forged token fails with AuthError after the challenge", async () => {
        const sasl = buildXoauth2(user, await token(stranger.privateKey));
        const error = await smtpOver(port, pki.caPem, { sasl, mailbox: user })
          .then(() => assert.fail("should fail"), (e: unknown) => e);
        assert.ok(error instanceof AuthError, String(error));
        assert.equal(error.code, "SMTP_AUTH_FAILED");
        assert.match(error.message, /535 5\.7\.8 Authentication failed/);
        assert.match(error.message, /server detail: status 401/);
        assert.equal(dovecot.relayed.length, 1, "nothing more was relayed");
      });
    } finally {
      await dovecot.stop();
      await Deno.remove(pki.dir, { recursive: true });
    }
  },
});

Deno.test("loginSmtp() logs in after STARTTLS and stops: no QUIT", async () => {
  const transport = new ScriptedTransport(EXCHANGE_LOGIN);
  const capabilities = await loginSmtp(transport, OPTIONS);
  transport.assertDone();
  assert.ok(capabilities.includes("AUTH LOGIN XOAUTH2"));
});

Deno.test("loginSmtp() throws SMTP_AUTH_FAILED on a refused token without QUIT", async () => {
  const transport = new ScriptedTransport([
    ...EXCHANGE_AUTH,
    "S: 535 5.7.3 Authentication unsuccessful",
  ]);
  const error = await loginSmtp(transport, OPTIONS).then(
    () => assert.fail("should have failed"),
    (e: unknown) => e,
  );
  transport.assertDone();
  assert.ok(error instanceof ToolError);
  assert.equal(error.code, "SMTP_AUTH_FAILED");
});
