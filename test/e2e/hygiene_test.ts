/**
 * Secret hygiene audit: every documented invocation (all parameter sets,
 * output formats, -Verbose off and on, many mailboxes, SMTP, -Proxy with
 * credentials, -Diagnose, failures, servers that echo credentials) runs
 * against the test bed, and nothing secret may appear where it must not:
 *
 * - never, anywhere (stdout, stderr, JSON, error messages, files): the client
 *   secret, the certificate password, the private key (its PEM body or any of
 *   its base64 lines), the proxy password, a refresh token, an authorization code;
 * - the access token and the XOAUTH2 string only on stderr with -Verbose, and
 *   on stdout in the Token / Sasl formats;
 * - files: only the token cache may hold tokens (access and refresh), and only
 *   owner-only (0600, folder 0700); nothing else anywhere the tool can write
 *   (cache folder, HOME, TMPDIR).
 *
 * Tokens and refresh tokens are known because the fake Entra ID records every
 * one it issues; XOAUTH2 strings are rebuilt from them.
 */
import assert from "node:assert/strict";
import { type CliResult, runCli, secretArgs, spawnCli } from "./cli.ts";
import {
  APP,
  APP_NO_ACCESS,
  APP_NO_ROLES,
  APP_ODD_SECRET,
  MAILBOX,
  ODD_SECRET,
  OTHER_MAILBOX,
  PUBLIC_APP,
  SECRET,
  SHARED,
  startTestBed,
  type TestBed,
  USER,
  USER_PASSWORD,
} from "../bed/testbed.ts";
import { startProxy } from "../bed/proxy.ts";
import { startMailFault, startTokenFault } from "../bed/faults.ts";
import { buildXoauth2 } from "../../src/sasl/xoauth2.ts";

/** A certificate password strong enough that finding it anywhere means it leaked. */
const CERT_PASSWORD = "Pfx~Hygiene-Pa55word!9f2c";
const PROXY_PASSWORD = "Pr0xy~Hygiene-S3cret";
/** Windows of long secrets checked besides the whole value: a cut-off copy is a leak too. */
const FRAGMENT = 40;

interface Invocation {
  name: string;
  args: string[];
  /** Expected exit code: proof that the invocation did what it is meant to exercise. */
  exit: number;
  stdin?: string;
  /** Device code: approve the sign-in as USER once the code is shown. */
  deviceCode?: boolean;
  /** Paste flow: sign in over HTTP and paste the address the browser would end on. */
  paste?: boolean;
  /** Proof that the run exercised what it should (e.g. the echo happened and was scrubbed). */
  expect?: (r: CliResult) => void;
}

interface Secret {
  label: string;
  value: string;
  /** Where it may appear: stderr with -Verbose, stdout in a format, cache files. */
  verbose?: boolean;
  format?: "Token" | "Sasl";
  inCache?: boolean;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  const out = await new Deno.Command("openssl", { args, cwd, stdout: "null", stderr: "piped" })
    .output();
  if (!out.success) throw new Error(`openssl ${args[0]}: ${new TextDecoder().decode(out.stderr)}`);
}

/** The registered app certificate again, its key protected by CERT_PASSWORD (PEM and PFX). */
async function strongPasswordFiles(bed: TestBed) {
  const dir = `${bed.dir}/strong`;
  await Deno.mkdir(dir, { recursive: true });
  await openssl([
    "pkcs8",
    "-topk8",
    "-in",
    bed.cert.keyFile,
    "-v2",
    "aes-256-cbc",
    "-passout",
    `pass:${CERT_PASSWORD}`,
    "-out",
    "enc.key",
  ], dir);
  await Deno.writeTextFile(
    `${dir}/app-enc.pem`,
    bed.cert.certPem + (await Deno.readTextFile(`${dir}/enc.key`)),
  );
  await openssl([
    "pkcs12",
    "-export",
    "-in",
    bed.cert.certFile,
    "-inkey",
    bed.cert.keyFile,
    "-passout",
    `pass:${CERT_PASSWORD}`,
    "-out",
    "app.pfx",
  ], dir);
  const thumbprints = `${dir}/thumbprints`;
  await Deno.mkdir(thumbprints);
  await Deno.copyFile(`${dir}/app.pfx`, `${thumbprints}/app.pfx`);
  return { encryptedPem: `${dir}/app-enc.pem`, pfx: `${dir}/app.pfx`, thumbprints };
}

