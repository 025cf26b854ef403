/**
 * Diagnostics that use the token's own facts and the customer's guide, end to
 * end in English and German: the protocol chosen from the token's roles when
 * -Protocol is absent (the guide's POP3-only app), the token's oid in the
 * step-3 commands, mix-ups seen before sending (a GUID as the client secret,
 * the tenant's ID as the client ID), Exchange's 2026 SMTP refusals with their
 * exact commands, and -Diagnose listing each finding with its step.
 */
import assert from "node:assert/strict";
import { json, runCli, secretArgs } from "./cli.ts";
import {
  APP,
  APP_NO_ACCESS,
  APP_NO_ACCESS_SP,
  APP_NO_ROLES,
  APP_POP_ONLY,
  APP_POP_ONLY_SP,
  APP_SP,
  MAILBOX,
  SECRET,
  startTestBed,
  TENANT,
  type TestBed,
} from "../bed/testbed.ts";
import { type ExchangeOptions, startExchange } from "../bed/exchange.ts";

const LANGS = ["en", "de"] as const;
/** What a Secret ID looks like: a GUID. */
const SECRET_ID = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9";

function app(bed: TestBed, clientId: string, secret = SECRET): string[] {
  return [...bed.common(), "-NoTokenCache", ...secretArgs({ clientId, secret })];
}

