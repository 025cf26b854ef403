/**
 * Proof with real mail clients (issue 7): getmail6, mbsync with the kdexoauth2 SASL plugin,
 * neomutt and curl, from Debian, fetch known messages from real Dovecot with this tool as their
 * token command (credential-helper mode: `-OutputFormat Token`). The configs are the README
 * recipes (test/clients/*, rendered with test-bed values); the test checks the messages that
 * arrive, the token requests the fake Entra ID counts, and Dovecot's log of XOAUTH2 logins.
 *
 * Dovecot offers only XOAUTH2 here, as Exchange Online does, so a client that would prefer
 * OAUTHBEARER (curl) takes the path it takes against Exchange.
 */
import assert from "node:assert/strict";
import { spawnCli } from "./cli.ts";
import {
  APP,
  MAILBOX,
  PUBLIC_APP,
  SECRET,
  startTestBed,
  TENANT,
  type TestBed,
  USER,
} from "../bed/testbed.ts";
import { denyLogins, type Dovecot, startDovecot } from "../bed/dovecot.ts";
import { waitUntil } from "../bed/wait.ts";
import { checkDocs, renderTemplate, shellQuote, type TemplateName } from "../clients/render.ts";
import {
  maildirMessages,
  requireKdeXoauth2,
  requireProgram,
  run,
  type RunResult,
  subjectOf,
  Tmux,
  unprivilegedUser,
  waitForFile,
  writeExecutable,
} from "../clients/harness.ts";

const ROOT = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
const MAIN = `${ROOT}/src/main.ts`;
const DOCS = new URL("../../README.md", import.meta.url);

/** Messages put into the mailbox; each client must deliver exactly these. */
const KNOWN = [
  { subject: "Invoice 1001 for March", body: "Please pay invoice 1001 by Friday." },
  { subject: "Delivery note 2002", body: "Three pallets leave the warehouse today." },
  { subject: "Minutes of meeting 3003", body: "Decided: fetch mail with OAuth2 tokens." },
];
const USER_MESSAGE = { subject: "Lunch on Thursday", body: "Adele's own mailbox works too." };

function rawMessage(i: number, to: string, m: { subject: string; body: string }): string {
  return [
    "From: Sender <sender@testbed.localhost>",
    `To: ${to}`,
    `Subject: ${m.subject}`,
    `Message-ID: <known-${i}@testbed.localhost>`,
    `Date: Mon, 1 Jan 2024 10:0${i}:00 +0000`,
    "",
    m.body,
    "",
  ].join("\n");
}

/** Checks that `messages` are exactly the KNOWN ones, each with its own body. */
function assertKnownMessages(messages: string[], who: string): void {
  assert.deepEqual(
    messages.map(subjectOf).sort(),
    KNOWN.map((m) => m.subject).sort(),
    `${who} delivered other messages than the ones in the mailbox`,
  );
  for (const m of KNOWN) {
    const message = messages.find((x) => subjectOf(x) === m.subject)!;
    assert.ok(message.includes(m.body), `${who}: the body of "${m.subject}" is missing`);
  }
}

