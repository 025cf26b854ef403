/**
 * The CLI as a child process against the test bed: fake Entra ID, the
 * Exchange-like server and real Dovecot. Asserts what a user sees: exit code,
 * JSON, and what reached the servers; and that no secret leaks.
 */
import assert from "node:assert/strict";
import { type CliResult, json, runCli, secretArgs } from "./cli.ts";
import {
  APP,
  APP_NO_ACCESS,
  APP_NO_ROLES,
  MAILBOX,
  OTHER_MAILBOX,
  SECRET,
  startTestBed,
  TENANT,
  type TestBed,
} from "../bed/testbed.ts";
import { makeServerPki } from "../bed/pki.ts";
import { buildXoauth2, parseXoauth2 } from "../../src/sasl/xoauth2.ts";

/** Every run whose output must be free of secrets, tokens and SASL strings. */
const quietRuns: CliResult[] = [];

async function cli(args: string[], options: { stdin?: string; env?: Record<string, string> } = {}) {
  // These tests are about each flow itself: the cache has tests of its own.
  const r = await runCli([...args, "-NoTokenCache"], options);
  const verbose = args.some((a) => /^-verbose/i.test(a));
  const raw = args.some((a) => /^(token|sasl)$/i.test(a));
  if (!verbose && !raw) quietRuns.push(r);
  return r;
}

function secretSet(bed: TestBed, clientId = APP, mailbox = MAILBOX): string[] {
  return [...bed.common(), ...secretArgs({ clientId, mailbox })];
}

function certArgs(bed: TestBed, cert: string, ...extra: string[]): string[] {
  return [
    ...bed.common(),
    "-clientId",
    APP,
    "-clientcertificate",
    cert,
    "-targetMailbox",
    MAILBOX,
    ...extra,
  ];
}

function imap(port: number) {
  return ["-Protocol", "IMAP", "-Port", String(port)];
}

function pop3(port: number) {
  return ["-Protocol", "POP3", "-Port", String(port)];
}

