/**
 * `-Bridge <config> -Verbose` (issue 17): each session logs the client's commands and the status
 * of the bridge's answers, never a credential. curl from Debian (POP3 USER/PASS, IMAP
 * AUTHENTICATE PLAIN, SMTP AUTH PLAIN and AUTH LOGIN with a message) and a raw IMAP client (LOGIN
 * with literals, and one with a line end inside a literal) go through one bridge to the
 * Exchange-like server; the bridge's stderr must show their commands and never the local
 * password, its base64 forms, the client secret, a token, or the message's body.
 */
import assert from "node:assert/strict";
import {
  type Bridge,
  KNOWN,
  LOCAL_PASSWORD,
  LOCAL_USER,
  rawMessage,
  show,
  startBridgeWith,
} from "./bridge_helpers.ts";
import { APP, MAILBOX, SECRET, startTestBed } from "../bed/testbed.ts";
import { type ExchangeServer, startExchange } from "../bed/exchange.ts";
import { LineClient } from "../bed/line_client.ts";
import { requireProgram, run } from "../clients/harness.ts";
import { hashPassword } from "../../src/bridge/password.ts";

const BODY = "Body of the scanned page 7f3a, never in a log.";

function curl(url: string, extra: string[] = []) {
  return run("curl", [
    "--silent",
    "--show-error",
    "--max-time",
    "15",
    "--user",
    `${LOCAL_USER}:${LOCAL_PASSWORD}`,
    ...extra,
    url,
  ], { timeoutMs: 30_000 });
}

/** Every access token the Exchange-like server got (inside XOAUTH2 strings), and those strings. */
function tokensSeen(exchange: ExchangeServer): string[] {
  const found = new Set<string>();
  for (const line of exchange.sessions.flatMap((s) => s.received)) {
    for (const word of line.split(" ")) {
      let decoded = "";
      try {
        decoded = atob(word);
      } catch {
        continue;
      }
      const token = decoded.split("\x01").find((p) => p.startsWith("auth=Bearer "))?.slice(12);
      if (token) found.add(token).add(word);
    }
  }
  return [...found];
}

