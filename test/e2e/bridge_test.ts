/**
 * Bridge mode (issue 17): the real CLI runs `-Bridge <config.json>` as a child process;
 * fetchmail and getmail6 (POP3), mbsync and curl (IMAP), curl (SMTP) from Debian (no OAuth at all) log in with a plain
 * password and fetch or send through it with real Dovecot, which gets XOAUTH2 logins with tokens
 * from the fake Entra ID. Raw POP3 and IMAP clients check what fetchmail and curl cannot show: no upstream
 * connection after a wrong local password, a quick -ERR [SYS/TEMP] / NO [UNAVAILABLE] when the
 * upstream is down, one token request for many concurrent sessions, and the log lines (one per
 * session, never a secret).
 */
import assert from "node:assert/strict";
import { runCli } from "./cli.ts";
import {
  assertNoSecretIn,
  type Bridge,
  KNOWN,
  LOCAL_PASSWORD,
  LOCAL_USER,
  pop3Login,
  rawMessage,
  show,
  startBridge,
  startBridgeWith,
} from "./bridge_helpers.ts";
import { APP, MAILBOX, SECRET, startTestBed, TENANT } from "../bed/testbed.ts";
import { type Dovecot, startDovecot } from "../bed/dovecot.ts";
import { type ExchangeServer, startExchange } from "../bed/exchange.ts";
import { LineClient } from "../bed/line_client.ts";
import { freePort } from "../bed/ports.ts";
import {
  maildirMessages,
  requireProgram,
  run,
  type RunResult,
  subjectOf,
  unprivilegedUser,
} from "../clients/harness.ts";
import { hashPassword } from "../../src/bridge/password.ts";

async function fetchmail(dir: string, port: number, password: string): Promise<RunResult> {
  const rc = `${dir}/fetchmailrc`;
  const out = `${dir}/fetched.bsmtp`;
  await Deno.remove(out).catch(() => {});
  await Deno.writeTextFile(
    rc,
    [
      "set no syslog",
      `poll 127.0.0.1 service ${port} protocol pop3 auth password`,
      `  user "${LOCAL_USER}" password "${password}" is "local"`,
      // The bridge listens on loopback without TLS: no opportunistic STLS.
      `  fetchall keep no rewrite sslproto "" bsmtp "${out}"`,
      "",
    ].join("\n"),
    { mode: 0o600 },
  );
  return await run("fetchmail", [
    "-f",
    rc,
    "--pidfile",
    `${dir}/fetchmail.pid`,
    "-i",
    `${dir}/fetchids`,
    "-v",
  ], { env: { HOME: dir }, timeoutMs: 30_000 });
}

/**
 * getmail6 from Debian as a POP3 client with a plain password, delivering to a Maildir. getmail
 * refuses to deliver as root: it runs as `nobody` in a folder of its own.
 */
async function getmail(port: number, password: string): Promise<RunResult & { maildir: string }> {
  const user = unprivilegedUser();
  const dir = await Deno.makeTempDir({ prefix: "gia-bridge-getmail-" });
  const maildir = `${dir}/Maildir`;
  for (const sub of ["cur", "new", "tmp"]) {
    await Deno.mkdir(`${maildir}/${sub}`, { recursive: true });
  }
  await Deno.mkdir(`${dir}/state`);
  await Deno.writeTextFile(
    `${dir}/getmailrc`,
    [
      "[retriever]",
      "type = SimplePOP3Retriever",
      "server = 127.0.0.1",
      `port = ${port}`,
      `username = ${LOCAL_USER}`,
      `password = ${password}`,
      "",
      "[destination]",
      "type = Maildir",
      `path = ${maildir}/`,
      "",
      "[options]",
      "read_all = true",
      "delete = false",
      "verbose = 2",
      "",
    ].join("\n"),
    { mode: 0o600 },
  );
  await user.own(dir);
  // `env` after the user switch, so that runuser's own environment rules cannot drop HOME.
  const [program, ...args] = [
    ...user.prefix,
    "env",
    `HOME=${dir}`,
    "getmail",
    "--getmaildir",
    `${dir}/state`,
    "--rcfile",
    `${dir}/getmailrc`,
  ];
  const r = await run(program, args, { timeoutMs: 30_000 });
  return { ...r, maildir };
}

