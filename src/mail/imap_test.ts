import assert from "node:assert/strict";
import { AuthError, ConnectionError, InternalError, MailboxError, ToolError } from "../errors.ts";
import { ScriptedTransport, type ScriptStep } from "../../test/mail/scripted_transport.ts";
import { DOVECOT_CHALLENGE, failScript, runScript, SASL } from "../../test/mail/session_helpers.ts";
import { decodeModifiedUtf7, type ImapResult, loginImap, parseValues, runImap } from "./imap.ts";
import type { SessionOptions } from "./types.ts";

const EXCHANGE_GREETING =
  "* OK The Microsoft Exchange IMAP4 service is ready. [TQBXADIAUABSADAAMQBDAEEAMAAwADEAMgA=]";
const EXCHANGE_CAPS =
  "IMAP4 IMAP4rev1 AUTH=PLAIN AUTH=XOAUTH2 SASL-IR UIDPLUS MOVE ID UNSELECT CHILDREN IDLE NAMESPACE LITERAL+";
const DOVECOT_CAPS =
  "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ AUTH=XOAUTH2 AUTH=OAUTHBEARER";
const DOVECOT_GREETING = `* OK [CAPABILITY ${DOVECOT_CAPS}] Dovecot (Debian) ready.`;

/** Exchange up to a successful AUTHENTICATE (tags A01, A02). */
const EXCHANGE_LOGIN: ScriptStep[] = [
  `S: ${EXCHANGE_GREETING}`,
  "C: A01 CAPABILITY",
  `S: * CAPABILITY ${EXCHANGE_CAPS}`,
  "S: A01 OK CAPABILITY completed.",
  `C: A02 AUTHENTICATE XOAUTH2 ${SASL}`,
  "S: A02 OK AUTHENTICATE completed.",
];

const EXCHANGE_LOGOUT: ScriptStep[] = [
  "C: A04 LOGOUT",
  "S: * BYE Microsoft Exchange Server IMAP4 server signing off.",
  "S: A04 OK LOGOUT completed.",
];

function run(
  script: ScriptStep[],
  extra: Partial<SessionOptions> = {},
): Promise<{ result: ImapResult; transport: ScriptedTransport }> {
  return runScript(runImap, script, extra);
}

/** Runs a script that must fail; returns the error after checking the script was followed. */
function fail(script: ScriptStep[]): Promise<ToolError> {
  return failScript(runImap, script);
}

Deno.test("runImap() logs in to Exchange with SASL-IR, lists folders and logs out", async () => {
  const lines: string[] = [];
  const progress: string[] = [];
  const { result, transport } = await run([
    ...EXCHANGE_LOGIN,
    'C: A03 LIST "" *',
    'S: * LIST (\\Marked \\HasNoChildren) "/" "Deleted Items"',
    'S: * LIST (\\HasChildren) "/" Calendar',
    'S: * LIST (\\HasNoChildren) "/" INBOX',
    'S: * LIST (\\HasNoChildren) "/" "Gel&APY-schte Elemente"',
    "S: A03 OK LIST completed.",
    ...EXCHANGE_LOGOUT,
  ], {
    onLine: (dir, line) => lines.push(`${dir}: ${line}`),
    onProgress: (step, message) => progress.push(`${step}: ${message}`),
  });
  assert.deepEqual(result, {
    greeting: EXCHANGE_GREETING,
    capabilities: EXCHANGE_CAPS.split(" "),
    folders: ["Deleted Items", "Calendar", "INBOX", "Gelöschte Elemente"],
  });
  assert.deepEqual(progress, [
    "authenticate: Authenticate using XOAuth2.",
    "list: List folders.",
    "logout: Log out.",
  ]);
  // onLine sees every line raw, in order, including the SASL line (the caller redacts).
  assert.deepEqual(lines, transport.transcript.map((t) => `${t.dir}: ${t.line}`));
  assert.ok(lines.includes(`C: A02 AUTHENTICATE XOAUTH2 ${SASL}`));
  assert.equal(transport.closeCount, 0, "sessions leave closing to the caller");
});