Deno.test("the token's facts: protocol, oid, mix-ups, SMTP 2026 refusals, in English and German", async (t) => {
  const bed = await startTestBed({ dovecot: true });
  const smtpBed = async (options: Partial<ExchangeOptions>) =>
    await startExchange({
      tls: { certPem: bed.pki.certPem, keyPem: bed.pki.keyPem },
      tokenKey: { publicKeyPem: bed.entra.signingKey.publicKeyPem },
      mailboxPermissions: { [MAILBOX]: [APP] },
      ...options,
    });
  try {
    await t.step(
      "the guide's call without -Protocol tests POP3 (Exchange-like), exit 0",
      async () => {
        for (const lang of LANGS) {
          const args = [...app(bed, APP_POP_ONLY), "-Port", String(bed.exchange.pop3Port)];
          const text = await runCli([...args, "-Verbose", "-Language", lang]);
          assert.equal(text.code, 0, text.stderr);
          assert.match(
            text.stderr,
            lang === "en"
              ? /^The token allows only POP3 \(roles: POP\.AccessAsApp\): testing POP3 on port \d+; -Protocol chooses another\.$/m
              : /^Das Token erlaubt nur POP3 \(roles: POP\.AccessAsApp\): geprüft wird POP3 auf Port \d+; -Protocol wählt ein anderes\.$/m,
          );
          assert.match(text.stdout, /^\+OK User successfully authenticated\.$/m);
          assert.match(text.stderr, /OK: POP3 login to 127\.0\.0\.1:\d+ as box@contoso\.com works/);
          assert.doesNotMatch(text.stdout + text.stderr, /IMAP\.AccessAsApp/);
          assert.doesNotMatch(text.stderr, /WARN/);
          const j = json(await runCli([...args, "-OutputFormat", "Json", "-Language", lang]));
          assert.equal(j.exitCode, 0);
          assert.equal(j.protocol, "POP3");
          assert.deepEqual(j.protocolChoice, { source: "token", reason: "roles: POP.AccessAsApp" });
          assert.deepEqual(j.messages, { count: 3, octets: 14523 });
          assert.deepEqual(j.diagnostics, []);
        }
      },
    );

    await t.step(
      "the guide's call without -Protocol tests POP3 against Dovecot, exit 0",
      async () => {
        const r = await runCli([
          ...app(bed, APP_POP_ONLY),
          "-Port",
          String(bed.dovecot!.pop3sPort),
          "-OutputFormat",
          "Json",
        ]);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        const j = json(r);
        assert.equal(j.protocol, "POP3");
        assert.equal(j.protocolChoice.source, "token");
        assert.equal(j.messages.count, 2);
        assert.doesNotMatch(r.stdout + r.stderr, /IMAP\.AccessAsApp/);
      },
    );

    await t.step("without -Port the chosen protocol's default port (995) is used", async () => {
      const r = await runCli([...app(bed, APP_POP_ONLY), "-OutputFormat", "Json"]);
      const j = json(r);
      assert.equal(j.protocol, "POP3");
      assert.equal(j.server, "127.0.0.1:995");
      assert.doesNotMatch(r.stdout, /IMAP\.AccessAsApp/);
    });

    await t.step("an explicit -Protocol wins; a token with both roles keeps IMAP", async () => {
      const explicit = await runCli([
        ...app(bed, APP_POP_ONLY),
        "-Protocol",
        "IMAP",
        "-Port",
        String(bed.exchange.imapPort),
        "-OutputFormat",
        "Json",
      ]);
      assert.equal(explicit.code, 5, explicit.stdout);
      const e = json(explicit);
      assert.equal(e.protocol, "IMAP");
      assert.deepEqual(e.protocolChoice, { source: "parameter", reason: null });
      assert.equal(e.diagnostics[0].code, "ROLE_MISSING");
      const both = await runCli([...app(bed, APP), "-Port", String(bed.exchange.imapPort)]);
      assert.equal(both.code, 0, both.stderr);
      assert.doesNotMatch(both.stderr, /The token allows only/);
      const j = json(
        await runCli([
          ...app(bed, APP),
          "-Port",
          String(bed.exchange.imapPort),
          "-OutputFormat",
          "Json",
        ]),
      );
      assert.equal(j.protocol, "IMAP");
      assert.deepEqual(j.protocolChoice, {
        source: "default",
        reason: "roles allow both IMAP and POP3",
      });
    });

    await t.step("no role yet and no -Protocol: the advice names POP.AccessAsApp too", async () => {
      for (const lang of LANGS) {
        const r = await runCli([
          ...app(bed, APP_NO_ROLES),
          "-Port",
          String(bed.exchange.imapPort),
          "-OutputFormat",
          "Json",
          "-Language",
          lang,
        ]);
        const j = json(r);
        assert.equal(j.protocolChoice.reason, "roles allow neither IMAP nor POP3");
        assert.equal(j.diagnostics[0].code, "ROLE_MISSING");
        assert.match(j.diagnostics[0].fix, /IMAP\.AccessAsApp \((or|oder) POP\.AccessAsApp/);
        assert.match(j.error.advice.fix, /POP\.AccessAsApp/);
      }
      const explicit = json(
        await runCli([
          ...app(bed, APP_NO_ROLES),
          "-Protocol",
          "IMAP",
          "-Port",
          String(bed.exchange.imapPort),
          "-OutputFormat",
          "Json",
        ]),
      );
      assert.doesNotMatch(explicit.diagnostics[0].fix, /POP\.AccessAsApp/);
    });

    await t.step("the step-3 advice names the token's oid in each command", async () => {
      for (const lang of LANGS) {
        const pop = await runCli([
          ...app(bed, APP_NO_ACCESS),
          "-Protocol",
          "POP3",
          "-Port",
          String(bed.exchange.pop3Port),
          "-OutputFormat",
          "Json",
          "-Language",
          lang,
        ]);
        assert.equal(pop.code, 5, pop.stdout);
        const j = json(pop);
        assert.equal(j.token.claims.oid, APP_NO_ACCESS_SP, "the token's oid is the SP's");
        assert.notEqual(j.token.claims.oid, j.token.claims.appid);
        assert.equal(j.error.code, "POP3_AUTH_FAILED");
        assert.equal(j.error.advice.step, 3);
        for (
          const command of [
            `New-ServicePrincipal -AppId ${APP_NO_ACCESS} -ObjectId ${APP_NO_ACCESS_SP}`,
            `Add-MailboxPermission -Identity ${MAILBOX} -User ${APP_NO_ACCESS_SP} -AccessRights FullAccess`,
            `Set-CASMailbox -Identity ${MAILBOX} -PopEnabled $true`,
          ]
        ) assert.ok(j.error.advice.fix.includes(command), `${lang}: ${command}`);
        const imap = await runCli([
          ...app(bed, APP_NO_ACCESS),
          "-Port",
          String(bed.exchange.imapPort),
          "-Language",
          lang,
        ]);
        assert.equal(imap.code, 6, imap.stderr);
        assert.ok(
          imap.stderr.includes(
            `Add-MailboxPermission -Identity ${MAILBOX} -User ${APP_NO_ACCESS_SP} -AccessRights FullAccess; ` +
              `Set-CASMailbox -Identity ${MAILBOX} -ImapEnabled $true`,
          ),
          imap.stderr,
        );
        assert.match(imap.stderr, lang === "en" ? /^FIX: /m : /^LÖSUNG: /m);
      }
    });

    await t.step(
      "a GUID as -clientsecret: warned before sending, AADSTS7000215 says Secret ID",
      async () => {
        for (const lang of LANGS) {
          const text = await runCli([
            ...app(bed, APP, SECRET_ID),
            "-Port",
            String(bed.exchange.imapPort),
            "-Language",
            lang,
          ]);
          assert.equal(text.code, 3, text.stderr);
          const warning = text.stderr.search(
            lang === "en"
              ? /^WARNING \(step 1 \(app registration\)\): -clientsecret is a GUID: .*Secret ID/m
              : /^WARNUNG \(Schritt 1 \(App-Registrierung\)\): -clientsecret ist eine GUID: .*Geheimnis-ID/m,
          );
          assert.ok(warning >= 0, text.stderr);
          assert.ok(
            warning < text.stderr.indexOf("Get access token from"),
            "warned before sending",
          );
          assert.match(text.stderr, /^ERROR: .*\[AADSTS7000215\]$/m);
          assert.match(
            text.stderr,
            lang === "en"
              ? /^HINT \(step 1 .*\): Entra ID refused the client secret: -clientsecret was the secret's Secret ID \(a GUID\), not its Value\.$/m
              : /^HINWEIS \(Schritt 1 .*\): Entra ID hat den geheimen Clientschlüssel abgelehnt: bei -clientsecret stand die Geheimnis-ID \(eine GUID\), nicht der Wert\.$/m,
          );
          assert.ok(!text.stderr.includes(SECRET_ID), "the secret is never printed");
          // The same from standard input, as mail clients' token commands pass it.
          const piped = await runCli(
            [...app(bed, APP, "-"), "-NoConnect", "-OutputFormat", "Json", "-Language", lang],
            { stdin: SECRET_ID },
          );
          const j = json(piped);
          assert.equal(j.error.code, "AADSTS7000215");
          assert.equal(j.diagnostics[0].code, "CLIENT_SECRET_IS_ID");
          assert.equal(j.diagnostics[0].step, 1);
          assert.match(
            j.error.advice.fix,
            lang === "en" ? /Client secrets: the Value column/ : /Spalte Wert/,
          );
          assert.ok(!piped.stdout.includes(SECRET_ID), "the secret is never printed");
        }
      },
    );

    await t.step(
      "-clientId equal to -tenantID: said before sending and after AADSTS700016",
      async () => {
        for (const lang of LANGS) {
          const r = await runCli([
            ...app(bed, TENANT),
            "-Port",
            String(bed.exchange.imapPort),
            "-OutputFormat",
            "Json",
            "-Language",
            lang,
          ]);
          assert.equal(r.code, 3, r.stdout);
          const j = json(r);
          assert.equal(j.diagnostics[0].code, "CLIENT_ID_IS_TENANT");
          assert.equal(j.error.code, "AADSTS700016");
          assert.equal(j.error.advice.step, 1);
          assert.match(
            j.error.advice.cause,
            lang === "en" ? /-clientId equals -tenantID/ : /-clientId gleich -tenantID/,
          );
          assert.match(
            j.error.advice.fix,
            lang === "en" ? /Application \(client\) ID/ : /Anwendungs-ID \(Client\)/,
          );
        }
      },
    );

    await t.step(
      "AADSTS700016 names the app registration's Object ID as the usual cause",
      async () => {
        for (const lang of LANGS) {
          const r = await runCli([
            ...app(bed, "00000000-1111-2222-3333-444444444444"),
            "-NoConnect",
            "-OutputFormat",
            "Json",
            "-Language",
            lang,
          ]);
          const e = json(r).error;
          assert.equal(e.code, "AADSTS700016");
          assert.match(
            e.advice.cause,
            lang === "en"
              ? /Most often the app registration's Object ID was given instead of its Application \(client\) ID/
              : /Meist wurde die Objekt-ID der App-Registrierung statt ihrer Anwendungs-ID \(Client\) angegeben/,
          );
        }
      },
    );

    await t.step(
      "SMTP 2026: 5.7.139 for the tenant, 5.7.30 and 5.2.252 get their commands",
      async () => {
        const tenantOff = await smtpBed({ smtpAuthDisabled: "tenant" });
        const retired = await smtpBed({ smtpAuthDisabled: "basic-retired" });
        const sendAs = await smtpBed({ smtpSendAsDenied: "data" });
        try {
          const cases: [number, string, number, string, string[]][] = [
            [tenantOff.smtpPort, APP, 5, "SMTP_AUTH_DISABLED_TENANT", [
              "Set-TransportConfig -SmtpClientAuthenticationDisabled $false",
              `Set-CASMailbox -Identity ${MAILBOX} -SmtpClientAuthenticationDisabled $false`,
            ]],
            [retired.smtpPort, APP, 5, "SMTP_BASIC_AUTH_RETIRED", [
              "SMTP.SendAsApp",
              `New-ServicePrincipal -AppId ${APP} -ObjectId ${APP_SP}`,
              `Set-CASMailbox -Identity ${MAILBOX} -SmtpClientAuthenticationDisabled $false`,
              "Set-TransportConfig -SmtpClientAuthenticationDisabled $false",
            ]],
            [sendAs.smtpPort, APP_NO_ACCESS, 6, "SMTP_SEND_AS_DENIED", [
              `Add-RecipientPermission -Identity ${MAILBOX} -Trustee ${APP_NO_ACCESS_SP} -AccessRights SendAs`,
            ]],
          ];
          for (const [port, clientId, exit, code, commands] of cases) {
            for (const lang of LANGS) {
              const r = await runCli([
                ...app(bed, clientId),
                "-Protocol",
                "SMTP",
                "-Port",
                String(port),
                "-SendTestMessageTo",
                "admin@contoso.com",
                "-OutputFormat",
                "Json",
                "-Language",
                lang,
              ]);
              assert.equal(r.code, exit, `${code} ${lang}: ${r.stdout}`);
              const e = json(r).error;
              assert.equal(e.code, code);
              assert.equal(e.advice.step, 3);
              for (const command of commands) {
                assert.ok(e.advice.fix.includes(command), `${code} ${lang}: ${command}`);
              }
            }
          }
          const last = sendAs.sessions.at(-1)!;
          assert.ok(
            last.sent.some((l) => /^554 5\.2\.252 SendAsDenied; /.test(l)),
            "Exchange's reply",
          );
          assert.equal(last.delivered.length, 0);
        } finally {
          await Promise.all([tenantOff.close(), retired.close(), sendAs.close()]);
        }
      },
    );

    await t.step(
      "-Protocol SMTP checks the token for SMTP.SendAsApp (warned, both languages)",
      async () => {
        for (const lang of LANGS) {
          const r = await runCli([
            ...app(bed, APP_POP_ONLY),
            "-Protocol",
            "SMTP",
            "-Port",
            String(bed.exchange.smtpPort),
            "-Language",
            lang,
          ]);
          assert.equal(r.code, 5, r.stderr);
          assert.match(
            r.stderr,
            lang === "en"
              ? /^WARNING \(step 2 .*\): The token has no SMTP\.SendAsApp role/m
              : /^WARNUNG \(Schritt 2 .*\): Das Token hat keine Rolle SMTP\.SendAsApp/m,
          );
          assert.doesNotMatch(r.stderr, /The token allows only|Das Token erlaubt nur/);
        }
      },
    );

    await t.step("-Diagnose lists each finding as a line with its step", async () => {
      const guid = await runCli([
        ...app(bed, APP, SECRET_ID),
        "-Port",
        String(bed.exchange.imapPort),
        "-Diagnose",
      ], { env: { LANG: "C" } });
      assert.equal(guid.code, 3);
      assert.match(
        guid.stdout,
        /^\[OK\] Parameters well-formed\n {2}! step 1 \(app registration\): -clientsecret is a GUID: .* \[CLIENT_SECRET_IS_ID\]\n\[OK\] Entra ID reachable .*\n\[FAIL\] Access token obtained: AADSTS7000215$/m,
      );
      const pop = await runCli([
        ...app(bed, APP_POP_ONLY),
        "-Port",
        String(bed.exchange.pop3Port),
        "-Diagnose",
        "-Language",
        "de",
      ], { env: { LANG: "de_DE.UTF-8" } });
      assert.equal(pop.code, 0, pop.stderr);
      assert.match(
        pop.stdout,
        /^\u2713 Token hat die nötige .*\n {2}i Schritt 2 \(API-Berechtigung und Administratoreinwilligung\): Das Token erlaubt nur POP3 .*\n {2}i Schritt 3 \(Exchange-Dienstprinzipal und Postfachberechtigung\): Die Objekt-ID der Unternehmensanwendung \(oid des Tokens\) ist d7e1b3a5-9c2f-4e6d-8a0b-3c5e7f9a1b2d: /m,
      );
      assert.ok(pop.stdout.includes(APP_POP_ONLY_SP));
      assert.match(pop.stdout, /^\u2713 XOAUTH2-Anmeldung \(POP3\)$/m);
      const same = json(
        await runCli([
          ...app(bed, TENANT),
          "-Port",
          String(bed.exchange.imapPort),
          "-Diagnose",
          "-OutputFormat",
          "Json",
        ]),
      );
      const parameters = same.checklist.find((c: { id: string }) => c.id === "parameters");
      assert.equal(parameters.ok, true);
      assert.deepEqual(
        parameters.notes.map((n: { code: string; step: number }) => [n.code, n.step]),
        [["CLIENT_ID_IS_TENANT", 1]],
      );
      assert.equal(same.error.advice.step, 1);
    });
  } finally {
    await bed.close();
  }
});
