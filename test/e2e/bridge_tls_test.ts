/**
 * Bridge listeners with TLS and the SMTP allow-list (issue 17): one `-Bridge` process with
 * implicit-TLS and STARTTLS listeners for POP3, IMAP and SMTP (a throwaway CA and server
 * certificate made by the test bed), one on 0.0.0.0, and two plain SMTP listeners with an
 * allow-list; real curl (and fetchmail) from Debian log in through them to Dovecot. Raw clients
 * check what curl cannot show: logins refused before STARTTLS, commands pipelined after
 * STARTTLS dropped (CVE-2011-0411), no upstream connection for a client not on the allow-list,
 * idle TLS clients closed.
 */
import assert from "node:assert/strict";
import { type LiveCli, runCli, spawnCli } from "./cli.ts";
import { APP, MAILBOX, SECRET, startTestBed, TENANT } from "../bed/testbed.ts";
import { type Dovecot, startDovecot } from "../bed/dovecot.ts";
import { LineClient } from "../bed/line_client.ts";
import { makeServerPki } from "../bed/pki.ts";
import { requireProgram, run, type RunResult } from "../clients/harness.ts";
import { hashPassword } from "../../src/bridge/password.ts";

const USER = "scanner";
const PASSWORD = "Scanner pass 4 the TLS bridge";
const SUBJECT = "Invoice 1001 for March";
const MESSAGE = [
  "From: Sender <sender@testbed.localhost>",
  `To: ${MAILBOX}`,
  `Subject: ${SUBJECT}`,
  "Message-ID: <bridge-tls-1@testbed.localhost>",
  "Date: Mon, 1 Jan 2024 10:01:00 +0000",
  "",
  "Please pay invoice 1001 by Friday.",
  "",
].join("\n");