Deno.test("runImap() skips CAPABILITY when Dovecot's greeting carries it", async () => {
  const { result } = await run([
    `S: ${DOVECOT_GREETING}`,
    `C: A01 AUTHENTICATE XOAUTH2 ${SASL}`,
    "S: A01 OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT] Logged in",
    'C: A02 LIST "" *',
    'S: * LIST (\\HasNoChildren) "." INBOX',
    "S: A02 OK List completed (0.001 + 0.000 secs).",
    "C: A03 LOGOUT",
    "S: * BYE Logging out",
    "S: A03 OK Logout completed (0.001 + 0.000 secs).",
  ]);
  assert.deepEqual(result.capabilities, DOVECOT_CAPS.split(" "), "capabilities before login");
  assert.deepEqual(result.folders, ["INBOX"]);
});

Deno.test("runImap() sends the credentials after the continuation without SASL-IR", async () => {
  for (const continuation of ["+", "+ "]) {
    const { result } = await run([
      "S: * OK [CAPABILITY IMAP4rev1 AUTH=XOAUTH2] ready",
      "C: A01 AUTHENTICATE XOAUTH2",
      `S: ${continuation}`,
      `C: ${SASL}`,
      "S: A01 OK AUTHENTICATE completed.",
      'C: A02 LIST "" *',
      'S: * LIST () "/" INBOX',
      "S: A02 OK LIST completed.",
      "C: A03 LOGOUT",
      "S: A03 OK LOGOUT completed.",
    ]);
    assert.deepEqual(result.folders, ["INBOX"]);
  }
});

Deno.test("runImap() ignores untagged lines it does not need", async () => {
  const { result } = await run([
    `S: ${EXCHANGE_GREETING}`,
    "C: A01 CAPABILITY",
    "S: * OK [ALERT] maintenance tonight",
    `S: * CAPABILITY ${EXCHANGE_CAPS}`,
    "S: A01 OK CAPABILITY completed.",
    `C: A02 AUTHENTICATE XOAUTH2 ${SASL}`,
    "S: * 3 EXISTS",
    "S: A02 OK AUTHENTICATE completed.",
    'C: A03 LIST "" *',
    "S: * 1 RECENT",
    'S: * LIST () "/" INBOX',
    "S: A03 OK LIST completed.",
    ...EXCHANGE_LOGOUT,
  ]);
  assert.deepEqual(result.folders, ["INBOX"]);
});

Deno.test("runImap() reports Exchange's rejected login as AuthError IMAP_AUTH_FAILED", async () => {
  const error = await fail([
    `S: ${EXCHANGE_GREETING}`,
    "C: A01 CAPABILITY",
    `S: * CAPABILITY ${EXCHANGE_CAPS}`,
    "S: A01 OK CAPABILITY completed.",
    `C: A02 AUTHENTICATE XOAUTH2 ${SASL}`,
    "S: A02 NO AUTHENTICATE failed.",
  ]);
  assert.ok(error instanceof AuthError);
  assert.equal(error.exitCode, 5);
  assert.equal(error.code, "IMAP_AUTH_FAILED");
  assert.equal(error.message, "IMAP server rejected the login: A02 NO AUTHENTICATE failed.");
});

Deno.test("runImap() answers Dovecot's failure challenge with an empty line", async () => {
  const error = await fail([
    `S: ${DOVECOT_GREETING}`,
    `C: A01 AUTHENTICATE XOAUTH2 ${SASL}`,
    `S: ${DOVECOT_CHALLENGE}`,
    "C:",
    "S: A01 NO [AUTHENTICATIONFAILED] Authentication failed.",
  ]);
  assert.ok(error instanceof AuthError);
  assert.equal(error.code, "IMAP_AUTH_FAILED");
  assert.match(error.message, /A01 NO \[AUTHENTICATIONFAILED\] Authentication failed\./);
  assert.match(
    error.message,
    /status 401, schemes bearer, scope https:\/\/outlook\.office365\.com\/\.default/,
  );
});