Deno.test("bridge: -Verbose logs each session's commands, never a password, its base64, the secret, a token or the message", async () => {
  requireProgram("curl", "curl");
  const bed = await startTestBed();
  const dir = await Deno.makeTempDir({ prefix: "gia-bridge-verbose-" });
  let exchange: ExchangeServer | undefined;
  let bridge: Bridge | undefined;
  try {
    exchange = await startExchange({
      tls: { certPem: bed.pki.certPem, keyPem: bed.pki.keyPem },
      tokenKey: { publicKeyPem: bed.entra.signingKey.publicKeyPem },
      mailboxPermissions: { [MAILBOX]: [APP] },
      contents: { [MAILBOX]: KNOWN.map((m, i) => rawMessage(i + 1, m)) },
    });
    await Deno.writeTextFile(`${dir}/secret`, `${SECRET}\n`, { mode: 0o600 });
    bridge = await startBridgeWith(bed, dir, "verbose", {
      upstream: { POP3: exchange.pop3Port, IMAP: exchange.imapPort, SMTP: exchange.smtpPort },
      passwordHash: await hashPassword(LOCAL_PASSWORD),
      args: ["-Verbose"],
    });
    const ports = bridge.ports;

    const pop3 = await curl(`pop3://127.0.0.1:${ports.POP3}/`);
    assert.equal(pop3.code, 0, show(pop3));
    const imap = await curl(`imap://127.0.0.1:${ports.IMAP}/`);
    assert.equal(imap.code, 0, show(imap));

    // LOGIN with the user name and the password as literals.
    const c = await LineClient.tcp(ports.IMAP ?? 0);
    try {
      await c.nextLine();
      await c.send(`a1 LOGIN {${LOCAL_USER.length}}`);
      assert.equal(await c.line(10_000), "+ Ready for the literal.");
      await c.send(`${LOCAL_USER} {${LOCAL_PASSWORD.length}}`);
      assert.equal(await c.line(10_000), "+ Ready for the literal.");
      await c.send(LOCAL_PASSWORD);
      assert.equal(await c.line(10_000), "a1 OK Logged in.");
      await c.send("a2 LOGOUT");
      assert.match(await c.line(10_000) ?? "", /^\* BYE /);
    } finally {
      await c.close();
    }

    // A password literal with a line end inside: the session ends, nothing of the literal is
    // logged or run (the login inside it would succeed if it were read as a command).
    const cut = await LineClient.tcp(ports.IMAP ?? 0);
    try {
      await cut.nextLine();
      const literal = `first-part\r\nb2 LOGIN ${LOCAL_USER} "${LOCAL_PASSWORD}"`;
      await cut.send(`b1 LOGIN ${LOCAL_USER} {${literal.length}}`);
      assert.equal(await cut.line(10_000), "+ Ready for the literal.");
      await cut.send(literal);
      assert.match(await cut.line(10_000) ?? "", /^b1 BAD /);
      assert.match(await cut.line(10_000) ?? "", /^\* BYE /);
      assert.ok(await cut.closedByServer(10_000), "the bridge closed the session");
    } finally {
      await cut.close();
    }

    const message = `${dir}/message.eml`;
    await Deno.writeTextFile(
      message,
      [`From: ${MAILBOX}`, "To: someone@testbed.localhost", "Subject: Scan", "", BODY, ""]
        .join("\r\n"),
    );
    for (const auth of ["PLAIN", "LOGIN"]) {
      const smtp = await curl(`smtp://127.0.0.1:${ports.SMTP}`, [
        "--login-options",
        `AUTH=${auth}`,
        "--mail-from",
        MAILBOX,
        "--mail-rcpt",
        "someone@testbed.localhost",
        "-T",
        message,
      ]);
      assert.equal(smtp.code, 0, show(smtp));
    }
    await bridge.waitForLines(/bridge: \w+ \S+ user=scanner .* result=relayed/, 5);
    const log = await bridge.stop();
    bridge = undefined;

    const line = (protocol: string, text: string) =>
      new RegExp(`^bridge: ${protocol} 127\\.0\\.0\\.1:\\d+ ${text}$`, "m");
    for (
      const [protocol, text] of [
        ["POP3", "C: CAPA"],
        ["POP3", `C: USER ${LOCAL_USER}`],
        ["POP3", "C: PASS <hidden>"],
        ["POP3", "S: \\+OK"],
        ["POP3", "relay started .*"],
        ["IMAP", "C: \\w+ CAPABILITY"],
        ["IMAP", "C: \\w+ AUTHENTICATE PLAIN <hidden>"],
        ["IMAP", "C: a1 LOGIN <hidden>"],
        ["IMAP", "C: <hidden line>"],
        ["IMAP", "C: <hidden line>"],
        ["IMAP", "S: a1 OK"],
        ["SMTP", "C: EHLO .*"],
        ["SMTP", "C: AUTH PLAIN( <hidden>)?"],
        ["SMTP", "C: AUTH LOGIN( <hidden>)?"],
        ["SMTP", "S: 334"],
        ["SMTP", "S: 235 2\\.7\\.0"],
        ["SMTP", `C: MAIL FROM:<${MAILBOX}>`],
        ["SMTP", "C: RCPT TO:<someone@testbed\\.localhost>"],
        ["SMTP", "C: DATA"],
        ["SMTP", "S: 354"],
        ["SMTP", "C: \\(message: \\d+ bytes\\)"],
        ["SMTP", "C: QUIT"],
      ]
    ) assert.match(log, line(protocol, text), log);
    assert.equal(log.match(/C: \(message: \d+ bytes\)/g)?.length, 2, log);
    assert.match(
      log,
      /bridge: IMAP \S+ C: b1 LOGIN scanner <hidden>\n.* S: \+\n.* C: <hidden line>\n.* S: \* BYE\n.* result=protocol error/,
      log,
    );
    assert.match(
      log,
      /bridge: IMAP \S+ user=- .*result=protocol error \(a literal was not sent whole\)/,
      log,
    );
    assert.doesNotMatch(log, /first-part|C: b2/, log);

    const tokens = tokensSeen(exchange);
    assert.ok(tokens.length >= 2, "the upstream got XOAUTH2 tokens");
    const secrets = [
      LOCAL_PASSWORD,
      btoa(LOCAL_PASSWORD),
      btoa(`\0${LOCAL_USER}\0${LOCAL_PASSWORD}`),
      btoa(`${LOCAL_USER}\0${LOCAL_USER}\0${LOCAL_PASSWORD}`),
      SECRET,
      BODY,
      ...tokens,
    ];
    for (const secret of secrets) assert.ok(!log.includes(secret), `${secret} in:\n${log}`);
    assert.doesNotMatch(log, /eyJ[\w-]{8,}|Bearer/, log);
  } finally {
    await bridge?.stop().catch(() => {});
    await exchange?.close();
    await bed.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
