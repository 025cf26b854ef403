/**
 * -Protocol SMTP end to end: the Exchange-like server's submission (STARTTLS,
 * XOAUTH2, Exchange's failure replies) and real Dovecot submission relaying to
 * a sink. The token must never travel before TLS.
 */
import assert from "node:assert/strict";
import { json, runCli, secretArgs } from "./cli.ts";
import { APP, APP_NO_ROLES, MAILBOX, OTHER_MAILBOX, startTestBed } from "../bed/testbed.ts";
import { startExchange } from "../bed/exchange.ts";

Deno.test("SMTP submission against the Exchange-like server and Dovecot", async (t) => {
  const bed = await startTestBed({ dovecot: true });
  const tls = { certPem: bed.pki.certPem, keyPem: bed.pki.keyPem };
  const tokenKey = { publicKeyPem: bed.entra.signingKey.publicKeyPem };
  const permissions = { [MAILBOX]: [APP] };
  const args = (clientId = APP, mailbox = MAILBOX) => [
    ...bed.common(),
    "-NoTokenCache",
    ...secretArgs({ clientId, mailbox }),
    "-Protocol",
    "SMTP",
  ];
  try {
    await t.step("Exchange-like: STARTTLS, XOAUTH2 and one test message (exit 0)", async () => {
      const ex = bed.exchange;
      const r = await runCli([
        ...args(),
        "-Port",
        String(ex.smtpPort),
        "-SendTestMessageTo",
        "admin@contoso.com",
        "-OutputFormat",
        "Json",
      ]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const j = json(r);
      assert.match(j.queued, /Queued mail for delivery/);
      const session = ex.sessions.at(-1)!;
      assert.equal(session.protocol, "SMTP");
      assert.equal(session.credentialsBeforeTls, false);
      const auth = session.received.findIndex((l) => /^AUTH XOAUTH2/.test(l));
      assert.ok(auth > 0 && session.receivedSecure[auth], "AUTH only after STARTTLS");
      assert.equal(session.delivered.length, 1, "exactly one message");
      const text = JSON.stringify(session.delivered[0]);
      for (
        const header of ["Date: ", "Message-ID: <", `From: ${MAILBOX}`, "To: admin@contoso.com"]
      ) {
        assert.ok(text.includes(header), `message has ${header}`);
      }
    });

    await t.step("without -SendTestMessageTo no mail is sent", async () => {
      const r = await runCli([...args(), "-Port", String(bed.exchange.smtpPort)]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(bed.exchange.sessions.at(-1)!.delivered.length, 0);
      assert.match(r.stderr, /OK: SMTP login to 127\.0\.0\.1:\d+ as box@contoso\.com works/);
    });

    await t.step("a server without STARTTLS: exit 4, the token provably never sent", async () => {
      const plain = await startExchange({
        tls,
        tokenKey,
        mailboxPermissions: permissions,
        smtpNoStartTls: true,
      });
      try {
        const r = await runCli([
          ...args(),
          "-Port",
          String(plain.smtpPort),
          "-OutputFormat",
          "Json",
        ]);
        assert.equal(r.code, 4, r.stdout + r.stderr);
        assert.equal(json(r).error.code, "SMTP_NO_STARTTLS");
        const session = plain.sessions.at(-1)!;
        assert.equal(session.credentialsBeforeTls, false);
        assert.ok(!session.received.some((l) => /AUTH|eyJ/.test(l)), session.received.join("\n"));
      } finally {
        await plain.close();
      }
    });

    await t.step("SMTP AUTH disabled for the tenant: Exchange's 5.7.139 with the fix", async () => {
      const off = await startExchange({
        tls,
        tokenKey,
        mailboxPermissions: permissions,
        smtpAuthDisabled: "tenant",
      });
      try {
        const r = await runCli([...args(), "-Port", String(off.smtpPort), "-OutputFormat", "Json"]);
        assert.equal(r.code, 5, r.stdout + r.stderr);
        const e = json(r).error;
        assert.equal(e.code, "SMTP_AUTH_DISABLED_TENANT");
        assert.match(
          e.advice.fix,
          /Set-CASMailbox -Identity box@contoso\.com -SmtpClientAuthenticationDisabled \$false/,
        );
      } finally {
        await off.close();
      }
    });

    await t.step(
      "token without SMTP.SendAsApp: warned before connecting, refused (exit 5)",
      async () => {
        const r = await runCli([
          ...args(APP_NO_ROLES),
          "-Port",
          String(bed.exchange.smtpPort),
          "-OutputFormat",
          "Json",
        ]);
        assert.equal(r.code, 5, r.stdout + r.stderr);
        const j = json(r);
        assert.equal(j.diagnostics[0].code, "ROLE_MISSING");
        assert.match(j.diagnostics[0].fix, /SMTP\.SendAsApp/);
      },
    );

    await t.step(
      "Dovecot submission: login and one message relayed to the sink (exit 0)",
      async () => {
        const dovecot = bed.dovecot!;
        const before = dovecot.relayed.length;
        const r = await runCli([
          ...args(),
          "-Port",
          String(dovecot.submissionPort),
          "-SendTestMessageTo",
          "admin@contoso.com",
          "-OutputFormat",
          "Json",
        ]);
        assert.equal(r.code, 0, r.stdout + r.stderr + (await dovecot.log()));
        assert.equal(dovecot.relayed.length, before + 1);
        const message = dovecot.relayed.at(-1)!;
        assert.deepEqual(message.to, ["admin@contoso.com"]);
        assert.match(message.data, /^Subject: Get-IMAPAccessToken test message\r?$/m);
      },
    );

    await t.step("Dovecot submission refuses a token for another mailbox (exit 5)", async () => {
      const r = await runCli([
        ...args(APP, OTHER_MAILBOX),
        "-Port",
        String(bed.dovecot!.submissionPort),
        "-OutputFormat",
        "Json",
      ]);
      assert.equal(r.code, 5, r.stdout + r.stderr);
      assert.equal(json(r).error.kind, "auth");
    });
  } finally {
    await bed.close();
  }
});