Deno.test("runImap() rejects a second challenge after the credentials", async () => {
  const error = await fail([
    `S: ${DOVECOT_GREETING}`,
    `C: A01 AUTHENTICATE XOAUTH2 ${SASL}`,
    `S: ${DOVECOT_CHALLENGE}`,
    "C:",
    `S: ${DOVECOT_CHALLENGE}`,
  ]);
  assert.ok(error instanceof ConnectionError);
  assert.equal(error.code, "IMAP_PROTOCOL_ERROR");
});

Deno.test("runImap() reports AUTHENTICATE refused before the credentials as unsupported", async () => {
  const error = await fail([
    "S: * OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready",
    "C: A01 AUTHENTICATE XOAUTH2",
    "S: A01 NO Unsupported authentication mechanism.",
  ]);
  assert.ok(error instanceof AuthError);
  assert.equal(error.code, "IMAP_XOAUTH2_UNSUPPORTED");
  assert.match(error.message, /A01 NO Unsupported authentication mechanism\./);
  assert.match(error.message, /does not advertise AUTH=XOAUTH2/);
});

Deno.test("runImap() maps Exchange's 'not connected' LIST reply to MailboxError", async () => {
  const error = await fail([
    ...EXCHANGE_LOGIN,
    'C: A03 LIST "" *',
    "S: A03 BAD User is authenticated but not connected.",
  ]);
  assert.ok(error instanceof MailboxError);
  assert.equal(error.exitCode, 6);
  assert.equal(error.code, "IMAP_NOT_CONNECTED");
  assert.match(error.message, /A03 BAD User is authenticated but not connected\.$/);
});

Deno.test("runImap() maps any other LIST failure to IMAP_LIST_FAILED", async () => {
  const error = await fail([
    ...EXCHANGE_LOGIN,
    'C: A03 LIST "" *',
    "S: A03 NO LIST failed: server busy",
  ]);
  assert.ok(error instanceof MailboxError);
  assert.equal(error.code, "IMAP_LIST_FAILED");
  assert.match(error.message, /A03 NO LIST failed: server busy/);
});

Deno.test("runImap() rejects greetings other than * OK", async () => {
  const bye = await fail(["S: * BYE Too many connections"]);
  assert.ok(bye instanceof ConnectionError);
  assert.equal(bye.code, "IMAP_BYE");
  assert.match(bye.message, /\* BYE Too many connections/);

  const pop3 = await fail(["S: +OK The Microsoft Exchange POP3 service is ready."]);
  assert.ok(pop3 instanceof ConnectionError);
  assert.equal(pop3.code, "IMAP_BAD_GREETING");
  assert.equal(pop3.exitCode, 4);
});

Deno.test("runImap() turns * BYE before success into ConnectionError IMAP_BYE", async () => {
  const error = await fail([
    ...EXCHANGE_LOGIN,
    'C: A03 LIST "" *',
    "S: * BYE Connection is closed. 13",
  ]);
  assert.ok(error instanceof ConnectionError);
  assert.equal(error.code, "IMAP_BYE");
  assert.match(error.message, /\* BYE Connection is closed\. 13/);
});

Deno.test("runImap() turns BYE AccessTokenExpired into AuthError TOKEN_EXPIRED", async () => {
  const error = await fail([
    ...EXCHANGE_LOGIN,
    'C: A03 LIST "" *',
    'S: * LIST () "/" INBOX',
    "S: * BYE Session invalidated - AccessTokenExpired",
  ]);
  assert.ok(error instanceof AuthError);
  assert.equal(error.code, "TOKEN_EXPIRED");
  assert.match(error.message, /Session invalidated - AccessTokenExpired/);
});

Deno.test("runImap() treats a reply with a tag it did not send as a protocol violation", async () => {
  const unknown = await fail([...EXCHANGE_LOGIN, 'C: A03 LIST "" *', "S: B07 OK LIST completed."]);
  assert.ok(unknown instanceof ConnectionError);
  assert.equal(unknown.code, "IMAP_PROTOCOL_ERROR");
  assert.match(unknown.message, /B07 OK LIST completed\./);

  const old = await fail([...EXCHANGE_LOGIN, 'C: A03 LIST "" *', "S: A02 OK LIST completed."]);
  assert.equal(old.code, "IMAP_PROTOCOL_ERROR");
});