Deno.test("CLI against the Exchange-like server and Dovecot", async (t) => {
  const bed = await startTestBed({ dovecot: true });
  const dovecot = bed.dovecot!;
  const ex = bed.exchange;
  const thumbDir = `${bed.dir}/thumbprints`;
  await Deno.mkdir(thumbDir);
  await Deno.copyFile(bed.cert.pfxFile, `${thumbDir}/app.pfx`);
  await Deno.copyFile(bed.unknownCert.combinedFile, `${thumbDir}/other.pem`);
  const thumbEnv = { GET_IMAPACCESSTOKEN_CERT_DIR: thumbDir };
  try {
    await t.step(
      "IMAP with a secret on the Exchange-like server lists folders (exit 0)",
      async () => {
        const r = await cli([...secretSet(bed), ...imap(ex.imapPort), "-OutputFormat", "Json"]);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        const j = json(r);
        assert.equal(j.ok, true);
        assert.equal(j.exitCode, 0);
        assert.equal(j.parameterSet, "clientcredentialsSecret");
        assert.equal(j.protocol, "IMAP");
        assert.equal(j.server, `127.0.0.1:${ex.imapPort}`);
        assert.equal(j.mailbox, MAILBOX);
        assert.ok(j.folders.includes("INBOX"), JSON.stringify(j.folders));
        assert.equal(j.error, null);
        assert.deepEqual(j.token.claims.roles, [
          "IMAP.AccessAsApp",
          "POP.AccessAsApp",
          "SMTP.SendAsApp",
        ]);
        assert.equal(j.token.claims.aud, "https://outlook.office365.com");
        assert.equal(j.token.fromCache, false);
        assert.ok(Date.parse(j.token.expiresOn) > Date.now());
        const auth = j.transcript.find((l: { dir: string; line: string }) =>
          /AUTHENTICATE/.test(l.line)
        );
        assert.match(auth.line, /AUTHENTICATE XOAUTH2 <XOAUTH2 string>/);
        // What reached the server: a real XOAUTH2 login for the mailbox, CRLF-terminated lines.
        const session = ex.sessions.at(-1)!;
        const sent = session.received.find((l) => /AUTHENTICATE XOAUTH2/.test(l))!;
        const sasl = parseXoauth2(sent.split(" ").at(-1)!);
        assert.equal(sasl?.user, MAILBOX);
        assert.equal(sasl?.token, bed.entra.issuedTokens.at(-1));
        assert.ok(session.received.some((l) => /^\S+ LIST "" \*$/.test(l)));
        assert.ok(session.received.some((l) => /^\S+ LOGOUT$/i.test(l)));
        // One request to the authority, and none to Microsoft's discovery endpoints.
        const paths = bed.entra.requests.map((r) => `${r.method} ${r.path}`);
        assert.deepEqual(paths, [`POST /${TENANT}/oauth2/v2.0/token`]);
      },
    );

    await t.step("Text output: progress on stderr, server lines on stdout", async () => {
      const r = await cli([...secretSet(bed), ...imap(ex.imapPort)]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^\* OK The Microsoft Exchange IMAP4 service is ready/m);
      assert.match(r.stdout, /OK AUTHENTICATE completed\./);
      assert.match(r.stdout, /\* LIST .* INBOX/);
      assert.match(r.stderr, /Connect to 127\.0\.0\.1/);
      assert.match(r.stderr, /OK: IMAP login to 127\.0\.0\.1:\d+ as box@contoso\.com works/);
    });

    await t.step(
      "POP3 with a secret on the Exchange-like server reports STAT (exit 0)",
      async () => {
        const r = await cli([...secretSet(bed), ...pop3(ex.pop3Port), "-OutputFormat", "Json"]);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        const j = json(r);
        assert.deepEqual(j.messages, { count: 3, octets: 14523 });
        const session = ex.sessions.at(-1)!;
        assert.equal(session.protocol, "POP3");
        assert.equal(session.received[0], "AUTH XOAUTH2", "two-line form Exchange requires");
        assert.equal(parseXoauth2(session.received[1])?.user, MAILBOX);
        assert.ok(session.received.includes("STAT"));
      },
    );

    await t.step("a secret pasted with whitespace around it works, with a warning", async () => {
      const args = [...bed.common(), ...secretArgs({ secret: "-" })];
      const r = await cli([...args, ...pop3(ex.pop3Port)], { stdin: ` ${SECRET} \r\n` });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /^WARNING: -clientsecret: whitespace around the value was removed$/m);
      assert.equal(bed.entra.tokenRequests.at(-1)?.body.client_secret, SECRET);
    });

    await t.step(
      "a wrong secret with whitespace around it: advice says the Value is wrong",
      async () => {
        const args = [...bed.common(), ...secretArgs({ secret: "wrong-secret-value " })];
        const r = await cli([...args, ...pop3(ex.pop3Port)]);
        assert.equal(r.code, 3, r.stderr);
        assert.match(r.stderr, /AADSTS7000215/);
        assert.match(r.stderr, /even after the whitespace pasted around it was removed/);
        assert.match(r.stderr, /copy the Value again, all of it and nothing else/);
      },
    );

    await t.step("-clientsecret - reads the secret from standard input", async () => {
      const args = [...bed.common(), ...secretArgs({ secret: "-" })];
      const r = await cli([...args, ...pop3(ex.pop3Port)], { stdin: `${SECRET}\n` });
      assert.equal(r.code, 0, r.stderr);
    });

    const certCases: [string, () => string[]][] = [
      ["PEM (PKCS#8)", () => [bed.cert.combinedFile]],
      ["PEM (PKCS#1)", () => [bed.cert.combinedPkcs1File]],
      [
        "encrypted PEM (PKCS#8)",
        () => [bed.cert.encryptedPkcs8File, "-CertificatePassword", bed.cert.password],
      ],
      [
        "encrypted PEM (PKCS#1)",
        () => [bed.cert.encryptedPkcs1File, "-CertificatePassword", bed.cert.password],
      ],
      ["PFX", () => [bed.cert.pfxFile, "-CertificatePassword", bed.cert.password]],
      ["legacy P12", () => [bed.cert.legacyPfxFile, "-CertificatePassword", bed.cert.password]],
      [
        "certificate + -CertificateKeyFile",
        () => [bed.cert.certFile, "-CertificateKeyFile", bed.cert.keyFile],
      ],
      ["thumbprint", () => [bed.cert.sha1Thumbprint, "-CertificatePassword", bed.cert.password]],
    ];
    for (const [name, spec] of certCases) {
      for (
        const [server, protocol, port] of [
          ["Exchange-like", "IMAP", ex.imapPort],
          ["Exchange-like", "POP3", ex.pop3Port],
          ["Dovecot", "IMAP", dovecot.imapsPort],
          ["Dovecot", "POP3", dovecot.pop3sPort],
        ] as const
      ) {
        await t.step(`certificate as ${name}: ${protocol} on ${server} (exit 0)`, async () => {
          const [cert, ...extra] = spec();
          const r = await cli(
            [
              ...certArgs(bed, cert, ...extra),
              "-Protocol",
              protocol,
              "-Port",
              String(port),
              "-OutputFormat",
              "Json",
            ],
            { env: thumbEnv },
          );
          assert.equal(r.code, 0, r.stdout + r.stderr);
          const j = json(r);
          assert.equal(j.parameterSet, "clientcredentialsCertificate");
          if (protocol === "IMAP") assert.ok(j.folders.includes("INBOX"));
          else assert.equal(j.messages.count, server === "Dovecot" ? 2 : 3);
          const request = bed.entra.tokenRequests.at(-1)!;
          assert.equal(request.status, 200);
          assert.ok(request.body.client_assertion, "a signed assertion was sent");
          assert.equal(request.body.client_secret, undefined);
          const header = JSON.parse(
            atob(request.body.client_assertion.split(".")[0].replace(/-/g, "+").replace(/_/g, "/")),
          );
          assert.equal(header.alg, "PS256");
          assert.equal(header["x5t#S256"], bed.cert.sha256ThumbprintB64Url);
          assert.deepEqual(header.x5c, [bed.cert.certDerBase64]);
        });
      }
    }

    await t.step("IMAP and POP3 with a secret on Dovecot (exit 0)", async () => {
      const i = await cli([
        ...secretSet(bed),
        ...imap(dovecot.imapsPort),
        "-OutputFormat",
        "Json",
      ]);
      assert.equal(i.code, 0, i.stdout + i.stderr + (await dovecot.log()));
      assert.ok(json(i).folders.includes("INBOX"));
      const p = await cli([
        ...secretSet(bed),
        ...pop3(dovecot.pop3sPort),
        "-OutputFormat",
        "Json",
      ]);
      assert.equal(p.code, 0, p.stdout + p.stderr);
      assert.equal(json(p).messages.count, 2);
    });

    await t.step(
      "Dovecot rejects a token for another mailbox: exit 5 (IMAP and POP3)",
      async () => {
        for (const port of [imap(dovecot.imapsPort), pop3(dovecot.pop3sPort)]) {
          const r = await cli([
            ...secretSet(bed, APP, OTHER_MAILBOX),
            ...port,
            "-OutputFormat",
            "Json",
          ]);
          assert.equal(r.code, 5, r.stdout + r.stderr);
          assert.equal(json(r).error.kind, "auth");
        }
      },
    );

    await t.step("wrong secret: exit 3 with AADSTS7000215", async () => {
      const args = [...bed.common(), ...secretArgs({ secret: "wrong-secret-value" })];
      const r = await cli([...args, ...imap(ex.imapPort), "-OutputFormat", "Json"]);
      assert.equal(r.code, 3, r.stderr);
      const j = json(r);
      assert.equal(j.error.kind, "token");
      assert.equal(j.error.code, "AADSTS7000215");
      assert.match(j.error.hint, /Secret ID.*Value/);
      assert.equal(j.error.advice.step, 1);
      assert.ok(
        !r.stdout.includes("wrong-secret-value") && !r.stderr.includes("wrong-secret-value"),
      );
    });

    await t.step("unknown app: exit 3 with AADSTS700016", async () => {
      const r = await cli([
        ...secretSet(bed, "00000000-1111-2222-3333-444444444444"),
        "-OutputFormat",
        "Json",
      ]);
      assert.equal(r.code, 3);
      assert.equal(json(r).error.code, "AADSTS700016");
    });

    await t.step("unknown tenant: exit 3 with AADSTS90002", async () => {
      const args = secretSet(bed).map((
        a,
      ) => (a === TENANT ? "0badbad0-0000-4000-8000-000000000000" : a));
      const r = await cli([...args, "-OutputFormat", "Json"]);
      assert.equal(r.code, 3);
      assert.equal(json(r).error.code, "AADSTS90002");
    });

    await t.step("key that does not match the certificate: exit 2 before any request", async () => {
      const before = bed.entra.requests.length;
      const r = await cli(
        certArgs(bed, bed.cert.certFile, "-CertificateKeyFile", `${bed.dir}/certs/unknown.key`),
      );
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /^ERROR: .*does not match/m);
      assert.equal(r.stderr.trimEnd().split("\n").length, 1);
      assert.equal(bed.entra.requests.length, before, "no request to Entra ID");
    });

    await t.step("certificate Entra does not know: exit 3 with AADSTS700027", async () => {
      const r = await cli([
        ...certArgs(bed, bed.unknownCert.combinedFile),
        "-OutputFormat",
        "Json",
      ]);
      assert.equal(r.code, 3, r.stderr);
      assert.equal(json(r).error.code, "AADSTS700027");
    });

    await t.step(
      "token without roles is rejected by the Exchange-like server: exit 5",
      async () => {
        for (const port of [imap(ex.imapPort), pop3(ex.pop3Port)]) {
          const r = await cli([...secretSet(bed, APP_NO_ROLES), ...port, "-OutputFormat", "Json"]);
          assert.equal(r.code, 5, r.stdout + r.stderr);
          assert.equal(json(r).error.kind, "auth");
        }
      },
    );

    await t.step(
      "mailbox without permission: exit 6 with a hint naming the mailbox permission",
      async () => {
        const r = await cli([
          ...secretSet(bed, APP_NO_ACCESS),
          ...imap(ex.imapPort),
          "-OutputFormat",
          "Json",
        ]);
        assert.equal(r.code, 6, r.stdout + r.stderr);
        const j = json(r);
        assert.equal(j.error.kind, "mailbox");
        assert.match(j.error.message, /User is authenticated but not connected/);
        assert.match(j.error.hint, /Add-MailboxPermission -Identity box@contoso\.com .*FullAccess/);
        const text = await cli([...secretSet(bed, APP_NO_ACCESS), ...imap(ex.imapPort)]);
        assert.equal(text.code, 6);
        assert.match(text.stderr, /^HINT \(step 3 .*\): /m);
        assert.match(text.stderr, /^FIX: Add-MailboxPermission -Identity box@contoso\.com /m);
      },
    );

    await t.step("mail server certificate not trusted: exit 4", async () => {
      const other = await makeServerPki(`${bed.dir}/other-pki`, "other");
      const listener = Deno.listenTls({
        hostname: "127.0.0.1",
        port: 0,
        cert: other.certPem,
        key: other.keyPem,
      });
      const accepting = (async () => {
        for await (const conn of listener) {
          conn.handshake().catch(() => {}).finally(() => conn.close());
        }
      })().catch(() => {});
      try {
        const port = (listener.addr as Deno.NetAddr).port;
        const r = await cli([...secretSet(bed), ...imap(port), "-OutputFormat", "Json"]);
        assert.equal(r.code, 4, r.stdout + r.stderr);
        assert.equal(json(r).error.code, "TLS_UNTRUSTED");
      } finally {
        listener.close();
        await accepting;
      }
    });

    await t.step(
      "server that accepts and never answers: exit 4 within -TimeoutSeconds + 1 s",
      async () => {
        const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
        const held: Deno.Conn[] = [];
        let acceptedAt = 0;
        const accepting = (async () => {
          for await (const conn of listener) {
            acceptedAt = performance.now();
            held.push(conn);
          }
        })().catch(() => {});
        try {
          const port = (listener.addr as Deno.NetAddr).port;
          const args = secretSet(bed).map((a) => (a === "5" ? "1" : a)); // -TimeoutSeconds 1
          for (const protocol of [imap(port), pop3(port)]) {
            const r = await cli([...args, ...protocol]);
            const ended = performance.now();
            assert.equal(r.code, 4, r.stderr);
            assert.match(r.stderr, /within 1 s/);
            // Measured from the moment the server accepted the connection (process start-up
            // and the token request come before it and vary with the machine's load).
            const waited = ended - acceptedAt;
            assert.ok(waited >= 950, `gave up after ${waited} ms, before the 1 s timeout`);
            assert.ok(waited < 1000 + 1000, `took ${waited} ms; limit is the 1 s timeout + 1 s`);
          }
        } finally {
          listener.close();
          for (const c of held) c.close();
          await accepting;
        }
      },
    );

    await t.step(
      "-OutputFormat Token and Sasl print exactly one line and connect nowhere",
      async () => {
        const before = ex.connections;
        const tok = await cli([...secretSet(bed), ...imap(ex.imapPort), "-OutputFormat", "Token"]);
        assert.equal(tok.code, 0, tok.stderr);
        assert.match(tok.stdout, /^[\w-]+\.[\w-]+\.[\w-]+\n$/);
        assert.equal(tok.stdout.trim(), bed.entra.issuedTokens.at(-1));
        const sasl = await cli([...secretSet(bed), ...pop3(ex.pop3Port), "-OutputFormat", "Sasl"]);
        assert.equal(sasl.code, 0, sasl.stderr);
        assert.match(sasl.stdout, /^[A-Za-z0-9+/]+=*\n$/);
        const decoded = atob(sasl.stdout.trim());
        assert.equal(
          decoded,
          `user=${MAILBOX}\x01auth=Bearer ${bed.entra.issuedTokens.at(-1)}\x01\x01`,
        );
        assert.equal(ex.connections, before, "no mail connection for Token/Sasl");
      },
    );

    await t.step("-NoConnect gets the token only", async () => {
      const before = ex.connections;
      const r = await cli([
        ...secretSet(bed),
        ...imap(ex.imapPort),
        "-NoConnect",
        "-OutputFormat",
        "Json",
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(json(r).server, null);
      assert.equal(ex.connections, before);
    });

    await t.step(
      "-Verbose shows the access token and the SASL string (as the original)",
      async () => {
        const r = await cli([...secretSet(bed), ...imap(ex.imapPort), "-Verbose"]);
        assert.equal(r.code, 0, r.stderr);
        const token = bed.entra.issuedTokens.at(-1)!;
        assert.ok(r.stderr.includes(`VERBOSE: Access Token -- ${token}`));
        assert.ok(r.stderr.includes(buildXoauth2(MAILBOX, token)));
        assert.ok(
          !r.stderr.includes(SECRET) && !r.stdout.includes(SECRET),
          "never the client secret",
        );
      },
    );

    await t.step("without -Verbose no secret, token or SASL string appears in any output", () => {
      assert.ok(quietRuns.length >= 20);
      const forbidden = [SECRET, bed.cert.password === "password" ? "" : bed.cert.password];
      for (const token of bed.entra.issuedTokens) {
        forbidden.push(token, buildXoauth2(MAILBOX, token), buildXoauth2(OTHER_MAILBOX, token));
        forbidden.push(token.split(".")[2]); // the signature alone
      }
      for (const r of quietRuns) {
        for (const secret of forbidden.filter((s) => s.length > 0)) {
          assert.ok(!r.stdout.includes(secret), `secret in stdout:\n${r.stdout}`);
          assert.ok(!r.stderr.includes(secret), `secret in stderr:\n${r.stderr}`);
        }
        assert.doesNotMatch(r.stdout + r.stderr, /PRIVATE KEY/);
      }
    });
  } finally {
    await bed.close();
  }
});