/** The base64 lines of a PEM file's blocks that hold a private key. */
function keyParts(pem: string): string[] {
  const parts: string[] = [];
  for (const block of pem.matchAll(/-----BEGIN ([A-Z ]*PRIVATE KEY)-----([\s\S]*?)-----END/g)) {
    const lines = block[2].split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length >= 16);
    parts.push(lines.join(""), ...lines);
  }
  return parts;
}

/** Every file under `dir` (recursively), with its mode. */
async function files(dir: string): Promise<{ path: string; mode: number }[]> {
  const out: { path: string; mode: number }[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory) out.push(...(await files(path)));
      else if (entry.isFile) out.push({ path, mode: (await Deno.stat(path)).mode! & 0o777 });
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return out;
}

/** Where `secret` (or a long piece of it) occurs in `text`, or null. */
function findLeak(text: string, secret: string): string | null {
  if (text.includes(secret)) return "whole";
  if (secret.length < 2 * FRAGMENT) return null;
  for (let at = 0; at + FRAGMENT <= secret.length; at += FRAGMENT / 2) {
    if (text.includes(secret.slice(at, at + FRAGMENT))) return `characters ${at}..${at + FRAGMENT}`;
  }
  return null;
}

/** Signs in on the fake Entra ID's page over HTTP; returns the address the browser ends on. */
async function signInOverHttp(bed: TestBed, url: string): Promise<string> {
  const client = Deno.createHttpClient({ caCerts: [bed.pki.caPem] });
  try {
    const page = await (await fetch(url, { client })).text();
    const form = new URLSearchParams();
    for (const m of page.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) {
      form.set(m[1], m[2].replace(/&amp;/g, "&").replace(/&quot;/g, '"'));
    }
    form.set("username", /id="username"[^>]*value="([^"]*)"/.exec(page)?.[1] || USER);
    form.set("password", USER_PASSWORD);
    form.set("action", "signin");
    const action = /<form method="post" action="([^"]+)"/.exec(page)![1];
    const res = await fetch(new URL(action, url), {
      method: "POST",
      body: form,
      redirect: "manual",
      client,
    });
    await res.body?.cancel();
    return res.headers.get("location") ?? "";
  } finally {
    client.close();
  }
}