Deno.test("bridge: fetchmail with a plain password fetches through -Bridge from Dovecot and the Exchange-like server", async (t) => {
  requireProgram("fetchmail", "fetchmail");
  const bed = await startTestBed();
  let dovecot: Dovecot | undefined;
  let exchange: ExchangeServer | undefined;
  const dir = await Deno.makeTempDir({ prefix: "gia-bridge-" });
  const bridges: Bridge[] = [];
  try {
    dovecot = await startDovecot(bed.dovecotOptions({
      mechanisms: ["xoauth2"],
      seed: { [MAILBOX]: KNOWN.map((m, i) => rawMessage(i + 1, m)) },
    }));
    await Deno.writeTextFile(`${dir}/secret`, `${SECRET}\n`, { mode: 0o600 });
    const hash = await hashPassword(LOCAL_PASSWORD);
    const toDovecot = await startBridge(bed, dir, "dovecot", dovecot.pop3sPort, hash);
    bridges.push(toDovecot);
    const logins = async () =>
      (await dovecot?.log() ?? "").split("\n").filter((l) =>
        l.includes(`Login: user=<${MAILBOX}>, method=XOAUTH2`)
      ).length;

    await t.step("the seeded messages arrive; Dovecot saw an XOAUTH2 login", async () => {
      const r = await fetchmail(dir, toDovecot.port, LOCAL_PASSWORD);
      assert.equal(r.code, 0, show(r));
      const fetched = await Deno.readTextFile(`${dir}/fetched.bsmtp`);
      const subjects = fetched.split(/\r?\n/).filter((l) => l.startsWith("Subject: ")).map((l) =>
        subjectOf(l)
      );
      assert.deepEqual(subjects.sort(), KNOWN.map((m) => m.subject).sort(), fetched);
      for (const m of KNOWN) assert.ok(fetched.includes(m.body), `body of ${m.subject}`);
      assert.equal(await logins(), 1);
      await toDovecot.cli.waitForStderr(
        new RegExp(
          `bridge: POP3 127\\.0\\.0\\.1:\\d+ user=${LOCAL_USER} mailbox=${MAILBOX} ` +
            `upstream=127\\.0\\.0\\.1:${dovecot?.pop3sPort} result=relayed \\(\\w+ closed\\) ` +
            "bytes_in=\\d+ bytes_out=\\d+ ms=\\d+",
        ),
      );
    });

    await t.step(
      "getmail6 (POP3, plain password) delivers the seeded messages to a Maildir",
      async () => {
        requireProgram("getmail", "getmail6");
        const before = await logins();
        const r = await getmail(toDovecot.port, LOCAL_PASSWORD);
        try {
          assert.equal(r.code, 0, show(r));
          const messages = await maildirMessages(r.maildir);
          assert.deepEqual(
            messages.map((m) => subjectOf(m)).sort(),
            KNOWN.map((m) => m.subject).sort(),
            show(r),
          );
          for (const m of KNOWN) {
            assert.ok(messages.some((text) => text.includes(m.body)), m.subject);
          }
          assert.equal(await logins(), before + 1, "one XOAUTH2 login at Dovecot");
        } finally {
          await Deno.remove(r.maildir.replace(/\/Maildir$/, ""), { recursive: true });
        }
      },
    );

    await t.step("a wrong local password: -ERR after a delay, no upstream traffic", async () => {
      const [tokens, before] = [bed.entra.tokenRequests.length, await logins()];
      const r = await fetchmail(dir, toDovecot.port, "not the password");
      assert.equal(r.code, 3, show(r)); // fetchmail: authentication failed
      const started = performance.now();
      const lines = await pop3Login(toDovecot.port, "wrong again");
      assert.equal(lines.at(-1), "-ERR [AUTH] Authentication failed.");
      assert.ok(performance.now() - started >= 250, "slowed down");
      assert.equal(bed.entra.tokenRequests.length, tokens, "no token request");
      assert.equal(await logins(), before, "no upstream login");
    });

    await t.step("upstream down: -ERR [SYS/TEMP] at once, the bridge keeps serving", async () => {
      const down = await startBridge(bed, dir, "down", await freePort(), hash);
      bridges.push(down);
      const started = performance.now();
      const lines = await pop3Login(down.port, LOCAL_PASSWORD);
      const ms = performance.now() - started;
      assert.match(lines.at(-1) ?? "", /^-ERR \[SYS\/TEMP\] /);
      assert.ok(ms < 4000, `answered after ${Math.round(ms)} ms`);
      await down.cli.waitForStderr(/result=upstream failed \(CONNECTION_REFUSED: /);
      const again = await pop3Login(down.port, LOCAL_PASSWORD);
      assert.match(again.at(-1) ?? "", /^-ERR \[SYS\/TEMP\] /);
    });

    await t.step("concurrent sessions share one token request", async () => {
      const fresh = await startBridge(bed, dir, "fresh", dovecot?.pop3sPort ?? 0, hash);
      bridges.push(fresh);
      const before = bed.entra.tokenRequests.length;
      const sessions = await Promise.all(
        Array.from({ length: 12 }, () => pop3Login(fresh.port, LOCAL_PASSWORD, ["STAT", "QUIT"])),
      );
      for (const lines of sessions) {
        assert.equal(lines[2], "+OK Logged in.", lines.join("\n"));
        assert.match(lines[3], /^\+OK 2 \d+$/, "STAT relayed from Dovecot");
      }
      assert.equal(bed.entra.tokenRequests.length - before, 1);
    });

    await t.step("the same through the bridge to the Exchange-like server", async () => {
      exchange = await startExchange({
        tls: { certPem: bed.pki.certPem, keyPem: bed.pki.keyPem },
        tokenKey: { publicKeyPem: bed.entra.signingKey.publicKeyPem },
        mailboxPermissions: { [MAILBOX]: [APP] },
        contents: { [MAILBOX]: KNOWN.map((m, i) => rawMessage(i + 1, m)) },
      });
      const toExchange = await startBridge(bed, dir, "exchange", exchange.pop3Port, hash);
      bridges.push(toExchange);
      const r = await fetchmail(dir, toExchange.port, LOCAL_PASSWORD);
      assert.equal(r.code, 0, show(r));
      const fetched = await Deno.readTextFile(`${dir}/fetched.bsmtp`);
      for (const m of KNOWN) {
        assert.ok(fetched.includes(`Subject: ${m.subject}`), fetched);
        assert.ok(fetched.includes(m.body), `body of ${m.subject}`);
      }
      const session = exchange.sessions.at(-1);
      assert.deepEqual(session?.received.slice(0, 1), ["AUTH XOAUTH2"], "XOAUTH2 first, no PASS");
      assert.ok(!session?.received.some((l) => l.includes(LOCAL_PASSWORD)));

      const before = exchange.connections;
      const wrong = await fetchmail(dir, toExchange.port, "not the password");
      assert.equal(wrong.code, 3, show(wrong));
      assert.equal(exchange.connections, before, "no upstream connection for a wrong password");
    });

    await t.step("SIGTERM stops it cleanly; no secret, password or token in its log", async () => {
      const logs: string[] = [];
      for (const b of bridges.splice(0)) logs.push(await b.stop());
      const all = logs.join("\n");
      assert.match(all, /bridge: SIGTERM: no new sessions/);
      assert.match(all, /bridge: stopped \(1 token request\(s\) in all\)/);
      assertNoSecretIn(all, bed);
    });
  } finally {
    for (const b of bridges) await b.stop().catch(() => {});
    await dovecot?.stop();
    await exchange?.close();
    await bed.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

/** curl from Debian as an IMAP client with a plain password (`extra` before the URL). */
function curlImap(port: number, password: string, path = "", extra: string[] = []) {
  return run("curl", [
    "--silent",
    "--show-error",
    "--max-time",
    "15",
    "--user",
    `${LOCAL_USER}:${password}`,
    ...extra,
    `imap://127.0.0.1:${port}/${path}`,
  ], { timeoutMs: 30_000 });
}

Deno.test("bridge: curl with a plain password lists folders and fetches a message through an IMAP -Bridge from Dovecot", async (t) => {
  requireProgram("curl", "curl");
  const bed = await startTestBed();
  let dovecot: Dovecot | undefined;
  const dir = await Deno.makeTempDir({ prefix: "gia-bridge-imap-" });
  const bridges: Bridge[] = [];
  try {
    dovecot = await startDovecot(bed.dovecotOptions({
      mechanisms: ["xoauth2"],
      seed: { [MAILBOX]: KNOWN.map((m, i) => rawMessage(i + 1, m)) },
    }));
    await Deno.writeTextFile(`${dir}/secret`, `${SECRET}\n`, { mode: 0o600 });
    const hash = await hashPassword(LOCAL_PASSWORD);
    const bridge = await startBridge(bed, dir, "imap", dovecot.imapsPort, hash, "IMAP");
    bridges.push(bridge);
    const logins = async () =>
      (await dovecot?.log() ?? "").split("\n").filter((l) =>
        l.includes(`Login: user=<${MAILBOX}>, method=XOAUTH2`)
      ).length;

    await t.step(
      "AUTHENTICATE PLAIN: curl lists the folders; Dovecot saw an XOAUTH2 login",
      async () => {
        const r = await curlImap(bridge.port, LOCAL_PASSWORD);
        assert.equal(r.code, 0, show(r));
        assert.match(r.stdout, /^\* LIST \(.*\) "[^"]*" "?INBOX"?\r?$/m, show(r));
        assert.equal(await logins(), 1);
        await bridge.cli.waitForStderr(
          new RegExp(
            `bridge: IMAP 127\\.0\\.0\\.1:\\d+ user=${LOCAL_USER} mailbox=${MAILBOX} ` +
              `upstream=127\\.0\\.0\\.1:${dovecot?.imapsPort} result=relayed \\(\\w+ closed\\) ` +
              "bytes_in=\\d+ bytes_out=\\d+ ms=\\d+",
          ),
        );
      },
    );

    await t.step("mbsync (isync) with a plain password pulls INBOX into a Maildir", async () => {
      requireProgram("mbsync", "isync");
      const home = await Deno.makeTempDir({ prefix: "gia-bridge-mbsync-" });
      try {
        await Deno.mkdir(`${home}/mail`);
        await Deno.writeTextFile(
          `${home}/mbsyncrc`,
          [
            "IMAPAccount bridge",
            "Host 127.0.0.1",
            `Port ${bridge.port}`,
            `User ${LOCAL_USER}`,
            `Pass "${LOCAL_PASSWORD}"`,
            // The loopback listener has no TLS (yet): mbsync sends the local password in clear.
            "SSLType None",
            "AuthMechs LOGIN",
            "",
            "IMAPStore remote",
            "Account bridge",
            "",
            "MaildirStore local",
            `Path ${home}/mail/`,
            `Inbox ${home}/mail/INBOX`,
            "",
            "Channel inbox",
            "Far :remote:",
            "Near :local:",
            "Patterns INBOX",
            "Create Near",
            "Sync Pull",
            "SyncState *",
            "",
          ].join("\n"),
          { mode: 0o600 },
        );
        const r = await run("mbsync", ["-c", `${home}/mbsyncrc`, "-a"], {
          env: { HOME: home },
          timeoutMs: 30_000,
        });
        assert.equal(r.code, 0, show(r));
        const messages = await maildirMessages(`${home}/mail/INBOX`);
        assert.deepEqual(
          messages.map((m) => subjectOf(m)).sort(),
          KNOWN.map((m) => m.subject).sort(),
          show(r),
        );
      } finally {
        await Deno.remove(home, { recursive: true });
      }
    });

    await t.step("curl fetches a seeded message through the relay", async () => {
      const r = await curlImap(bridge.port, LOCAL_PASSWORD, "INBOX/;UID=1");
      assert.equal(r.code, 0, show(r));
      assert.ok(r.stdout.includes(`Subject: ${KNOWN[0].subject}`), show(r));
      assert.ok(r.stdout.includes(KNOWN[0].body), show(r));
    });

    await t.step("LOGIN with a literal password, then commands relayed to Dovecot", async () => {
      // curl 7.88 always prefers AUTHENTICATE; the LOGIN command comes from a raw client.
      const c = await LineClient.tcp(bridge.port);
      try {
        await c.nextLine();
        const password = new TextEncoder().encode(LOCAL_PASSWORD);
        await c.send(`a1 LOGIN ${LOCAL_USER} {${password.length}}`);
        assert.equal(await c.line(10_000), "+ Ready for the literal.");
        await c.send(LOCAL_PASSWORD);
        assert.equal(await c.line(10_000), "a1 OK Logged in.");
        await c.send("a2 SELECT INBOX");
        const selected: string[] = [];
        for (let line = await c.line(10_000); line !== null; line = await c.line(10_000)) {
          selected.push(line);
          if (line.startsWith("a2 ")) break;
        }
        assert.ok(selected.includes("* 2 EXISTS"), selected.join("\n"));
        assert.match(selected.at(-1) ?? "", /^a2 OK /);
        await c.send("a3 LOGOUT");
        assert.match(await c.line(10_000) ?? "", /^\* BYE /);
      } finally {
        await c.close();
      }
    });

    await t.step(
      "a wrong local password: NO [AUTHENTICATIONFAILED] after a delay, no upstream traffic",
      async () => {
        const [tokens, before] = [bed.entra.tokenRequests.length, await logins()];
        const r = await curlImap(bridge.port, "not the password");
        assert.equal(r.code, 67, show(r)); // curl: login denied
        const c = await LineClient.tcp(bridge.port);
        try {
          assert.match(await c.nextLine(), /^\* OK \[CAPABILITY IMAP4rev1 .*AUTH=PLAIN/);
          const started = performance.now();
          await c.send('a1 LOGIN scanner "wrong again"');
          assert.equal(await c.line(10_000), "a1 NO [AUTHENTICATIONFAILED] Authentication failed.");
          assert.ok(performance.now() - started >= 250, "slowed down");
        } finally {
          await c.close();
        }
        assert.equal(bed.entra.tokenRequests.length, tokens, "no token request");
        assert.equal(await logins(), before, "no upstream login");
      },
    );

    await t.step("upstream down: NO [UNAVAILABLE] at once", async () => {
      const down = await startBridge(bed, dir, "imap-down", await freePort(), hash, "IMAP");
      bridges.push(down);
      const c = await LineClient.tcp(down.port);
      try {
        await c.nextLine();
        const started = performance.now();
        await c.send(`a1 LOGIN ${LOCAL_USER} "${LOCAL_PASSWORD}"`);
        assert.match(await c.line(10_000) ?? "", /^a1 NO \[UNAVAILABLE\] /);
        assert.ok(performance.now() - started < 4000, "answered quickly");
      } finally {
        await c.close();
      }
      await down.cli.waitForStderr(/IMAP .*result=upstream failed \(CONNECTION_REFUSED: /);
    });

    await t.step("SIGTERM stops it cleanly; no secret, password or token in its log", async () => {
      const logs: string[] = [];
      for (const b of bridges.splice(0)) logs.push(await b.stop());
      const all = logs.join("\n");
      assertNoSecretIn(all, bed);
    });
  } finally {
    for (const b of bridges) await b.stop().catch(() => {});
    await dovecot?.stop();
    await bed.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

/**
 * The SMTP account's allowedSenders entry (a shared mailbox it may send as, in Exchange). Dovecot
 * 2.3's submission service, standing in for Exchange, does not compare MAIL FROM with the user
 * logged in, so it accepts this sender unchanged, as Exchange does with Send As rights.
 */
const SHARED_SENDER = "noreply@contoso.com";

/** curl from Debian as an SMTP client with AUTH PLAIN and a plain password. */
async function curlSmtp(dir: string, port: number, password: string, from: string) {
  const message = `${dir}/message.eml`;
  await Deno.writeTextFile(
    message,
    [
      `From: ${from}`,
      "To: someone@testbed.localhost",
      "Subject: Scan from the bridge",
      "",
      "A scanned page.",
      "",
    ].join("\r\n"),
  );
  return await run("curl", [
    "--silent",
    "--show-error",
    "--max-time",
    "15",
    "--user",
    `${LOCAL_USER}:${password}`,
    "--mail-from",
    from,
    "--mail-rcpt",
    "someone@testbed.localhost",
    "-T",
    message,
    `smtp://127.0.0.1:${port}`,
  ], { timeoutMs: 30_000 });
}

Deno.test("bridge: curl with AUTH PLAIN sends through an SMTP -Bridge to Dovecot submission", async (t) => {
  requireProgram("curl", "curl");
  const bed = await startTestBed();
  let dovecot: Dovecot | undefined;
  const dir = await Deno.makeTempDir({ prefix: "gia-bridge-smtp-" });
  const bridges: Bridge[] = [];
  try {
    dovecot = await startDovecot(bed.dovecotOptions({
      mechanisms: ["xoauth2"],
    }));
    const submission = dovecot.submissionPort ?? 0;
    await Deno.writeTextFile(`${dir}/secret`, `${SECRET}\n`, { mode: 0o600 });
    const hash = await hashPassword(LOCAL_PASSWORD);
    const bridge = await startBridgeWith(bed, dir, "smtp", {
      upstream: { SMTP: submission },
      passwordHash: hash,
      allowedSenders: [SHARED_SENDER],
    });
    bridges.push(bridge);
    const logins = async () =>
      (await dovecot?.log() ?? "").split("\n").filter((l) =>
        l.includes(`user=<${MAILBOX}>, method=XOAUTH2`)
      ).length;

    await t.step("the message reaches Dovecot's relay sink from the mapped mailbox", async () => {
      const before = dovecot?.relayed.length ?? 0;
      const r = await curlSmtp(dir, bridge.port, LOCAL_PASSWORD, MAILBOX);
      assert.equal(r.code, 0, show(r));
      assert.equal(dovecot?.relayed.length, before + 1);
      const message = dovecot?.relayed.at(-1);
      assert.equal(message?.from, MAILBOX);
      assert.deepEqual(message?.to, ["someone@testbed.localhost"]);
      assert.ok(message?.data.includes("Subject: Scan from the bridge"), message?.data);
      assert.equal(await logins(), 1, "Dovecot saw one XOAUTH2 login");
      await bridge.cli.waitForStderr(
        new RegExp(`bridge: SMTP .* user=${LOCAL_USER} mailbox=${MAILBOX} .*1 message\\(s\\)`),
      );
    });

    await t.step(
      "MAIL FROM an allowed sender (other case) reaches the sink; the upstream login is the mailbox's",
      async () => {
        const [before, logged] = [dovecot?.relayed.length ?? 0, await logins()];
        const r = await curlSmtp(dir, bridge.port, LOCAL_PASSWORD, SHARED_SENDER.toUpperCase());
        assert.equal(r.code, 0, show(r));
        assert.equal(dovecot?.relayed.length, before + 1);
        assert.equal(dovecot?.relayed.at(-1)?.from, SHARED_SENDER.toUpperCase());
        assert.equal(await logins(), logged + 1, "Dovecot saw an XOAUTH2 login as the mailbox");
        await bridge.cli.waitForStderr(
          new RegExp(
            `bridge: SMTP .* user=${LOCAL_USER} mailbox=${MAILBOX} .*1 message\\(s\\), ` +
              `as allowed sender\\(s\\) ${SHARED_SENDER}\\)`,
          ),
        );
      },
    );

    await t.step("MAIL FROM another address or <>: 550 5.7.1, nothing relayed", async () => {
      const before = dovecot?.relayed.length ?? 0;
      const r = await curlSmtp(dir, bridge.port, LOCAL_PASSWORD, "boss@testbed.localhost");
      assert.notEqual(r.code, 0, show(r));
      assert.match(r.stderr, /550/, show(r));
      const c = await LineClient.tcp(bridge.port);
      try {
        assert.match(await c.nextLine(), /^220 /);
        await c.send(`AUTH PLAIN ${btoa(`\0${LOCAL_USER}\0${LOCAL_PASSWORD}`)}`);
        assert.equal(await c.line(10_000), "235 2.7.0 Authentication successful");
        await c.send("MAIL FROM:<>");
        assert.match(await c.line(10_000) ?? "", /^550 5\.7\.1 The null sender <> is not relayed/);
        await c.send("MAIL FROM:<*@testbed.localhost>");
        assert.equal(
          await c.line(10_000),
          `550 5.7.1 This account may send only as <${MAILBOX}> or its 1 allowed sender(s)`,
        );
        await c.send("QUIT");
        assert.equal(await c.line(10_000), "221 2.0.0 Bye");
      } finally {
        await c.close();
      }
      assert.equal(dovecot?.relayed.length, before);
      await bridge.cli.waitForStderr(
        /result=relayed \(quit, 0 message\(s\), 2 sender\(s\) refused\)/,
      );
    });

    await t.step(
      "a wrong local password: 535 5.7.8, no token request, no upstream login",
      async () => {
        const [tokens, before] = [bed.entra.tokenRequests.length, await logins()];
        const r = await curlSmtp(dir, bridge.port, "not the password", MAILBOX);
        assert.equal(r.code, 67, show(r)); // curl: login denied
        const c = await LineClient.tcp(bridge.port);
        try {
          assert.match(await c.nextLine(), /^220 /);
          await c.send(`AUTH PLAIN ${btoa(`\0${LOCAL_USER}\0wrong again`)}`);
          assert.equal(await c.line(10_000), "535 5.7.8 Authentication credentials invalid");
          await c.send("MAIL FROM:<" + MAILBOX + ">");
          assert.equal(await c.line(10_000), "530 5.7.0 Authentication required");
        } finally {
          await c.close();
        }
        assert.equal(bed.entra.tokenRequests.length, tokens, "no token request");
        assert.equal(await logins(), before, "no upstream login");
      },
    );

    await t.step("upstream down: 454 4.7.0 at once", async () => {
      const down = await startBridge(bed, dir, "smtp-down", await freePort(), hash, "SMTP");
      bridges.push(down);
      const c = await LineClient.tcp(down.port);
      try {
        await c.nextLine();
        await c.send(`AUTH PLAIN ${btoa(`\0${LOCAL_USER}\0${LOCAL_PASSWORD}`)}`);
        assert.match(await c.line(10_000) ?? "", /^454 4\.7\.0 /);
      } finally {
        await c.close();
      }
    });

    await t.step("SIGTERM stops it cleanly; no secret, password or token in its log", async () => {
      const logs: string[] = [];
      for (const b of bridges.splice(0)) logs.push(await b.stop());
      const all = logs.join("\n");
      assertNoSecretIn(all, bed);
    });
  } finally {
    for (const b of bridges) await b.stop().catch(() => {});
    await dovecot?.stop();
    await bed.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("bridge: -Bridge -Diagnose checks the configuration, the token and each account's upstream login", async (t) => {
  const bed = await startTestBed();
  const dir = await Deno.makeTempDir({ prefix: "gia-bridge-diagnose-" });
  try {
    const hash = await hashPassword(LOCAL_PASSWORD);
    const write = async (
      name: string,
      secret: string,
      accounts: Record<string, string>,
      passwordHash = hash,
    ) => {
      await Deno.writeTextFile(`${dir}/${name}.secret`, secret, { mode: 0o600 });
      const config = `${dir}/${name}.json`;
      await Deno.writeTextFile(
        config,
        JSON.stringify({
          tenantId: TENANT,
          clientId: APP,
          credential: { secretFile: `${dir}/${name}.secret` },
          authorityHost: bed.entra.url,
          caFile: bed.pki.caFile,
          listeners: [{ protocol: "POP3", address: "127.0.0.1", port: 0 }],
          upstream: { pop3: { host: "127.0.0.1", port: bed.exchange.pop3Port } },
          accounts: Object.fromEntries(
            Object.entries(accounts).map((
              [user, mailbox],
            ) => [user, { mailbox, passwordHash }]),
          ),
          timeouts: { upstreamSeconds: 5 },
        }),
      );
      return config;
    };
    const diagnose = (config: string) => runCli(["-Bridge", config, "-Diagnose"]);

    await t.step("everything works: one OK line each, exit 0, nothing listens", async () => {
      const logins = bed.exchange.sessions.length;
      const r = await diagnose(await write("good", SECRET, { [LOCAL_USER]: MAILBOX }));
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stderr.trim().split("\n");
      assert.deepEqual(lines.map((l) => l.split(":")[0]), ["OK", "OK", "OK"], r.stderr);
      assert.match(lines[0], /configuration: 1 listener\(s\) \(POP3\), 1 local account\(s\)/);
      assert.match(lines[1], new RegExp(`token for app ${APP}`));
      assert.match(
        lines[2],
        new RegExp(`POP3 login to 127\\.0\\.0\\.1:\\d+ for ${LOCAL_USER} \\(${MAILBOX}\\)`),
      );
      assert.doesNotMatch(r.stderr, /listening/);
      const session = bed.exchange.sessions.at(-1)!;
      assert.equal(bed.exchange.sessions.length, logins + 1);
      assert.equal(session.received[0], "AUTH XOAUTH2");
      assert.ok(!r.stderr.includes(SECRET));
    });

    await t.step(
      "an account whose mailbox the app may not open: FAILED for it, exit 5",
      async () => {
        const r = await diagnose(
          await write("mixed", SECRET, { [LOCAL_USER]: MAILBOX, printer: "other@contoso.com" }),
        );
        assert.equal(r.code, 5, r.stderr);
        assert.match(r.stderr, new RegExp(`^OK: POP3 login .* for ${LOCAL_USER} `, "m"));
        assert.match(
          r.stderr,
          /^FAILED: POP3 login .* for printer \(other@contoso\.com\): .*\[POP3_AUTH_FAILED\]$/m,
        );
      },
    );

    await t.step("a wrong secret: FAILED at the token, exit 3, no upstream login", async () => {
      const logins = bed.exchange.sessions.length;
      const r = await diagnose(await write("bad", "wrong-secret-value", { [LOCAL_USER]: MAILBOX }));
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /^FAILED: token: .*\[AADSTS7000215\]$/m);
      assert.equal(bed.exchange.sessions.length, logins);
      assert.ok(!r.stderr.includes("wrong-secret-value"));
    });

    await t.step(
      "a configuration file that is missing or a folder: exit 2 naming -Bridge",
      async () => {
        for (
          const [path, reason] of [[`${dir}/missing.json`, "file not found"], [
            dir,
            "is a folder, not a file",
          ]]
        ) {
          const r = await runCli(["-Bridge", path], { killAfterMs: 20_000 });
          assert.equal(r.code, 2, r.stderr);
          assert.match(r.stderr, new RegExp(`^ERROR: -Bridge: ${reason}: `, "m"));
          assert.match(r.stderr, /\[BAD_FILE\]/);
        }
      },
    );

    await t.step(
      "the client secret as a local password: exit 2 naming the account, nothing sent or opened",
      async () => {
        const tokens = bed.entra.tokenRequests.length;
        const config = await write(
          "secret-as-password",
          SECRET,
          { [LOCAL_USER]: MAILBOX },
          await hashPassword(SECRET),
        );
        for (const args of [["-Bridge", config], ["-Bridge", config, "-Diagnose"]]) {
          const r = await runCli(args, { killAfterMs: 20_000 });
          assert.equal(r.code, 2, r.stderr);
          assert.match(
            r.stderr,
            new RegExp(
              `accounts\\.${LOCAL_USER}\\.passwordHash: this is the hash of the app's client secret`,
            ),
          );
          assert.doesNotMatch(r.stderr, /listening/);
          assert.ok(!r.stderr.includes(SECRET));
        }
        assert.equal(bed.entra.tokenRequests.length, tokens);
      },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
    await bed.close();
  }
});