function show(r: RunResult): string {
  return `exit ${r.code}${
    r.timedOut ? " (timed out)" : ""
  }\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
}

/** Everything one set of client configs needs, rendered for the test bed. */
interface Setup {
  bed: TestBed;
  dovecot: Dovecot;
  work: string;
  /** Template values: test-bed host, ports, CA and this run's paths. */
  values: Record<string, string>;
  /** Token requests made so far (the fake Entra ID counts them all). */
  tokenRequests(): number;
  /** XOAUTH2 logins of `user` Dovecot has logged so far. */
  logins(user?: string): Promise<number>;
}

/** The tool as a mail client runs it: from source, pointed at the test bed, its own cache. */
function toolCommand(
  bed: TestBed,
  caFile: string,
  cacheDir: string,
  runtime = { deno: Deno.execPath(), main: MAIN },
): string {
  return [
    runtime.deno,
    "run",
    "-A",
    "--quiet",
    runtime.main,
    "-AuthorityHost",
    bed.entra.url,
    "-CaFile",
    caFile,
    "-TokenCachePath",
    cacheDir,
    "-TimeoutSeconds",
    "10",
  ].map(shellQuote).join(" ");
}

/** Writes a rendered token command (mail-token.sh by default) into `dir`; returns its path. */
async function writeTokenCommand(
  dir: string,
  values: Record<string, string>,
  name: TemplateName = "mail-token.sh",
): Promise<string> {
  const path = `${dir}/${name.replace(/\.sh$/, "")}`;
  await writeExecutable(path, await renderTemplate(name, values));
  return path;
}

async function setUp(): Promise<Setup> {
  const bed = await startTestBed();
  let dovecot: Dovecot;
  try {
    dovecot = await startDovecot(bed.dovecotOptions({
      mechanisms: ["xoauth2"],
      denyList: true,
      seed: {
        [MAILBOX]: KNOWN.map((m, i) => rawMessage(i + 1, MAILBOX, m)),
        [USER]: [rawMessage(9, USER, USER_MESSAGE)],
      },
    }));
  } catch (error) {
    await bed.close();
    throw error;
  }
  // Readable by every user: getmail's part runs as `nobody` and copies what it needs from here.
  const work = await Deno.makeTempDir({ prefix: "gia-clients-" });
  const setup = { bed, dovecot, work };
  try {
    return await configure(setup);
  } catch (error) {
    await tearDown(setup);
    throw error;
  }
}

async function configure(
  { bed, dovecot, work }: Pick<Setup, "bed" | "dovecot" | "work">,
): Promise<Setup> {
  await Deno.chmod(work, 0o755);
  const secretFile = `${work}/secret`;
  await Deno.writeTextFile(secretFile, `${SECRET}\n`, { mode: 0o600 });
  const values: Record<string, string> = {
    TOOL: toolCommand(bed, bed.pki.caFile, `${work}/cache`),
    TENANT,
    CLIENT_ID: APP,
    PUBLIC_CLIENT_ID: PUBLIC_APP,
    MAILBOX,
    USER,
    SECRET_FILE: secretFile,
    // The server certificate is valid for localhost (mbsync checks the host name strictly).
    HOST: "localhost",
    IMAP_PORT: String(dovecot.imapsPort),
    POP3_PORT: String(dovecot.pop3sPort),
    CA_FILE: bed.pki.caFile,
    MESSAGE: "1",
  };
  values.TOKEN_COMMAND = await writeTokenCommand(work, values);
  return {
    bed,
    dovecot,
    work,
    values,
    tokenRequests: () => bed.entra.tokenRequests.length,
    async logins(user = MAILBOX) {
      const log = await dovecot.log();
      return log.split("\n").filter((l) => l.includes(`Login: user=<${user}>, method=XOAUTH2`))
        .length;
    },
  };
}

async function tearDown(s: Pick<Setup, "bed" | "dovecot" | "work">): Promise<void> {
  await s.dovecot.stop();
  await s.bed.close();
  await Deno.remove(s.work, { recursive: true }).catch(() => {});
}

/** Runs a rendered curl recipe (test/clients/curl-*.sh) with sh. */
async function curlRecipe(
  s: Setup,
  name: "curl-pop3.sh" | "curl-imap.sh",
  values: Record<string, string> = {},
): Promise<RunResult> {
  requireProgram("curl", "curl");
  const script = await renderTemplate(name, { ...s.values, ...values });
  return await run("sh", ["-c", script], { timeoutMs: 20_000 });
}

async function mbsync(s: Setup, extra: { until?: RegExp } = {}): Promise<RunResult> {
  requireProgram("mbsync", "isync");
  requireKdeXoauth2();
  const rc = `${s.work}/mbsyncrc`;
  await Deno.mkdir(`${s.work}/mbsync`, { recursive: true });
  await Deno.writeTextFile(
    rc,
    await renderTemplate("mbsyncrc", { ...s.values, MBSYNC_DIR: `${s.work}/mbsync/` }),
  );
  return await run("mbsync", ["-c", rc, "-a"], {
    env: { HOME: s.work },
    timeoutMs: 20_000,
    until: extra.until,
  });
}

/** getmail refuses to deliver as root: it runs as `nobody` with its own copy of everything. */
interface GetmailRun {
  (): Promise<RunResult>;
  maildir: string;
}

async function prepareGetmail(s: Setup): Promise<GetmailRun> {
  requireProgram("getmail", "getmail6");
  const user = unprivilegedUser();
  const dir = await Deno.makeTempDir({ dir: s.work, prefix: "getmail-" });
  const maildir = `${dir}/Maildir`;
  for (const sub of ["cur", "new", "tmp"]) {
    await Deno.mkdir(`${maildir}/${sub}`, { recursive: true });
  }
  await Deno.mkdir(`${dir}/state`);
  await Deno.copyFile(s.values.CA_FILE, `${dir}/ca.pem`);
  await Deno.copyFile(s.values.SECRET_FILE, `${dir}/secret`);
  const runtime = await user.runtime(`${dir}/deno`, ROOT, MAIN);
  const values: Record<string, string> = {
    ...s.values,
    TOOL: toolCommand(s.bed, `${dir}/ca.pem`, `${dir}/cache`, runtime),
    SECRET_FILE: `${dir}/secret`,
    CA_FILE: `${dir}/ca.pem`,
    GETMAIL_MAILDIR: `${maildir}/`,
  };
  values.TOKEN_COMMAND = await writeTokenCommand(dir, values);
  await Deno.writeTextFile(`${dir}/getmailrc`, await renderTemplate("getmailrc", values));
  await user.own(dir);
  // `env` after the user switch, so that runuser's own environment rules cannot drop these.
  const [program, ...args] = [
    ...user.prefix,
    "env",
    ...Object.entries({ ...runtime.env, HOME: dir }).map(([k, v]) => `${k}=${v}`),
    "getmail",
    "--getmaildir",
    `${dir}/state`,
    "--rcfile",
    `${dir}/getmailrc`,
  ];
  const fetch = () => run(program, args, { timeoutMs: 30_000 });
  return Object.assign(fetch, { maildir });
}

/** neomutt in a detached tmux: what it shows, and what it copies into a local Maildir. */
async function neomutt(
  s: Setup,
  drive: (tmux: Tmux, session: string, out: string) => Promise<void>,
): Promise<{ exitCode: string }> {
  requireProgram("neomutt", "neomutt");
  requireProgram("tmux", "tmux");
  const dir = await Deno.makeTempDir({ dir: s.work, prefix: "neomutt-" });
  const rc = `${dir}/neomuttrc`;
  await Deno.writeTextFile(rc, await renderTemplate("neomuttrc", s.values));
  const out = `${dir}/copied`;
  // Test-only settings, given on the command line so the config stays the recipe: copy into a
  // new Maildir without asking, quit without asking, and no pause after each message.
  const settings =
    "set confirmcreate = no; set mbox_type = Maildir; set quit = yes; set sleep_time = 0";
  await writeExecutable(
    `${dir}/run.sh`,
    `#!/bin/sh\ncd ${shellQuote(dir)}\nHOME=${shellQuote(dir)} neomutt -n -F ${shellQuote(rc)} -e ${
      shellQuote(settings)
    }\necho $? > ${shellQuote(`${dir}/exit`)}\n`,
  );
  const tmux = new Tmux(`${dir}/tmux.sock`);
  try {
    await tmux.start("neomutt", `${dir}/run.sh`);
    await drive(tmux, "neomutt", out);
    return { exitCode: (await waitForFile(`${dir}/exit`)).trim() };
  } finally {
    await tmux.kill();
  }
}

/** Runs `command` in a tmux terminal (stdin, stdout and stderr are not a terminal for it). */
async function onATerminal(s: Setup, command: string) {
  requireProgram("tmux", "tmux");
  const dir = await Deno.makeTempDir({ dir: s.work, prefix: "terminal-" });
  const q = (name: string) => shellQuote(`${dir}/${name}`);
  const tmux = new Tmux(`${dir}/tmux.sock`);
  try {
    // The command's stdin stays the terminal; only its output goes to files, to be read here.
    await tmux.start(
      "cmd",
      `${shellQuote(command)} > ${q("out")} 2> ${q("err")}; echo $? > ${q("exit")}`,
    );
    const code = (await waitForFile(`${dir}/exit`)).trim();
    return {
      code,
      stdout: await Deno.readTextFile(`${dir}/out`),
      stderr: await Deno.readTextFile(`${dir}/err`),
    };
  } finally {
    await tmux.kill();
  }
}

Deno.test("real mail clients fetch with the token command; a revoked app is reported", async (t) => {
  const s = await setUp();
  // Prepared once: the revocation step needs getmail's user, cache and state from its first runs.
  let getmailRun: Promise<GetmailRun> | undefined;
  try {
    await t.step(
      "the token command prints the token and nothing else; then from the cache",
      async () => {
        const first = await run(s.values.TOKEN_COMMAND, []);
        assert.equal(first.code, 0, show(first));
        assert.equal(first.stdout, `${s.bed.entra.issuedTokens.at(-1)}\n`, "stdout is the token");
        assert.equal(first.stderr, "", "nothing on stderr either");
        // As long as Entra's: XOAUTH2 in neomutt has no 512-byte limit (its OAUTHBEARER has).
        assert.ok(first.stdout.length > 1000, `token of ${first.stdout.length} bytes`);
        const requests = s.tokenRequests();
        const again = await run(s.values.TOKEN_COMMAND, []);
        assert.equal(again.code, 0, show(again));
        assert.equal(again.stdout, first.stdout);
        assert.equal(s.tokenRequests(), requests, "a cached token needs no token request");
      },
    );

    await t.step("curl fetches the messages over POP3 and IMAP (XOAUTH2)", async () => {
      const requests = s.tokenRequests();
      const logins = await s.logins();
      const list = await curlRecipe(s, "curl-pop3.sh", { MESSAGE: "" });
      assert.equal(list.code, 0, show(list));
      assert.equal(list.stdout.trim().split(/\r?\n/).length, KNOWN.length, list.stdout);
      const pop3: string[] = [];
      const imap: string[] = [];
      for (let n = 1; n <= KNOWN.length; n++) {
        const p = await curlRecipe(s, "curl-pop3.sh", { MESSAGE: String(n) });
        assert.equal(p.code, 0, show(p));
        pop3.push(p.stdout);
        const i = await curlRecipe(s, "curl-imap.sh", { MESSAGE: String(n) });
        assert.equal(i.code, 0, show(i));
        imap.push(i.stdout);
      }
      assertKnownMessages(pop3, "curl (POP3)");
      assertKnownMessages(imap, "curl (IMAP)");
      assert.equal(await s.logins(), logins + 1 + 2 * KNOWN.length, "each curl run logged in");
      assert.equal(s.tokenRequests(), requests, "zero token requests: all from the cache");
    });

    await t.step(
      "mbsync (kdexoauth2 SASL plugin) syncs the inbox; again without a token request",
      async () => {
        const requests = s.tokenRequests();
        const logins = await s.logins();
        const first = await mbsync(s);
        assert.equal(first.code, 0, show(first));
        assertKnownMessages(await maildirMessages(`${s.work}/mbsync/INBOX`), "mbsync");
        const second = await mbsync(s);
        assert.equal(second.code, 0, show(second));
        assertKnownMessages(await maildirMessages(`${s.work}/mbsync/INBOX`), "mbsync (again)");
        assert.equal(await s.logins(), logins + 2);
        assert.equal(s.tokenRequests(), requests, "zero token requests: all from the cache");
      },
    );

    await t.step("getmail (IMAP, as an unprivileged user) delivers to a Maildir", async () => {
      const getmail = await (getmailRun ??= prepareGetmail(s));
      const requests = s.tokenRequests();
      const logins = await s.logins();
      const first = await getmail();
      assert.equal(first.code, 0, show(first));
      assert.match(first.stdout, /3 messages \(\d+ bytes\) retrieved/, show(first));
      assert.doesNotMatch(
        first.stdout + first.stderr,
        /wrote to stderr/,
        "the tool wrote to stderr",
      );
      assertKnownMessages(await maildirMessages(getmail.maildir), "getmail");
      assert.equal(s.tokenRequests(), requests + 1, "its own cache: one token request");
      const second = await getmail();
      assert.equal(second.code, 0, show(second));
      assert.match(second.stdout, /0 messages \(0 bytes\) retrieved/, show(second));
      assertKnownMessages(await maildirMessages(getmail.maildir), "getmail (again)");
      assert.equal(await s.logins(), logins + 2);
      assert.equal(s.tokenRequests(), requests + 1, "the second run's token came from the cache");
    });

    await t.step("neomutt (in tmux) shows the inbox and copies the messages", async () => {
      const requests = s.tokenRequests();
      const logins = await s.logins();
      let screen = "";
      let copied: string[] = [];
      const { exitCode } = await neomutt(s, async (tmux, session, out) => {
        screen = await tmux.waitForScreen(session, new RegExp(`Msgs:${KNOWN.length}\\b`));
        // Tag all, then copy the tagged messages to a local Maildir: neomutt fetches each one.
        await tmux.type(
          session,
          `:push "<tag-pattern>~A<enter><tag-prefix><copy-message>${out}<enter>"`,
        );
        await tmux.sendKeys(session, "Enter");
        await waitUntil(async () => (copied = await maildirMessages(out)).length >= KNOWN.length, {
          timeoutMs: 15_000,
          intervalMs: 100,
          what: () => `neomutt to copy ${KNOWN.length} messages (it copied ${copied.length})`,
        });
        await tmux.sendKeys(session, "q");
      });
      assert.equal(exitCode, "0");
      for (const m of KNOWN) {
        assert.ok(screen.includes(m.subject), `index shows "${m.subject}":\n${screen}`);
      }
      assertKnownMessages(copied, "neomutt");
      assert.equal(await s.logins(), logins + 1);
      assert.equal(s.tokenRequests(), requests, "zero token requests: all from the cache");
    });

    await t.step(
      "a cached user sign-in serves the token; without one: exit 3, no prompt",
      async () => {
        const userValues = {
          ...s.values,
          TOOL: toolCommand(s.bed, s.bed.pki.caFile, `${s.work}/cache-user`),
        };
        const tokenCommand = await writeTokenCommand(s.work, userValues, "mail-token-user.sh");
        const deviceCodes = s.bed.entra.deviceCodes.length;
        const none = await run(tokenCommand, []);
        assert.equal(none.code, 3, show(none));
        assert.equal(none.stdout, "", "nothing on stdout for the client to mistake for a token");
        assert.match(none.stderr, /^ERROR: no cached sign-in .* run once interactively/m);
        assert.equal(s.bed.entra.deviceCodes.length, deviceCodes, "no sign-in was started");
        // Nor when the client has a terminal (neomutt runs the command on its own screen).
        const onTerminal = await onATerminal(s, tokenCommand);
        assert.equal(onTerminal.code, "3", onTerminal.stderr);
        assert.equal(onTerminal.stdout, "");
        assert.equal(s.bed.entra.deviceCodes.length, deviceCodes, "no sign-in on a terminal");

        // What the docs say to do once, in a terminal: the same command with Text output (it
        // signs in, then proves the mailbox over IMAP).
        const signIn = spawnCli([
          "-AuthorityHost",
          s.bed.entra.url,
          "-CaFile",
          s.bed.pki.caFile,
          "-TokenCachePath",
          `${s.work}/cache-user`,
          "-tenantID",
          TENANT,
          "-clientId",
          PUBLIC_APP,
          "-DeviceCode",
          "-LoginHint",
          USER,
          "-Server",
          "localhost",
          "-Port",
          String(s.dovecot.imapsPort),
        ]);
        const [, userCode] = await signIn.waitForStderr(/enter the code (\S+) to authenticate/);
        s.bed.entra.approveDeviceCode(userCode, USER);
        const signedIn = await signIn.done;
        assert.equal(signedIn.code, 0, signedIn.stdout + signedIn.stderr);

        const requests = s.tokenRequests();
        const r = await curlRecipe(s, "curl-imap.sh", {
          MAILBOX: USER,
          TOKEN_COMMAND: tokenCommand,
        });
        assert.equal(r.code, 0, show(r));
        assert.match(r.stdout, new RegExp(`^Subject: ${USER_MESSAGE.subject}\\r?$`, "m"));
        assert.ok(r.stdout.includes(USER_MESSAGE.body));
        assert.equal(s.tokenRequests(), requests, "the user's token came from the cache");
        assert.equal(await s.logins(USER), 2, "the sign-in run and curl logged in as the user");
      },
    );

    await t.step("the app is revoked: every client reports the refused login", async () => {
      // The admin deletes the app's secret in Entra ID and takes the app's access to the mailbox
      // away in Exchange. The token in the cache is still valid (Entra does not recall issued
      // tokens), so the token command still serves it, and the server refuses the login.
      s.bed.entra.removeSecret(APP, SECRET);
      await denyLogins(s.dovecot, [MAILBOX]);
      const requests = s.tokenRequests();

      const token = await run(s.values.TOKEN_COMMAND, []);
      assert.equal(token.code, 0, "the cache cannot know: it serves the token until it expires");

      const pop3 = await curlRecipe(s, "curl-pop3.sh");
      assert.equal(pop3.code, 67, show(pop3));
      assert.match(pop3.stderr, /Login denied/);
      const imap = await curlRecipe(s, "curl-imap.sh");
      assert.equal(imap.code, 67, show(imap));
      assert.match(imap.stderr, /Login denied/);

      // Dovecot answers a refused XOAUTH2 with an error challenge; mbsync 1.4.4 reports it and
      // then waits for the server to give up (3 minutes), so it is stopped once it has spoken.
      // (Exchange answers "NO AUTHENTICATE failed." at once; mbsync then reports it and exits,
      // as checked by hand against a server answering like that.)
      const sync = await mbsync(s, { until: /IMAP wants more steps|AUTHENTICATIONFAILED/ });
      assert.match(sync.stderr, /IMAP wants more steps despite successful SASL authentication/);

      const getmail = await (getmailRun ??= prepareGetmail(s));
      const fetched = await getmail();
      assert.notEqual(fetched.code, 0, show(fetched));
      assert.match(
        fetched.stdout + fetched.stderr,
        /credential\/login error \(\[AUTHENTICATIONFAILED\]/,
      );

      let log = "";
      await neomutt(s, async (tmux, session) => {
        await tmux.waitForScreen(session, /Unable to open mailbox/);
        await tmux.sendKeys(session, "M"); // <show-log-messages>: the messages it showed
        log = await tmux.waitForScreen(session, /authentication failed/i);
        await tmux.sendKeys(session, "q", "q");
      });
      assert.match(log, /XOAUTH2 authentication failed/);
      assert.equal(s.tokenRequests(), requests, "all tokens came from the caches");
    });

    await t.step("asked again, the tool says why; without the cache it exits 3", async () => {
      // The docs' advice when a token is refused: first the same command with a login test...
      const tokenCommand = await Deno.readTextFile(s.values.TOKEN_COMMAND);
      const check = await run("sh", [
        "-c",
        tokenCommand.replace(
          "-OutputFormat Token",
          `-OutputFormat Text -Server localhost -Port ${s.dovecot.imapsPort}`,
        ),
      ]);
      assert.equal(check.code, 5, show(check));
      assert.match(check.stderr, /^ERROR: IMAP server rejected the login: .*\[IMAP_AUTH_FAILED\]/m);
      assert.match(check.stderr, /^FIX: .*New-ServicePrincipal/m);
      // ... then a fresh token from Entra ID, which names what changed there.
      const fresh = await run("sh", [
        "-c",
        tokenCommand.replace("-OutputFormat Token", "-OutputFormat Token -NoTokenCache"),
      ]);
      assert.equal(fresh.code, 3, show(fresh));
      assert.equal(fresh.stdout, "");
      assert.match(fresh.stderr, /^ERROR: .*AADSTS7000215/m);
      assert.match(fresh.stderr, /^FIX: .*Certificates & secrets/m);

      // Once the cached token has expired, the client's own call fails the same way and the
      // client passes the tool's message on (here: the cache is gone, as after expiry).
      await Deno.remove(`${s.work}/cache`, { recursive: true });
      const r = await curlRecipe(s, "curl-pop3.sh");
      assert.equal(r.code, 3, show(r));
      assert.equal(r.stdout, "");
      assert.match(r.stderr, /AADSTS7000215/);
      const sync = await mbsync(s);
      assert.equal(sync.code, 1, show(sync));
      assert.match(sync.stderr, /^ERROR: .*AADSTS7000215/m);
      assert.match(sync.stderr, /PassCmd exited with status 3/);
    });
  } finally {
    await tearDown(s);
  }
});

Deno.test("fetchmail has no OAuth2 login: its config parser refuses it", async () => {
  requireProgram("fetchmail", "fetchmail");
  const dir = await Deno.makeTempDir({ prefix: "gia-fetchmail-" });
  try {
    for (const mechanism of ["xoauth2", "oauthbearer"]) {
      const rc = `${dir}/fetchmailrc`;
      await Deno.writeTextFile(
        rc,
        `poll localhost protocol imap port 993 auth ${mechanism} user "${MAILBOX}" ssl\n`,
        { mode: 0o600 },
      );
      const r = await run("fetchmail", ["-f", rc, "--check"], { env: { HOME: dir } });
      assert.equal(r.code, 5, show(r)); // 5: syntax error
      assert.match(r.stderr, new RegExp(`syntax error at ${mechanism}`));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("README.md shows exactly the configs the tests run", async () => {
  assert.deepEqual(await checkDocs(await Deno.readTextFile(DOCS)), []);
});
