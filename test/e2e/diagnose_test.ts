/**
 * Diagnostics end to end, in English and German: each broken setup produced by
 * the fake Entra ID, the Exchange-like server and Dovecot gives the right exit
 * code, error code, setup step, and a fix with the user's own values; a token
 * without the protocol's role is flagged before connecting; -Diagnose stops
 * at the right check.
 */
import assert from "node:assert/strict";
import { json, runCli, secretArgs } from "./cli.ts";
import {
  APP,
  APP_NO_ACCESS,
  APP_NO_ROLES,
  EXPIRED_SECRET,
  MAILBOX,
  OTHER_MAILBOX,
  PUBLIC_APP,
  SECRET,
  startTestBed,
  TENANT,
  type TestBed,
} from "../bed/testbed.ts";

interface Case {
  name: string;
  args: (bed: TestBed) => string[];
  exit: number;
  code: string;
  step: number | string;
  /** Values the fix or cause must contain. */
  contains: (bed: TestBed) => string[];
  /** The -Diagnose check that fails. */
  check: string;
}

const UNKNOWN_APP = "00000000-1111-2222-3333-444444444444";
const UNKNOWN_TENANT = "0badbad0-0000-4000-8000-000000000000";

function base(bed: TestBed, clientId = APP, secret = SECRET, mailbox = MAILBOX) {
  return [...bed.common(), "-NoTokenCache", ...secretArgs({ clientId, secret, mailbox })];
}