Deno.test("secret hygiene: no secret, key, token or SASL string where it must not be", async (t) => {
  const bed = await startTestBed();
  const ex = bed.exchange;
  const proxy = startProxy({ credentials: `fetcher:${PROXY_PASSWORD}` });
  const echoMail = startMailFault("echo-credentials", {
    certPem: bed.pki.certPem,
    keyPem: bed.pki.keyPem,
  });
  const echoPop = startMailFault(
    "echo-credentials",
    { certPem: bed.pki.certPem, keyPem: bed.pki.keyPem },
    "POP3",
  );
  const echoToken = startTokenFault("echo-request", {
    certPem: bed.pki.certPem,
    keyPem: bed.pki.keyPem,
  });
  const silent = startMailFault("silent", { certPem: bed.pki.certPem, keyPem: bed.pki.keyPem });
  const authCodes: string[] = [];
  try {
    const strong = await strongPasswordFiles(bed);
    const mailboxFile = `${bed.dir}/mailboxes.txt`;
    await Deno.writeTextFile(mailboxFile, `${MAILBOX}\n${OTHER_MAILBOX}\n`);
    // Each run gets its own HOME, TMPDIR and cache folder: every file it writes is found.
    const root = `${bed.dir}/runs`;
    const base = (cache: string) =>
      bed.common().map((a) => a === `${bed.dir}/cache` ? `${root}/${cache}/cache` : a);
    const secretSet = (cache: string, clientId = APP, secret = SECRET) => [
      ...base(cache),
      ...secretArgs({ clientId, secret, mailbox: null }),
    ];
    const certSet = (cache: string, ...cert: string[]) => [
      ...base(cache),
      "-clientId",
      APP,
      "-targetMailbox",
      MAILBOX,
      "-clientcertificate",
      ...cert,
    ];
    const imap = ["-Port", String(ex.imapPort)];
    const pop3 = ["-Protocol", "POP3", "-Port", String(ex.pop3Port)];
    const smtp = ["-Protocol", "SMTP", "-Port", String(ex.smtpPort)];
    const json = ["-OutputFormat", "Json"];
    const proxyUrl = `http://fetcher:${encodeURIComponent(PROXY_PASSWORD)}@127.0.0.1:${proxy.port}`;
    const user = (cache: string) => [...base(cache), "-clientId", PUBLIC_APP];

    const invocations: Invocation[] = [
      // Client secret.
      {
        name: "secret IMAP",
        args: [...secretSet("s1"), "-targetMailbox", MAILBOX, ...imap],
        exit: 0,
      },
      {
        name: "secret IMAP -Verbose",
        args: [...secretSet("s2"), "-targetMailbox", MAILBOX, ...imap, "-Verbose"],
        exit: 0,
      },
      {
        name: "secret POP3 Json",
        args: [...secretSet("s3"), "-targetMailbox", MAILBOX, ...pop3, ...json],
        exit: 0,
      },
      {
        name: "secret SMTP Json -Verbose with a test message",
        args: [
          ...secretSet("s4"),
          "-targetMailbox",
          MAILBOX,
          ...smtp,
          "-SendTestMessageTo",
          "admin@contoso.com",
          ...json,
          "-Verbose",
        ],
        exit: 0,
      },
      {
        name: "secret from stdin, Json -Verbose",
        args: [
          ...secretSet("s5", APP, "-"),
          "-targetMailbox",
          MAILBOX,
          ...imap,
          ...json,
          "-Verbose",
        ],
        stdin: `${SECRET}\n`,
        exit: 0,
      },
      {
        name: "secret -OutputFormat Token",
        args: [...secretSet("s6"), "-targetMailbox", MAILBOX, "-OutputFormat", "Token"],
        exit: 0,
      },
      {
        name: "secret -OutputFormat Token again (cached token)",
        args: [...secretSet("s6"), "-targetMailbox", MAILBOX, "-OutputFormat", "Token"],
        exit: 0,
      },
      {
        name: "secret -OutputFormat Sasl",
        args: [...secretSet("s7"), "-targetMailbox", MAILBOX, "-OutputFormat", "Sasl"],
        exit: 0,
      },
      {
        name: "secret -NoConnect Json",
        args: [...secretSet("s8"), "-targetMailbox", MAILBOX, "-NoConnect", ...json],
        exit: 0,
      },
      {
        name: "secret Json again (cached token), IMAP",
        args: [...secretSet("s8"), "-targetMailbox", MAILBOX, ...imap, ...json],
        exit: 0,
      },
      {
        name: "many mailboxes Json",
        args: [
          ...secretSet("s9"),
          "-targetMailbox",
          `${MAILBOX},${OTHER_MAILBOX}`,
          ...imap,
          ...json,
        ],
        exit: 6,
      },
      {
        name: "many mailboxes -MailboxFile Text -Verbose",
        args: [...secretSet("s10"), "-MailboxFile", mailboxFile, ...imap, "-Verbose"],
        exit: 6,
      },
      {
        name: "-Proxy with credentials, IMAP Json",
        args: [
          ...secretSet("s11"),
          "-targetMailbox",
          MAILBOX,
          ...imap,
          "-Proxy",
          proxyUrl,
          ...json,
        ],
        exit: 0,
      },
      {
        name: "-Proxy with credentials, SMTP Text -Verbose",
        args: [
          ...secretSet("s12"),
          "-targetMailbox",
          MAILBOX,
          ...smtp,
          "-Proxy",
          proxyUrl,
          "-Verbose",
        ],
        exit: 0,
      },
      {
        name: "-Proxy with wrong credentials, Json",
        args: [
          ...secretSet("s13"),
          "-targetMailbox",
          MAILBOX,
          "-Proxy",
          `http://fetcher:${encodeURIComponent(`${PROXY_PASSWORD}-wrong`)}@127.0.0.1:${proxy.port}`,
          ...json,
        ],
        exit: 4,
      },
      {
        name: "-Diagnose Text",
        args: [...secretSet("s14"), "-targetMailbox", MAILBOX, ...imap, "-Diagnose"],
        exit: 0,
      },
      // Certificates.
      {
        name: "certificate PEM, Json",
        args: [...certSet("c1", bed.cert.combinedFile), ...imap, ...json],
        exit: 0,
      },
      {
        name: "certificate encrypted PEM, Text -Verbose",
        args: [
          ...certSet("c2", strong.encryptedPem, "-CertificatePassword", CERT_PASSWORD),
          ...pop3,
          "-Verbose",
        ],
        exit: 0,
      },
      {
        name: "certificate PFX, Json",
        args: [
          ...certSet("c3", strong.pfx, "-CertificatePassword", CERT_PASSWORD),
          ...imap,
          ...json,
        ],
        exit: 0,
      },
      {
        name: "certificate PFX, -OutputFormat Sasl",
        args: [
          ...certSet("c4", strong.pfx, "-CertificatePassword", CERT_PASSWORD),
          "-OutputFormat",
          "Sasl",
        ],
        exit: 0,
      },
      {
        name: "certificate + -CertificateKeyFile, Text",
        args: [
          ...certSet("c5", bed.cert.certFile, "-CertificateKeyFile", bed.cert.keyFile),
          ...imap,
        ],
        exit: 0,
      },
      {
        name: "certificate thumbprint, Json -Verbose",
        args: [
          ...certSet("c6", bed.cert.sha1Thumbprint, "-CertificatePassword", CERT_PASSWORD),
          ...imap,
          ...json,
          "-Verbose",
        ],
        exit: 0,
      },
      {
        name: "PFX with a wrong password, Json",
        args: [
          ...certSet("c7", strong.pfx, "-CertificatePassword", `${CERT_PASSWORD}-wrong`),
          ...json,
        ],
        exit: 2,
      },
      {
        name: "encrypted PEM without its password, Text -Verbose",
        args: [...certSet("c8", strong.encryptedPem), "-Verbose"],
        exit: 2,
      },
      {
        name: "certificate Entra does not know (AADSTS700027), Json -Verbose",
        args: [
          ...base("c9"),
          "-clientId",
          APP,
          "-targetMailbox",
          MAILBOX,
          "-clientcertificate",
          bed.unknownCert.combinedFile,
          ...json,
          "-Verbose",
        ],
        exit: 3,
      },
      // Failures.
      {
        name: "wrong secret (AADSTS7000215), Text -Verbose",
        args: [...secretSet("f1", APP, `${SECRET}-wrong`), "-targetMailbox", MAILBOX, "-Verbose"],
        exit: 3,
      },
      {
        name: "wrong secret, -Diagnose Json",
        args: [
          ...secretSet("f2", APP, `${SECRET}-wrong`),
          "-targetMailbox",
          MAILBOX,
          "-Diagnose",
          ...json,
        ],
        exit: 3,
      },
      {
        name: "no FullAccess (exit 6), Json",
        args: [...secretSet("f3", APP_NO_ACCESS), "-targetMailbox", MAILBOX, ...imap, ...json],
        exit: 6,
      },
      {
        name: "no roles (exit 5), Text",
        args: [...secretSet("f4", APP_NO_ROLES), "-targetMailbox", MAILBOX, ...pop3],
        exit: 5,
      },
      {
        name: "IMAP server echoes XOAUTH2 string and token, Text",
        args: [...secretSet("f5"), "-targetMailbox", MAILBOX, "-Port", String(echoMail.port)],
        exit: 5,
        expect: (r) =>
          assert.match(r.stderr, /failed for <XOAUTH2 string> \(token <access token>\)/),
      },
      {
        name: "IMAP server echoes XOAUTH2 string and token, Json",
        args: [
          ...secretSet("f6"),
          "-targetMailbox",
          MAILBOX,
          "-Port",
          String(echoMail.port),
          ...json,
        ],
        exit: 5,
      },
      {
        name: "POP3 server echoes XOAUTH2 string and token, Json",
        args: [
          ...secretSet("f7"),
          "-targetMailbox",
          MAILBOX,
          "-Protocol",
          "POP3",
          "-Port",
          String(echoPop.port),
          ...json,
        ],
        exit: 5,
        expect: (r) =>
          assert.match(r.stdout, /failure for <XOAUTH2 string> \(token <access token>\)/),
      },
      {
        name: "token endpoint echoes the request (odd secret), Json",
        args: [
          ...secretSet("f8", APP_ODD_SECRET, ODD_SECRET).map(
            replacing("-AuthorityHost", echoToken.url),
          ),
          "-targetMailbox",
          MAILBOX,
          ...json,
        ],
        exit: 3,
        expect: (r) => {
          // The server really quoted the form-encoded secret; the tool printed none of it.
          assert.ok(echoToken.requests.some((q) => q.body.includes("client_secret=")));
          assert.match(r.stdout, /client_secret=<redacted>/);
        },
      },
      {
        name: "token endpoint echoes the request (odd secret), Text",
        args: [
          ...secretSet("f9", APP_ODD_SECRET, ODD_SECRET).map(
            replacing("-AuthorityHost", echoToken.url),
          ),
          "-targetMailbox",
          MAILBOX,
        ],
        exit: 3,
      },
      {
        name: "token endpoint echoes the request (certificate assertion), Json",
        args: [
          ...certSet("f10", strong.pfx, "-CertificatePassword", CERT_PASSWORD).map(
            replacing("-AuthorityHost", echoToken.url),
          ),
          ...json,
        ],
        exit: 3,
        expect: (r) => assert.match(r.stdout, /client_assertion=<redacted>/),
      },
      {
        name: "mail server never greets (timeout), Json -Verbose",
        args: [
          ...secretSet("f11"),
          "-targetMailbox",
          MAILBOX,
          "-Port",
          String(silent.port),
          ...json,
          "-Verbose",
        ].map(replacing("-TimeoutSeconds", "1")),
        exit: 4,
      },
      // User sign-in.
      {
        name: "device code, Json",
        args: [...user("u1"), "-DeviceCode", "-LoginHint", USER, ...imap, ...json],
        deviceCode: true,
        exit: 0,
      },
      {
        name: "device code, other scopes from the refresh token, Json -Verbose",
        args: [
          ...user("u1"),
          "-DeviceCode",
          "-LoginHint",
          USER,
          "-Scopes",
          "https://outlook.office.com/POP.AccessAsUser.All",
          "-NoConnect",
          ...json,
          "-Verbose",
        ],
        exit: 0,
      },
      {
        name: "device code, cached, -OutputFormat Token",
        args: [...user("u1"), "-DeviceCode", "-LoginHint", USER, "-OutputFormat", "Token"],
        exit: 0,
      },
      {
        name: "paste flow with a shared mailbox, Text -Verbose",
        args: [
          ...user("u2"),
          "-redirectUri",
          "https://localhost",
          "-LoginHint",
          USER,
          "-SharedMailbox",
          SHARED,
          ...imap,
          "-Verbose",
        ],
        paste: true,
        exit: 0,
      },
      {
        name: "user sign-in needed but impossible (-NoConnect, no terminal), Json",
        args: [...user("u3"), "-DeviceCode", "-NoConnect", ...json],
        exit: 3,
      },
    ];

    /** One run with its own HOME and TMPDIR (shared by the runs that share its cache). */
    const runOne = async (inv: Invocation): Promise<CliResult> => {
      const dir = `${root}/${cacheName(inv)}`;
      const home = `${dir}/home`;
      const tmp = `${dir}/tmp`;
      await Deno.mkdir(home, { recursive: true });
      await Deno.mkdir(tmp, { recursive: true });
      const env = {
        HOME: home,
        XDG_CACHE_HOME: `${home}/.cache`,
        XDG_CONFIG_HOME: `${home}/.config`,
        TMPDIR: tmp,
        TMP: tmp,
        TEMP: tmp,
        // Deno's own module cache stays where it is (it holds msal-node).
        DENO_DIR: Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno`,
        GET_IMAPACCESSTOKEN_CERT_DIR: strong.thumbprints,
      };
      if (!inv.deviceCode && !inv.paste) return await runCli(inv.args, { env, stdin: inv.stdin });
      // The paste flow opens the sign-in page first: "true" is a browser that opened.
      const cli = spawnCli(inv.args, { env: inv.paste ? { ...env, BROWSER: "true" } : env });
      if (inv.deviceCode) {
        const [, code] = await cli.waitForStderr(/enter the code (\S+) to authenticate/);
        bed.entra.approveDeviceCode(code, USER);
      } else {
        const [url] = await cli.waitForStderr(/https:\/\/127\.0\.0\.1:\d+\/\S+\/authorize\?\S+/);
        const location = await signInOverHttp(bed, url);
        authCodes.push(new URL(location).searchParams.get("code") ?? "");
        await cli.writeStdin(`${location}\n`);
      }
      return await cli.done;
    };
    // Runs that share a cache run in order (the later ones use what the first stored);
    // the groups run three at a time.
    const groups = new Map<string, Invocation[]>();
    for (const inv of invocations) {
      groups.set(cacheName(inv), [...(groups.get(cacheName(inv)) ?? []), inv]);
    }
    const outcomes = new Map<Invocation, CliResult>();
    const queue = [...groups.values()];
    await Promise.all(Array.from({ length: 3 }, async () => {
      for (let group = queue.shift(); group; group = queue.shift()) {
        for (const inv of group) outcomes.set(inv, await runOne(inv));
      }
    }));

    // Everything secret the test bed handed out during the runs.
    const tokens = [...bed.entra.issuedTokens, echoToken.accessToken];
    const mailboxes = [MAILBOX, OTHER_MAILBOX, USER, SHARED];
    const never: Secret[] = [
      { label: "client secret", value: SECRET },
      { label: "odd client secret", value: ODD_SECRET },
      { label: "odd client secret, form-encoded", value: encodeURIComponent(ODD_SECRET) },
      { label: "certificate password", value: CERT_PASSWORD },
      { label: "proxy password", value: PROXY_PASSWORD },
      { label: "proxy password, URL-encoded", value: encodeURIComponent(PROXY_PASSWORD) },
      ...[bed.cert.combinedFile, bed.cert.combinedPkcs1File].flatMap((file) =>
        keyParts(Deno.readTextFileSync(file)).map((value) => ({ label: "private key", value }))
      ),
      ...bed.entra.refreshTokens.map((r) => ({
        label: "refresh token",
        value: r.token,
        inCache: true,
      })),
      ...authCodes.filter((c) => c).map((value) => ({ label: "authorization code", value })),
    ];
    const credentials: Secret[] = [
      ...tokens.map((value) => ({
        label: "access token",
        value,
        verbose: true,
        format: "Token" as const,
        inCache: true,
      })),
      ...tokens.flatMap((token) =>
        mailboxes.map((mailbox) => ({
          label: "XOAUTH2 string",
          value: buildXoauth2(mailbox, token),
          verbose: true,
          format: "Sasl" as const,
        }))
      ),
    ];
    assert.ok(bed.entra.refreshTokens.length >= 1, "the user runs got a refresh token");
    assert.ok(authCodes.length === 1 && authCodes[0].length > 8, "the paste run got a code");

    for (const inv of invocations) {
      const r = outcomes.get(inv)!;
      await t.step(inv.name, async () => {
        assert.equal(r.code, inv.exit, `${r.stdout}\n${r.stderr}`);
        inv.expect?.(r);
        const verbose = inv.args.includes("-Verbose");
        const format = inv.args[inv.args.indexOf("-OutputFormat") + 1];
        // The material is right: what may be shown is shown where it may be.
        if (r.code === 0 && format === "Token") assert.ok(tokens.includes(r.stdout.trim()));
        if (r.code === 0 && format === "Sasl") {
          assert.ok(credentials.some((c) => c.value === r.stdout.trim()));
        }
        if (verbose && ![2, 3].includes(r.code)) {
          assert.ok(tokens.some((x) => r.stderr.includes(x)), "-Verbose shows the token");
        }
        const check = (where: string, text: string, allowed: (s: Secret) => boolean) => {
          for (const secret of [...never, ...credentials]) {
            if (allowed(secret)) continue;
            const leak = findLeak(text, secret.value);
            assert.equal(leak, null, `${secret.label} (${leak}) in ${where}:\n${text}`);
          }
        };
        check("stdout", r.stdout, (s) => s.format !== undefined && s.format === format);
        check("stderr", r.stderr, (s) => verbose && s.verbose === true);
        if (format === "Json") {
          // The JSON itself (parsed: escapes undone) carries no credential in any field.
          check("the JSON", JSON.stringify(JSON.parse(r.stdout)), () => false);
        }
        const cacheDir = inv.args[inv.args.indexOf("-TokenCachePath") + 1];
        let cachedTokens = 0;
        for (const file of await files(`${root}/${cacheName(inv)}`)) {
          const text = new TextDecoder("latin1").decode(await Deno.readFile(file.path));
          const inCache = file.path.startsWith(`${cacheDir}/`);
          check(file.path, text, (s) => inCache && s.inCache === true);
          if (tokens.some((x) => text.includes(x))) cachedTokens++;
          if (inCache) {
            assert.equal(file.mode & 0o077, 0, `${file.path} is ${file.mode.toString(8)}`);
          }
        }
        if (await exists(cacheDir)) {
          const mode = (await Deno.stat(cacheDir)).mode! & 0o777;
          assert.equal(mode & 0o077, 0, `${cacheDir} is ${mode.toString(8)}`);
        }
        if (r.code === 0) assert.ok(cachedTokens > 0, "the scan sees the cached token");
      });
    }
  } finally {
    await Promise.all([
      proxy.close(),
      echoMail.close(),
      echoPop.close(),
      echoToken.close(),
      silent.close(),
    ]);
    await bed.close();
  }
});

/** For `args.map()`: the value after `name` becomes `value`. */
function replacing(name: string, value: string) {
  return (arg: string, i: number, all: string[]) => all[i - 1] === name ? value : arg;
}

/** The name of an invocation's folder under runs/ (from its -TokenCachePath). */
function cacheName(inv: Invocation): string {
  const path = inv.args[inv.args.indexOf("-TokenCachePath") + 1];
  return path.split("/").at(-2)!;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}