Deno.test("runImap() rejects malformed and out-of-place lines", async () => {
  for (
    const line of [
      "+ unexpected continuation", // only AUTHENTICATE may be continued
      "garbage", // neither untagged, tagged nor continuation
      "A03 MAYBE LIST completed.", // unknown status
      '* LIST (\\HasNoChildren) "/"', // LIST without a name
      '* LIST (\\HasNoChildren) "/" "unterminated',
    ]
  ) {
    const error = await fail([...EXCHANGE_LOGIN, 'C: A03 LIST "" *', `S: ${line}`]);
    assert.ok(error instanceof ConnectionError, line);
    assert.equal(error.code, "IMAP_PROTOCOL_ERROR", line);
  }
});

Deno.test("runImap() parses quoted names, NIL delimiters and literals in LIST", async () => {
  const { result } = await run([
    ...EXCHANGE_LOGIN,
    'C: A03 LIST "" *',
    'S: * LIST (\\HasNoChildren) NIL "Quote \\" and \\\\ backslash"',
    'S: * LIST (\\HasNoChildren) "/" {10}',
    "S: Sent Items",
    'S: * LIST () "/" {0}',
    "S:",
    // A literal spanning a CRLF; the literal is followed by nothing.
    'S: * LIST () "/" {6}',
    "S: ab",
    "S: cd",
    'S: * LIST () "/" "Rechnungen &- Belege"',
    "S: A03 OK LIST completed.",
    ...EXCHANGE_LOGOUT,
  ]);
  assert.deepEqual(result.folders, [
    'Quote " and \\ backslash',
    "Sent Items",
    "",
    "ab\r\ncd",
    "Rechnungen & Belege",
  ]);
});

Deno.test("runImap() ignores everything that goes wrong during LOGOUT", async () => {
  const endings: ScriptStep[][] = [
    [{ eof: true }], // server hangs up without a word
    ["S: * BYE signing off", { eof: true }],
    ["S: * BYE signing off", "S: A04 NO LOGOUT failed."],
    ["S: garbage"],
    [{ error: new ConnectionError("no answer", { code: "TIMEOUT" }) }],
  ];
  for (const ending of endings) {
    const { result } = await run([
      ...EXCHANGE_LOGIN,
      'C: A03 LIST "" *',
      'S: * LIST () "/" INBOX',
      "S: A03 OK LIST completed.",
      "C: A04 LOGOUT",
      ...ending,
    ]);
    assert.deepEqual(result.folders, ["INBOX"]);
  }
});

Deno.test("runImap() passes transport errors through unchanged", async () => {
  const timeout = new ConnectionError("no answer from host:993 within 1 s", { code: "TIMEOUT" });
  const transport = new ScriptedTransport([...EXCHANGE_LOGIN, 'C: A03 LIST "" *', {
    error: timeout,
  }]);
  await assert.rejects(runImap(transport, { sasl: SASL }), (e) => e === timeout);
  transport.assertDone();
});

Deno.test("runImap() never puts the SASL string in an error message", async () => {
  // A broken server that echoes the command line back.
  const error = await fail([
    `S: ${DOVECOT_GREETING}`,
    `C: A01 AUTHENTICATE XOAUTH2 ${SASL}`,
    `S: A01 BAD Error in IMAP command: A01 AUTHENTICATE XOAUTH2 ${SASL}`,
  ]);
  assert.equal(error.code, "IMAP_AUTH_FAILED");
  assert.match(error.message, /<redacted>/);
});

Deno.test("runImap() refuses to run without a SASL string", async () => {
  const transport = new ScriptedTransport([]);
  await assert.rejects(runImap(transport, { sasl: "" }), InternalError);
});

Deno.test("parseValues() reads atoms, strings, NIL, lists and literals", () => {
  assert.deepEqual(parseValues('(\\HasNoChildren \\Marked) "/" INBOX'), [
    ["\\HasNoChildren", "\\Marked"],
    "/",
    "INBOX",
  ]);
  assert.deepEqual(parseValues('() NIL "a\\"b"'), [[], null, 'a"b']);
  assert.deepEqual(parseValues("(a (b c)) {3}", ["x y"]), [["a", ["b", "c"]], "x y"]);
  assert.equal(parseValues("(unclosed"), undefined);
  assert.equal(parseValues("{3}"), undefined, "literal placeholder without data");
  assert.equal(parseValues(")"), undefined);
});