const CASES: Case[] = [
  {
    name: "secret ID instead of value",
    args: (
      bed,
    ) => [...base(bed, APP, "0f1e2d3c-secret-id-4b5a"), "-Port", String(bed.exchange.imapPort)],
    exit: 3,
    code: "AADSTS7000215",
    step: 1,
    contains: () => [APP],
    check: "token",
  },
  {
    name: "expired secret",
    args: (bed) => [...base(bed, APP, EXPIRED_SECRET), "-Port", String(bed.exchange.imapPort)],
    exit: 3,
    code: "AADSTS7000222",
    step: 1,
    contains: () => [APP],
    check: "token",
  },
  {
    name: "unknown app",
    args: (bed) => [...base(bed, UNKNOWN_APP), "-Port", String(bed.exchange.imapPort)],
    exit: 3,
    code: "AADSTS700016",
    step: 1,
    contains: () => [UNKNOWN_APP, TENANT],
    check: "token",
  },
  {
    name: "unknown tenant",
    args: (
      bed,
    ) => [
      ...base(bed).map((a) => (a === TENANT ? UNKNOWN_TENANT : a)),
      "-Port",
      String(bed.exchange.imapPort),
    ],
    exit: 3,
    code: "AADSTS90002",
    step: 1,
    contains: () => [UNKNOWN_TENANT],
    check: "authority",
  },
  {
    name: "certificate not uploaded",
    args: (bed) => [
      ...bed.common(),
      "-NoTokenCache",
      "-clientId",
      APP,
      "-clientcertificate",
      bed.unknownCert.combinedFile,
      "-targetMailbox",
      MAILBOX,
      "-Port",
      String(bed.exchange.imapPort),
    ],
    exit: 3,
    code: "AADSTS700027",
    step: 1,
    contains: () => [APP],
    check: "token",
  },
  {
    name: "no admin consent (no roles): the server refuses the login",
    args: (bed) => [...base(bed, APP_NO_ROLES), "-Port", String(bed.exchange.imapPort)],
    exit: 5,
    code: "IMAP_AUTH_FAILED",
    step: 2,
    contains: () => ["IMAP.AccessAsApp", APP_NO_ROLES],
    check: "claims",
  },
  {
    name: "no FullAccess on the mailbox (IMAP)",
    args: (bed) => [...base(bed, APP_NO_ACCESS), "-Port", String(bed.exchange.imapPort)],
    exit: 6,
    code: "IMAP_NOT_CONNECTED",
    step: 3,
    contains: () => [`Add-MailboxPermission -Identity ${MAILBOX}`],
    check: "mailbox",
  },
  {
    name: "service principal / FullAccess missing (POP3)",
    args: (
      bed,
    ) => [...base(bed, APP_NO_ACCESS), "-Protocol", "POP3", "-Port", String(bed.exchange.pop3Port)],
    exit: 5,
    code: "POP3_AUTH_FAILED",
    step: 3,
    contains: () => [
      `New-ServicePrincipal -AppId ${APP_NO_ACCESS}`,
      `-Identity ${MAILBOX} -PopEnabled $true`,
    ],
    check: "login",
  },
  {
    name: "Exchange refuses the app for an unknown mailbox (IMAP)",
    args: (
      bed,
    ) => [...base(bed, APP, SECRET, "nobody@contoso.com"), "-Port", String(bed.exchange.imapPort)],
    exit: 5,
    code: "IMAP_AUTH_FAILED",
    step: 3,
    contains: () => [`New-ServicePrincipal -AppId ${APP}`, "nobody@contoso.com"],
    check: "login",
  },
  {
    name: "Dovecot refuses the token for another mailbox",
    args: (
      bed,
    ) => [...base(bed, APP, SECRET, OTHER_MAILBOX), "-Port", String(bed.dovecot!.imapsPort)],
    exit: 5,
    code: "IMAP_AUTH_FAILED",
    step: 3,
    contains: () => [OTHER_MAILBOX],
    check: "login",
  },
  {
    name: "device-code sign-in with a confidential app (public client flows off)",
    args: (bed) => [...bed.common(), "-NoTokenCache", "-clientId", APP, "-DeviceCode"],
    exit: 3,
    code: "AADSTS7000218",
    step: 1,
    contains: () => [APP],
    check: "token",
  },
  {
    name: "a scope that is not valid",
    args: (
      bed,
    ) => [
      ...bed.common(),
      "-NoTokenCache",
      "-clientId",
      PUBLIC_APP,
      "-DeviceCode",
      "-Scopes",
      "User.Read",
    ],
    exit: 3,
    code: "AADSTS70011",
    step: "client",
    contains: () => ["https://outlook.office365.com/.default"],
    check: "token",
  },
  {
    name: "a scope of a resource the tenant does not have",
    args: (bed) => [
      ...bed.common(),
      "-NoTokenCache",
      "-clientId",
      PUBLIC_APP,
      "-DeviceCode",
      "-Scopes",
      "https://unknown.example.com/.default",
    ],
    exit: 3,
    code: "AADSTS500011",
    step: 2,
    contains: () => ["https://outlook.office365.com/"],
    check: "token",
  },
  {
    name: "nothing listens on the port",
    args: (bed) => [...base(bed), "-Port", "1"],
    exit: 4,
    code: "CONNECTION_REFUSED",
    step: "network",
    contains: () => ["-Port"],
    check: "server",
  },
];