const show = (r: RunResult) =>
  `exit ${r.code}${r.timedOut ? " (timed out)" : ""}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;

/** curl with the bridge's CA and a time limit; `--user` unless `user` is null. */
function curl(url: string, ca: string, extra: string[] = [], user: string | null = USER) {
  return run("curl", [
    "--silent",
    "--show-error",
    "--max-time",
    "15",
    "--cacert",
    ca,
    ...(user === null ? [] : ["--user", `${user}:${PASSWORD}`]),
    ...extra,
    url,
  ], { timeoutMs: 30_000 });
}

/** The account's allowedSenders entry (a shared mailbox it may send as, in Exchange). */
const SHARED_SENDER = "noreply@contoso.com";

async function curlSend(url: string, ca: string, dir: string, extra: string[] = [], user?: null) {
  const message = `${dir}/scan.eml`;
  await Deno.writeTextFile(
    message,
    `From: ${MAILBOX}\r\nTo: someone@testbed.localhost\r\nSubject: Scan over TLS\r\n\r\nA page.\r\n`,
  );
  const args = ["--mail-from", MAILBOX, "--mail-rcpt", "someone@testbed.localhost", "-T", message];
  return await curl(url, ca, [...args, ...extra], user);
}

/** Listener index -> port, from the bridge's `listening for ...` lines (in config order). */
async function portsOf(cli: LiveCli, count: number): Promise<number[]> {
  const m = await cli.waitForStderr(new RegExp(`(?:bridge: listening for [^\\n]*\\n){${count}}`));
  return [...m[0].matchAll(/ on [^ ]+:(\d+)/g)].map((p) => Number(p[1]));
}

Deno.test("bridge TLS: curl over implicit TLS and STARTTLS, a 0.0.0.0 listener, the SMTP allow-list", async (t) => {
  requireProgram("curl", "curl");
  const bed = await startTestBed();
  const dir = await Deno.makeTempDir({ prefix: "gia-bridge-tls-" });
  let dovecot: Dovecot | undefined;
  let cli: LiveCli | undefined;
  try {
    dovecot = await startDovecot(bed.dovecotOptions({
      mechanisms: ["xoauth2"],
      seed: { [MAILBOX]: [MESSAGE] },
    }));
    // The bridge's own throwaway CA and certificate, not the upstream's.
    const pki = await makeServerPki(`${dir}/pki`, "bridge");
    const ca = pki.caFile;
    const implicit = { mode: "implicit", certificate: pki.certFile, key: pki.keyFile };
    const starttls = { mode: "starttls", certificate: pki.certFile, key: pki.keyFile };
    await Deno.writeTextFile(`${dir}/secret`, `${SECRET}\n`, { mode: 0o600 });
    const listeners = [
      { protocol: "POP3", address: "127.0.0.1", port: 0, tls: implicit },
      { protocol: "IMAP", address: "127.0.0.1", port: 0, tls: implicit },
      { protocol: "SMTP", address: "127.0.0.1", port: 0, tls: implicit },
      { protocol: "POP3", address: "127.0.0.1", port: 0, tls: starttls },
      { protocol: "IMAP", address: "127.0.0.1", port: 0, tls: starttls },
      { protocol: "SMTP", address: "127.0.0.1", port: 0, tls: starttls },
      { protocol: "IMAP", address: "0.0.0.0", port: 0, tls: implicit },
      {
        protocol: "SMTP",
        address: "127.0.0.1",
        port: 0,
        allowWithoutAuth: [{ address: "127.0.0.1", account: USER }],
      },
      {
        protocol: "SMTP",
        address: "127.0.0.1",
        port: 0,
        allowWithoutAuth: [{ address: "192.0.2.0/24", account: USER }],
      },
    ];
    const config = `${dir}/bridge.json`;
    await Deno.writeTextFile(
      config,
      JSON.stringify({
        tenantId: TENANT,
        clientId: APP,
        credential: { secretFile: `${dir}/secret` },
        authorityHost: bed.entra.url,
        caFile: bed.pki.caFile,
        listeners,
        upstream: {
          pop3: { host: "127.0.0.1", port: dovecot.pop3sPort },
          imap: { host: "127.0.0.1", port: dovecot.imapsPort },
          smtp: { host: "127.0.0.1", port: dovecot.submissionPort },
        },
        accounts: {
          [USER]: {
            mailbox: MAILBOX,
            passwordHash: await hashPassword(PASSWORD),
            allowedSenders: [SHARED_SENDER],
          },
        },
        timeouts: { upstreamSeconds: 5, idleSeconds: 3, shutdownSeconds: 5 },
        failureDelaySeconds: 0.2,
      }),
      { mode: 0o600 },
    );
    cli = spawnCli(["-Bridge", config]);
    const bridge = cli;
    const [pop3s, imaps, smtps, pop3, imap, smtp, anyImaps, allowed, notAllowed] = await portsOf(
      bridge,
      listeners.length,
    );
    const logins = async () =>
      ((await dovecot?.log()) ?? "").split("\n").filter((l) =>
        l.includes(`user=<${MAILBOX}>, method=XOAUTH2`)
      ).length;
    const relayed = () => dovecot?.relayed.length ?? 0;

    await t.step(
      "implicit TLS: curl pop3s://, imaps://, smtps:// with the bridge's CA",
      async () => {
        await bridge.waitForStderr(
          new RegExp(`listening for POP3 on 127\\.0\\.0\\.1:${pop3s} \\(implicit TLS\\)`),
        );
        let r = await curl(`pop3s://127.0.0.1:${pop3s}/1`, ca);
        assert.equal(r.code, 0, show(r));
        assert.ok(r.stdout.includes(`Subject: ${SUBJECT}`), show(r));
        r = await curl(`imaps://127.0.0.1:${imaps}/INBOX/;UID=1`, ca);
        assert.equal(r.code, 0, show(r));
        assert.ok(r.stdout.includes(`Subject: ${SUBJECT}`), show(r));
        const before = relayed();
        r = await curlSend(`smtps://127.0.0.1:${smtps}`, ca, dir);
        assert.equal(r.code, 0, show(r));
        assert.equal(relayed(), before + 1);
        assert.equal(dovecot?.relayed.at(-1)?.from, MAILBOX);
        // One log line per session, with the bytes counted over TLS.
        for (const protocol of ["POP3", "IMAP"]) {
          await bridge.waitForStderr(
            new RegExp(
              `bridge: ${protocol} 127\\.0\\.0\\.1:\\d+ user=${USER} .* result=relayed \\(\\w+ closed\\) ` +
                "bytes_in=[1-9]\\d* bytes_out=[1-9]\\d{2,} ms=\\d+ tls=implicit",
            ),
          );
        }
        await bridge.waitForStderr(
          /bridge: SMTP .* result=relayed \(quit, 1 message\(s\)\).* tls=implicit/,
        );
      },
    );

    await t.step(
      "a plain-text client on the implicit TLS port gets nothing and is closed",
      async () => {
        const c = await LineClient.tcp(pop3s);
        try {
          await c.send(`USER ${USER}`);
          assert.equal(await c.line(500), null, "no plain-text greeting");
          assert.ok(await c.closedByServer(8000), "closed");
        } finally {
          await c.close();
        }
        await bridge.waitForStderr(/result=client TLS handshake failed .*tls=none/);
      },
    );

    await t.step("STARTTLS: curl pop3://, imap://, smtp:// with --ssl-reqd", async () => {
      let r = await curl(`pop3://127.0.0.1:${pop3}/1`, ca, ["--ssl-reqd"]);
      assert.equal(r.code, 0, show(r));
      assert.ok(r.stdout.includes(`Subject: ${SUBJECT}`), show(r));
      r = await curl(`imap://127.0.0.1:${imap}/INBOX/;UID=1`, ca, ["--ssl-reqd"]);
      assert.equal(r.code, 0, show(r));
      assert.ok(r.stdout.includes(`Subject: ${SUBJECT}`), show(r));
      const before = relayed();
      r = await curlSend(`smtp://127.0.0.1:${smtp}`, ca, dir, ["--ssl-reqd"]);
      assert.equal(r.code, 0, show(r));
      assert.equal(relayed(), before + 1);
      for (const protocol of ["POP3", "IMAP", "SMTP"]) {
        await bridge.waitForStderr(
          new RegExp(`bridge: ${protocol} .* user=${USER} .* result=relayed .* tls=starttls`),
        );
      }
    });

    await t.step("a listener on 0.0.0.0 with TLS serves curl", async () => {
      await bridge.waitForStderr(new RegExp(`listening for IMAP on 0\\.0\\.0\\.0:${anyImaps} `));
      const r = await curl(`imaps://127.0.0.1:${anyImaps}/`, ca);
      assert.equal(r.code, 0, show(r));
      assert.match(r.stdout, /INBOX/);
    });

    await t.step(
      "before STARTTLS every login is refused, without a token or upstream login",
      async () => {
        const [tokens, before] = [bed.entra.tokenRequests.length, await logins()];
        // curl without --ssl-reqd does not start TLS: the bridge refuses the password.
        const r = await curl(`pop3://127.0.0.1:${pop3}/1`, ca);
        assert.notEqual(r.code, 0, show(r));

        const p = await LineClient.tcp(pop3);
        try {
          await p.nextLine();
          await p.send("CAPA");
          const capa = await p.until(".");
          assert.ok(capa.includes("STLS") && !capa.includes("USER"), capa.join(" | "));
          await p.send(`USER ${USER}`);
          assert.match(await p.nextLine(), /^-ERR Send STLS first/);
          await p.send(`PASS ${PASSWORD}`);
          assert.match(await p.nextLine(), /^-ERR Send STLS first/);
        } finally {
          await p.close();
        }

        const i = await LineClient.tcp(imap);
        try {
          assert.match(await i.nextLine(), /CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED\]/);
          await i.send(`a LOGIN ${USER} "${PASSWORD}"`);
          assert.match(await i.nextLine(), /^a NO \[PRIVACYREQUIRED\]/);
          await i.send(`b AUTHENTICATE PLAIN ${btoa(`\0${USER}\0${PASSWORD}`)}`);
          assert.match(await i.nextLine(), /^b NO \[PRIVACYREQUIRED\]/);
        } finally {
          await i.close();
        }

        const s = await LineClient.tcp(smtp);
        try {
          await s.nextLine();
          await s.send("EHLO device");
          const ehlo = await s.until("250 ");
          assert.ok(ehlo.includes("250-STARTTLS"), ehlo.join(" | "));
          assert.ok(!ehlo.some((l) => l.includes("AUTH")), "no AUTH before TLS");
          await s.send(`AUTH PLAIN ${btoa(`\0${USER}\0${PASSWORD}`)}`);
          assert.equal(await s.nextLine(), "530 5.7.0 Must issue a STARTTLS command first");
          await s.send(`MAIL FROM:<${MAILBOX}>`);
          assert.equal(await s.nextLine(), "530 5.7.0 Must issue a STARTTLS command first");
        } finally {
          await s.close();
        }
        assert.equal(bed.entra.tokenRequests.length, tokens, "no token request");
        assert.equal(await logins(), before, "no upstream login");
      },
    );

    await t.step("commands pipelined after STARTTLS are dropped (CVE-2011-0411)", async () => {
      const p = await LineClient.tcp(pop3);
      try {
        await p.nextLine();
        // In one packet: the injected USER must not count as sent over TLS.
        await p.raw(`STLS\r\nUSER ${USER}\r\n`);
        assert.equal(await p.nextLine(), "+OK Begin TLS negotiation.");
        await p.startTls(pki.caPem);
        await p.send(`PASS ${PASSWORD}`);
        assert.equal(await p.nextLine(), "-ERR Send USER first.");
        await p.send("QUIT");
        assert.equal(await p.nextLine(), "+OK Bye.");
      } finally {
        await p.close();
      }

      const s = await LineClient.tcp(smtp);
      try {
        await s.nextLine();
        await s.raw(`STARTTLS\r\nAUTH PLAIN ${btoa(`\0${USER}\0${PASSWORD}`)}\r\n`);
        assert.equal(await s.nextLine(), "220 2.0.0 Ready to start TLS");
        await s.startTls(pki.caPem);
        await s.send("EHLO device");
        const ehlo = await s.until("250 ");
        assert.match(ehlo[0], /^250-localhost /, "the EHLO answer comes first, no 235");
        assert.ok(ehlo.includes("250-AUTH PLAIN LOGIN") && !ehlo.includes("250-STARTTLS"));
        await s.send("MAIL FROM:<nobody@testbed.localhost>");
        assert.equal(await s.nextLine(), "530 5.7.0 Authentication required");
      } finally {
        await s.close();
      }

      const i = await LineClient.tcp(imap);
      try {
        await i.nextLine();
        await i.raw(`a STARTTLS\r\nb LOGIN ${USER} "${PASSWORD}"\r\n`);
        assert.equal(await i.nextLine(), "a OK Begin TLS negotiation now.");
        await i.startTls(pki.caPem);
        await i.send("c CAPABILITY");
        assert.deepEqual(await i.until("c "), [
          "* CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN",
          "c OK CAPABILITY completed.",
        ]);
      } finally {
        await i.close();
      }
    });

    await t.step(
      "SMTP allow-list: 127.0.0.1 sends without AUTH where listed, gets 530 elsewhere",
      async () => {
        const before = relayed();
        let r = await curlSend(`smtp://127.0.0.1:${allowed}`, ca, dir, [], null);
        assert.equal(r.code, 0, show(r));
        assert.equal(relayed(), before + 1);
        assert.equal(dovecot?.relayed.at(-1)?.from, MAILBOX);
        await bridge.waitForStderr(
          new RegExp(
            `bridge: SMTP .* user=${USER} mailbox=${MAILBOX} .*1 message\\(s\\), ` +
              "without AUTH by allowWithoutAuth\\)",
          ),
        );

        const [tokens, logged] = [bed.entra.tokenRequests.length, await logins()];
        r = await curlSend(`smtp://127.0.0.1:${notAllowed}`, ca, dir, [], null);
        assert.notEqual(r.code, 0, show(r));
        assert.match(r.stderr, /530/, show(r));
        const s = await LineClient.tcp(allowed);
        try {
          await s.nextLine();
          await s.send("EHLO scanner");
          await s.until("250 ");
          await s.send("MAIL FROM:<boss@testbed.localhost>");
          assert.equal(
            await s.nextLine(),
            `550 5.7.1 This account may send only as <${MAILBOX}> or its 1 allowed sender(s)`,
          );
          await s.send("QUIT");
          assert.equal(await s.nextLine(), "221 2.0.0 Bye");
        } finally {
          await s.close();
        }
        assert.equal(relayed(), before + 1, "nothing more relayed");
        assert.equal(await logins(), logged, "no upstream login");
        assert.equal(bed.entra.tokenRequests.length, tokens, "no token request");
      },
    );

    await t.step(
      "SMTP allow-list: MAIL FROM an allowed sender logs in upstream as the mailbox and relays",
      async () => {
        const [before, logged] = [relayed(), await logins()];
        const s = await LineClient.tcp(allowed);
        try {
          await s.nextLine();
          await s.send("EHLO scanner");
          await s.until("250 ");
          await s.send("MAIL FROM:<>");
          assert.match(await s.nextLine() ?? "", /^550 5\.7\.1 The null sender <> is not relayed/);
          assert.equal(await logins(), logged, "no upstream login for a refused sender");
          await s.send(`MAIL FROM:<${SHARED_SENDER}>`);
          assert.match(await s.nextLine() ?? "", /^250 /);
          await s.send("RCPT TO:<someone@testbed.localhost>");
          assert.match(await s.nextLine() ?? "", /^250 /);
          await s.send("DATA");
          assert.match(await s.nextLine() ?? "", /^354 /);
          await s.raw(
            `From: ${SHARED_SENDER}\r\nSubject: Scan as the shared address\r\n\r\nA page.\r\n.\r\n`,
          );
          assert.match(await s.nextLine() ?? "", /^250 /);
          await s.send("QUIT");
          assert.match(await s.nextLine() ?? "", /^221 /);
        } finally {
          await s.close();
        }
        assert.equal(relayed(), before + 1);
        assert.equal(dovecot?.relayed.at(-1)?.from, SHARED_SENDER);
        assert.equal(await logins(), logged + 1, "one XOAUTH2 login, as the mailbox");
        await bridge.waitForStderr(
          new RegExp(
            `bridge: SMTP .* user=${USER} mailbox=${MAILBOX} .*1 message\\(s\\), ` +
              `as allowed sender\\(s\\) ${SHARED_SENDER}, without AUTH by allowWithoutAuth\\)`,
          ),
        );
      },
    );

    await t.step("an idle client is closed over TLS too, before and after the login", async () => {
      const c = await LineClient.tls(pop3s, pki.caPem);
      try {
        assert.match(await c.nextLine(), /^\+OK /);
        assert.ok(await c.closedByServer(8000), "closed after idleSeconds");
      } finally {
        await c.close();
      }
      const silent = await LineClient.tcp(pop3s); // never starts the handshake
      try {
        assert.ok(await silent.closedByServer(8000), "closed after idleSeconds");
      } finally {
        await silent.close();
      }
      const relay = await LineClient.tcp(pop3);
      try {
        await relay.nextLine();
        await relay.send("STLS");
        await relay.nextLine();
        await relay.startTls(pki.caPem);
        await relay.send(`USER ${USER}`);
        await relay.nextLine();
        await relay.send(`PASS ${PASSWORD}`);
        assert.equal(await relay.nextLine(), "+OK Logged in.");
        assert.ok(await relay.closedByServer(8000), "relay closed after idleSeconds");
      } finally {
        await relay.close();
      }
      await bridge.waitForStderr(/bridge: POP3 .* result=relayed \(idle\) .* tls=starttls/);
    });

    await t.step(
      "a renewed certificate reaches new sessions without a restart; half a renewal does not",
      async () => {
        const renewed = await makeServerPki(`${dir}/pki-renewed`, "renewed");
        // As ACME clients replace files: a new file renamed over the old one.
        const replace = async (path: string, text: string) => {
          await Deno.writeTextFile(`${path}.new`, text);
          await Deno.rename(`${path}.new`, path);
        };
        /** Whether an implicit-TLS IMAP session trusting only `caPem` gets the greeting. */
        const greeted = async (caPem: string) => {
          let c: LineClient | undefined;
          try {
            c = await LineClient.tls(imaps, caPem);
            return /^\* OK/.test(await c.nextLine());
          } catch {
            return false;
          } finally {
            await c?.close().catch(() => {});
          }
        };
        assert.ok(await greeted(pki.caPem), "the certificate it started with");
        await replace(pki.keyFile, renewed.keyPem);
        assert.ok(await greeted(pki.caPem), "a new key beside the old certificate is not used");
        await bridge.waitForStderr(/the changed TLS certificate is not used: .* is not the key of/);
        await replace(pki.certFile, renewed.certPem);
        assert.ok(await greeted(renewed.caPem), "the renewed certificate");
        assert.ok(!(await greeted(pki.caPem)), "no longer the old one");
        await bridge.waitForStderr(/TLS certificate reloaded from .* \(valid until /);
        // STARTTLS listeners too.
        const c = await LineClient.tcp(imap);
        try {
          assert.match(await c.nextLine(), /^\* OK/);
          await c.send("A STARTTLS");
          assert.match(await c.nextLine(), /^A OK/);
          await c.startTls(renewed.caPem);
          await c.send("B CAPABILITY");
          assert.match(await c.nextLine(), /^\* CAPABILITY /);
        } finally {
          await c.close();
        }
        // Back to the first pair for the steps after this one.
        await replace(pki.keyFile, pki.keyPem);
        await replace(pki.certFile, pki.certPem);
        assert.ok(await greeted(pki.caPem));
      },
    );

    await t.step(
      "SIGTERM: a TLS session still open may finish; exit 0; no secret in the log",
      async () => {
        const open = await LineClient.tls(pop3s, pki.caPem);
        let r;
        try {
          await open.nextLine();
          await open.send(`USER ${USER}`);
          await open.nextLine();
          await open.send(`PASS ${PASSWORD}`);
          assert.equal(await open.nextLine(), "+OK Logged in.");
          bridge.kill("SIGTERM");
          await bridge.waitForStderr(/no new sessions/);
          await open.send("STAT");
          assert.match(await open.nextLine(), /^\+OK 1 /, "relayed during the shutdown");
          await open.send("QUIT");
          assert.match(await open.nextLine(), /^\+OK/);
          r = await bridge.done;
        } finally {
          await open.close();
        }
        cli = undefined;
        assert.equal(r.code, 0, r.stderr);
        for (const secret of [SECRET, PASSWORD, btoa(`\0${USER}\0${PASSWORD}`)]) {
          assert.ok(!r.stderr.includes(secret), "a secret in the bridge's log");
        }
        for (const token of bed.entra.issuedTokens) assert.ok(!r.stderr.includes(token));
      },
    );
  } finally {
    if (cli) {
      cli.kill("SIGTERM");
      await cli.done;
    }
    await dovecot?.stop();
    await bed.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("bridge TLS: fetchmail with ssl and sslcertck fetches over implicit TLS and STLS; -Verbose, -Diagnose", async () => {
  requireProgram("fetchmail", "fetchmail");
  const bed = await startTestBed();
  const dir = await Deno.makeTempDir({ prefix: "gia-bridge-tls-fm-" });
  let dovecot: Dovecot | undefined;
  let cli: LiveCli | undefined;
  try {
    dovecot = await startDovecot(bed.dovecotOptions({
      mechanisms: ["xoauth2"],
      seed: { [MAILBOX]: [MESSAGE] },
    }));
    const pki = await makeServerPki(`${dir}/pki`, "bridge");
    const tls = (mode: string) => ({ mode, certificate: pki.certFile, key: pki.keyFile });
    await Deno.writeTextFile(`${dir}/secret`, `${SECRET}\n`, { mode: 0o600 });
    const config = `${dir}/bridge.json`;
    await Deno.writeTextFile(
      config,
      JSON.stringify({
        tenantId: TENANT,
        clientId: APP,
        credential: { secretFile: `${dir}/secret` },
        authorityHost: bed.entra.url,
        caFile: bed.pki.caFile,
        listeners: [
          { protocol: "POP3", port: 0, tls: tls("implicit") },
          { protocol: "POP3", port: 0, tls: tls("starttls") },
        ],
        upstream: { pop3: { host: "127.0.0.1", port: dovecot.pop3sPort } },
        accounts: {
          [USER]: {
            mailbox: MAILBOX,
            passwordHash: await hashPassword(PASSWORD),
            allowedSenders: [SHARED_SENDER],
          },
        },
        timeouts: { upstreamSeconds: 5, idleSeconds: 20, shutdownSeconds: 5 },
      }),
    );
    // -Diagnose names the kinds of listener, with their TLS.
    const diagnose = await runCli(["-Bridge", config, "-Diagnose"]);
    assert.equal(diagnose.code, 0, diagnose.stderr);
    assert.match(
      diagnose.stderr,
      /^OK: configuration: 2 listener\(s\) \(POP3 with implicit TLS, POP3 with STARTTLS\), 1 local account\(s\)$/m,
    );
    cli = spawnCli(["-Bridge", config, "-Verbose"]);
    const [implicit, starttls] = await portsOf(cli, 2);
    for (const [port, options] of [[implicit, "ssl"], [starttls, "sslproto tls1.2+"]] as const) {
      const out = `${dir}/fetched-${port}.bsmtp`;
      await Deno.writeTextFile(
        `${dir}/fetchmailrc`,
        [
          "set no syslog",
          `poll 127.0.0.1 service ${port} protocol pop3 auth password`,
          `  user "${USER}" password "${PASSWORD}" is "local"`,
          `  fetchall keep no rewrite ${options} sslcertck sslcertfile "${pki.caFile}"`,
          // fetchmail checks the certificate's DNS names only: it names localhost.
          "  sslcommonname localhost",
          `  bsmtp "${out}"`,
          "",
        ].join("\n"),
        { mode: 0o600 },
      );
      const r = await run("fetchmail", [
        "-f",
        `${dir}/fetchmailrc`,
        "--pidfile",
        `${dir}/fetchmail.pid`,
        "-i",
        `${dir}/fetchids`,
        "-v",
      ], { env: { HOME: dir }, timeoutMs: 30_000 });
      assert.equal(r.code, 0, `${options}: ${show(r)}`);
      assert.ok((await Deno.readTextFile(out)).includes(`Subject: ${SUBJECT}`), options);
      await cli.waitForStderr(
        new RegExp(
          `bridge: POP3 .* user=${USER} .* tls=${port === implicit ? "implicit" : "starttls"}`,
        ),
      );
    }
    // -Verbose: the commands over STLS, the TLS start, never the password.
    for (
      const text of [
        "C: STLS",
        "S: \\+OK",
        "TLS started",
        "C: CAPA",
        `C: USER ${USER}`,
        "C: PASS <hidden>",
      ]
    ) {
      assert.match(cli.stderr, new RegExp(`^bridge: POP3 127\\.0\\.0\\.1:\\d+ ${text}$`, "m"));
    }
    assert.ok(!cli.stderr.includes(PASSWORD), cli.stderr);
    assert.ok(!cli.stderr.includes(SECRET), cli.stderr);
  } finally {
    if (cli) {
      cli.kill("SIGTERM");
      await cli.done;
    }
    await dovecot?.stop();
    await bed.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("bridge TLS: a non-loopback listener without tls, or a key that does not fit, is exit 2", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gia-bridge-tls-config-" });
  try {
    const pki = await makeServerPki(`${dir}/pki`, "bridge");
    const other = await makeServerPki(`${dir}/pki`, "other");
    await Deno.writeTextFile(`${dir}/secret`, "the-secret\n", { mode: 0o600 });
    const config = (listener: Record<string, unknown>) =>
      JSON.stringify({
        tenantId: TENANT,
        clientId: APP,
        credential: { secretFile: `${dir}/secret` },
        listeners: [{ protocol: "IMAP", port: 0, ...listener }],
        accounts: {
          [USER]: {
            mailbox: MAILBOX,
            passwordHash:
              "scrypt$16384$8$1$c2FsdHNhbHRzYWx0c2FsdA==$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g=",
          },
        },
      });
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ address: "0.0.0.0" }, /listeners\[0\]\.tls: 0\.0\.0\.0 is not a loopback address/],
      [
        {
          address: "0.0.0.0",
          tls: { mode: "implicit", certificate: pki.certFile, key: other.keyFile },
        },
        /listeners\[0\]\.tls\.key: .* is not the key of /,
      ],
    ];
    for (const [listener, message] of cases) {
      await Deno.writeTextFile(`${dir}/bridge.json`, config(listener));
      const r = await runCli(["-Bridge", `${dir}/bridge.json`]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, message);
      assert.match(r.stderr, /BRIDGE_BAD_CONFIG/);
      assert.doesNotMatch(r.stderr, /listening/);
    }
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