Deno.test("decodeModifiedUtf7() decodes IMAP folder names", () => {
  assert.equal(decodeModifiedUtf7("Gel&APY-schte Elemente"), "Gelöschte Elemente");
  assert.equal(decodeModifiedUtf7("&-"), "&");
  assert.equal(decodeModifiedUtf7("&ZeVnLIqe-"), "日本語");
  assert.equal(decodeModifiedUtf7("&2D3eAA-"), "😀", "surrogate pair");
  assert.equal(decodeModifiedUtf7("Tom & Jerry"), "Tom & Jerry", "no closing dash");
  assert.equal(decodeModifiedUtf7("&A-"), "&A-", "invalid base64 stays");
  assert.equal(decodeModifiedUtf7("&AP-"), "&AP-", "odd byte count stays");
});

Deno.test("runImap() keeps the SASL string out of a wrong tag it quotes (fuzz finding)", async () => {
  // The tag itself is server text: a server that echoes the SASL string where a tag belongs.
  const error = await fail([
    `S: ${DOVECOT_GREETING}`,
    `C: A01 AUTHENTICATE XOAUTH2 ${SASL}`,
    `S: ${SASL}A01 NO AUTHENTICATE failed.`,
  ]);
  assert.equal(error.code, "IMAP_PROTOCOL_ERROR");
  assert.ok(!error.message.includes(SASL), error.message);
  assert.match(error.message, /reply tagged <redacted>A01 while waiting for A01/);
});

Deno.test("parseValues() refuses deep nesting instead of overflowing the stack (fuzz finding)", () => {
  const deep = "(".repeat(60000) + ")".repeat(60000);
  assert.equal(parseValues(deep), undefined);
  const nested = "(".repeat(100) + ")".repeat(100);
  assert.ok(parseValues(nested), "100 levels are still fine");
});

Deno.test("runImap() reports a deeply nested LIST reply as a protocol violation (fuzz finding)", async () => {
  const error = await fail([
    ...EXCHANGE_LOGIN,
    'C: A03 LIST "" *',
    `S: * LIST ${"(".repeat(60000)} "/" INBOX`,
  ]);
  assert.ok(error instanceof ConnectionError);
  assert.equal(error.code, "IMAP_PROTOCOL_ERROR");
});

Deno.test("runImap() reads a literal sent as many short lines in linear time", async () => {
  // Re-encoding the whole literal for every line took about a minute for 1 MB in 3-byte lines.
  const lines = Array.from({ length: 200_000 }, () => "S: ab");
  const started = performance.now();
  const error = await fail([
    ...EXCHANGE_LOGIN,
    'C: A03 LIST "" *',
    'S: * LIST () "/" {1000000}',
    ...lines,
    { eof: true },
  ]);
  assert.equal(error.code, "CONNECTION_CLOSED");
  assert.ok(performance.now() - started < 5000, "took more than 5 s");
});

Deno.test("loginImap() logs in with XOAUTH2 and stops: no LIST, no LOGOUT", async () => {
  const { result } = await runScript(loginImap, EXCHANGE_LOGIN);
  assert.equal(result, EXCHANGE_GREETING);
});

Deno.test("loginImap() answers Dovecot's failure challenge and throws IMAP_AUTH_FAILED without LOGOUT", async () => {
  const transport = new ScriptedTransport([
    `S: ${DOVECOT_GREETING}`,
    `C: A01 AUTHENTICATE XOAUTH2 ${SASL}`,
    `S: ${DOVECOT_CHALLENGE}`,
    "C: ",
    "S: A01 NO [AUTHENTICATIONFAILED] Authentication failed.",
  ]);
  const error = await loginImap(transport, { sasl: SASL }).then(
    () => assert.fail("should have failed"),
    (e: unknown) => e,
  );
  transport.assertDone();
  assert.ok(error instanceof AuthError);
  assert.equal(error.code, "IMAP_AUTH_FAILED");
  assert.equal(transport.goodbyes.length, 0);
});