Deno.test("diagnostics: each broken setup names its step and fix, in English and German", async (t) => {
  const bed = await startTestBed({ dovecot: true });
  try {
    for (const c of CASES) {
      await t.step(c.name, async () => {
        for (const lang of ["en", "de"]) {
          const r = await runCli([...c.args(bed), "-OutputFormat", "Json", "-Language", lang]);
          assert.equal(r.code, c.exit, `${lang}: ${r.stdout}${r.stderr}`);
          const e = json(r).error;
          assert.equal(e.code, c.code, lang);
          assert.equal(e.advice.step, c.step, lang);
          for (const value of c.contains(bed)) {
            assert.ok(
              `${e.advice.cause} ${e.advice.fix}`.includes(value),
              `${lang}: ${value} in ${e.advice.fix}`,
            );
          }
          if (lang === "de") assert.doesNotMatch(e.advice.cause, /\bthe\b/i, "German text");
        }
      });
    }

    await t.step(
      "a token without the protocol's role is flagged before connecting (step 2)",
      async () => {
        const r = await runCli([
          ...base(bed, APP_NO_ROLES),
          "-Port",
          String(bed.exchange.imapPort),
        ]);
        const warning = r.stderr.indexOf("WARNING (step 2");
        const connect = r.stderr.indexOf("Connect to");
        assert.ok(warning >= 0, r.stderr);
        assert.ok(warning < connect, "warned before connecting");
        assert.match(r.stderr, /FIX: App registrations > .* > IMAP\.AccessAsApp/);
        const j = json(
          await runCli([
            ...base(bed, APP_NO_ROLES),
            "-Port",
            String(bed.exchange.imapPort),
            "-OutputFormat",
            "Json",
          ]),
        );
        assert.equal(j.diagnostics[0].code, "ROLE_MISSING");
        assert.equal(j.diagnostics[0].step, 2);
        const de = await runCli([
          ...base(bed, APP_NO_ROLES),
          "-Port",
          String(bed.exchange.imapPort),
          "-Language",
          "de",
        ]);
        assert.match(
          de.stderr,
          /WARNUNG \(Schritt 2 .*\): Das Token hat keine Rolle IMAP\.AccessAsApp/,
        );
        assert.match(de.stderr, /NO AUTHENTICATE failed\./, "server lines are never translated");
      },
    );

    await t.step("-Diagnose on a healthy setup: every check passes, exit 0", async () => {
      const r = await runCli([
        ...base(bed),
        "-Port",
        String(bed.exchange.imapPort),
        "-Diagnose",
        "-OutputFormat",
        "Json",
      ]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const list = json(r).checklist;
      assert.deepEqual(list.map((c: { id: string }) => c.id), [
        "parameters",
        "authority",
        "token",
        "claims",
        "server",
        "login",
        "mailbox",
      ]);
      assert.ok(list.every((c: { ok: boolean }) => c.ok === true), JSON.stringify(list));
      const text = await runCli([
        ...base(bed),
        "-Protocol",
        "POP3",
        "-Port",
        String(bed.exchange.pop3Port),
        "-Diagnose",
      ], {
        env: { LANG: "de_DE.UTF-8" },
      });
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, /^\u2713 Parameter gültig$/m);
      assert.match(text.stdout, /^\u2713 Postfach nutzbar \(box@contoso\.com\)$/m);
    });

    await t.step(
      "-Diagnose keeps the plain run's exit code and marks the failing check",
      async () => {
        for (const c of CASES) {
          const r = await runCli([...c.args(bed), "-Diagnose", "-OutputFormat", "Json"]);
          // Same setup, same exit code: -Diagnose only adds the checklist.
          assert.equal(r.code, c.exit, `${c.name}: ${r.stdout}`);
          const j = json(r);
          assert.equal(j.error.code, c.code, c.name);
          const list: { id: string; ok: boolean | null }[] = j.checklist;
          const failed = list.findIndex((x) => x.ok === false);
          assert.equal(list[failed]?.id, c.check, `${c.name}: ${JSON.stringify(list)}`);
          assert.ok(list.slice(0, failed).every((x) => x.ok === true), c.name);
          // A claims finding only warns (as without -Diagnose): the login still runs and fails.
          const rest = list.slice(failed + 1);
          const ran = c.check === "claims" ? rest.findIndex((x) => x.ok === false) + 1 : 0;
          assert.ok(
            rest.slice(ran).every((x) => x.ok === null),
            `${c.name}: nothing runs after the failure: ${JSON.stringify(list)}`,
          );
          assert.equal(j.error.advice.step, c.step, c.name);
        }
      },
    );

    await t.step("-Diagnose falls back to ASCII marks when the terminal is not UTF-8", async () => {
      const r = await runCli([
        ...base(bed, APP_NO_ACCESS),
        "-Port",
        String(bed.exchange.imapPort),
        "-Diagnose",
      ], {
        env: { LANG: "C" },
      });
      assert.equal(r.code, 6);
      assert.match(r.stdout, /^\[OK\] Parameters well-formed$/m);
      assert.match(r.stdout, /^\[FAIL\] Mailbox usable \(box@contoso\.com\): IMAP_NOT_CONNECTED$/m);
      assert.match(r.stderr, /^HINT \(step 3 .*\): /m);
      assert.doesNotMatch(r.stdout, /[\u2713\u2717]/);
    });
  } finally {
    await bed.close();
  }
});
