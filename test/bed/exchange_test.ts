import assert from "node:assert/strict";
import { ConnectionError } from "../../src/errors.ts";
import { connectPlain, type StartTlsTransport } from "../../src/mail/tls_transport.ts";
import { buildXoauth2 } from "../../src/sasl/xoauth2.ts";
import { type ExchangeOptions, type ExchangeServer, startExchange } from "./exchange.ts";
import { exportSpkiPem, signJwt } from "./jwt.ts";
import { LineClient } from "./line_client.ts";
import { makeServerPki } from "./pki.ts";

// One PKI for the file; the server takes PEM strings, so the files can go at once.
const pki = await makeServerPki();
await Deno.remove(pki.dir, { recursive: true });

const APP_ID = "11111111-2222-3333-4444-555555555555";
const OTHER_APP_ID = "99999999-8888-7777-6666-555555555555";
const MAILBOX = "shared@contoso.test";
const LOCKED = "locked@contoso.test";
const USER = "alice@contoso.test";

// ---------------------------------------------------------------- tokens

const rsa = {
  name: "RSASSA-PKCS1-v1_5",
  modulusLength: 2048,
  publicExponent: new Uint8Array([1, 0, 1]),
  hash: "SHA-256",
};
const signer = await crypto.subtle.generateKey(rsa, true, ["sign", "verify"]);
const stranger = await crypto.subtle.generateKey(rsa, true, ["sign", "verify"]);
const publicKeyPem = await exportSpkiPem(signer.publicKey);

/** An Exchange-style app token; `claims` override the defaults. */
function token(
  claims: Record<string, unknown> = {},
  key = signer.privateKey,
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return signJwt({ alg: "RS256", typ: "JWT" }, {
    aud: "https://outlook.office365.com",
    iss: "https://sts.windows.net/tenant-id/",
    iat: now,
    nbf: now,
    exp: now + 3600,
    appid: APP_ID,
    roles: ["IMAP.AccessAsApp", "POP.AccessAsApp"],
    ...claims,
  }, key);
}

/** A raw line client to the server's TLS port. */
function connect(port: number): Promise<LineClient> {
  return LineClient.tls(port, pki.caPem);
}

// ---------------------------------------------------------------- fixtures

async function withExchange(
  test: (server: ExchangeServer) => Promise<void>,
  extra: Partial<ExchangeOptions> = {},
): Promise<void> {
  const server = await startExchange({
    tls: { certPem: pki.certPem, keyPem: pki.keyPem },
    tokenKey: { publicKeyPem },
    mailboxPermissions: { [MAILBOX]: [APP_ID], [LOCKED]: [OTHER_APP_ID] },
    ...extra,
  });
  try {
    await test(server);
  } finally {
    await server.close();
  }
}

async function imapLogin(server: ExchangeServer, user: string, accessToken: string) {
  const client = await connect(server.imapPort);
  await client.line();
  await client.send(`A01 AUTHENTICATE XOAUTH2 ${buildXoauth2(user, accessToken)}`);
  return { client, reply: await client.line() };
}

// ---------------------------------------------------------------- IMAP

Deno.test("startExchange() greets and lists capabilities like Exchange IMAP", async () => {
  await withExchange(async (server) => {
    const client = await connect(server.imapPort);
    try {
      assert.match(
        (await client.line())!,
        /^\* OK The Microsoft Exchange IMAP4 service is ready\. \[[A-Za-z0-9+/]+=*\]$/,
      );
      await client.send("C1 CAPABILITY");
      assert.deepEqual(await client.until("C1 "), [
        "* CAPABILITY IMAP4 IMAP4rev1 AUTH=PLAIN AUTH=XOAUTH2 SASL-IR UIDPLUS MOVE ID UNSELECT CHILDREN IDLE NAMESPACE LITERAL+",
        "C1 OK CAPABILITY completed.",
      ]);
      await client.send('C2 LIST "" *');
      assert.equal(await client.line(), "C2 BAD Command received in Invalid state.");
      await client.send("C3 FROBNICATE");
      assert.equal(await client.line(), "C3 BAD Command Error. 12");
      await client.send("C4 LOGOUT");
      assert.deepEqual(await client.until("C4 "), [
        "* BYE Microsoft Exchange Server IMAP4 server signing off.",
        "C4 OK LOGOUT completed.",
      ]);
      assert.ok(await client.closedByServer());
    } finally {
      await client.close();
    }
    assert.equal(server.connections, 1);
    assert.deepEqual(server.sessions[0].received, [
      "C1 CAPABILITY",
      'C2 LIST "" *',
      "C3 FROBNICATE",
      "C4 LOGOUT",
    ]);
  });
});

Deno.test("startExchange() accepts a valid app token with FullAccess and LIST works", async () => {
  await withExchange(async (server) => {
    const { client, reply } = await imapLogin(server, MAILBOX, await token());
    try {
      assert.equal(reply, "A01 OK AUTHENTICATE completed.");
      await client.send('A02 LIST "" *');
      const lines = await client.until("A02 ");
      assert.equal(lines[0], '* LIST (\\HasNoChildren) "/" INBOX');
      assert.ok(lines.includes('* LIST (\\HasNoChildren \\Sent) "/" "Sent Items"'));
      assert.equal(lines.at(-1), "A02 OK LIST completed.");
    } finally {
      await client.close();
    }
  });
});

Deno.test("startExchange() takes the two-step AUTHENTICATE with a '+ ' continuation", async () => {
  await withExchange(async (server) => {
    const client = await connect(server.imapPort);
    try {
      await client.line();
      await client.send("A01 AUTHENTICATE XOAUTH2");
      assert.equal(await client.line(), "+ ");
      await client.send(buildXoauth2(MAILBOX, await token()));
      assert.equal(await client.line(), "A01 OK AUTHENTICATE completed.");
      await client.send('A02 LIST "" INBOX');
      assert.deepEqual(await client.until("A02 "), [
        '* LIST (\\HasNoChildren) "/" INBOX',
        "A02 OK LIST completed.",
      ]);
    } finally {
      await client.close();
    }
  });
});

Deno.test("startExchange() says OK to a token without FullAccess, then BAD not connected", async () => {
  await withExchange(async (server) => {
    const { client, reply } = await imapLogin(server, LOCKED, await token());
    try {
      assert.equal(reply, "A01 OK AUTHENTICATE completed.");
      await client.send('A02 LIST "" *');
      assert.equal(await client.line(), "A02 BAD User is authenticated but not connected.");
      await client.send("A03 NOOP");
      assert.equal(await client.line(), "A03 BAD User is authenticated but not connected.");
      await client.send("A04 LOGOUT");
      assert.equal(
        await client.line(),
        "* BYE Microsoft Exchange Server IMAP4 server signing off.",
      );
    } finally {
      await client.close();
    }
  });
});

Deno.test("startExchange() answers NO for wrong role, audience, expiry, signature or SASL", async () => {
  await withExchange(async (server) => {
    const now = Math.floor(Date.now() / 1000);
    const cases: [string, string][] = [
      ["POP role only", buildXoauth2(MAILBOX, await token({ roles: ["POP.AccessAsApp"] }))],
      ["no roles", buildXoauth2(MAILBOX, await token({ roles: undefined }))],
      [
        "Graph audience",
        buildXoauth2(MAILBOX, await token({ aud: "https://graph.microsoft.com" })),
      ],
      ["expired", buildXoauth2(MAILBOX, await token({ exp: now - 60 }))],
      ["signed by another key", buildXoauth2(MAILBOX, await token({}, stranger.privateKey))],
      ["unknown mailbox", buildXoauth2("nobody@contoso.test", await token())],
      ["not a JWT", buildXoauth2(MAILBOX, "not.a.jwt")],
      ["no ^A^A", btoa(`user=${MAILBOX}\x01auth=Bearer ${await token()}`)],
      ["not base64", "%%%"],
    ];
    for (const [name, sasl] of cases) {
      const client = await connect(server.imapPort);
      try {
        await client.line();
        await client.send(`A01 AUTHENTICATE XOAUTH2 ${sasl}`);
        assert.equal(await client.line(), "A01 NO AUTHENTICATE failed.", name);
      } finally {
        await client.close();
      }
    }
  });
});

Deno.test("startExchange() accepts a trailing-slash audience and delegated tokens", async () => {
  await withExchange(async (server) => {
    const user = {
      roles: undefined,
      appid: undefined,
      upn: USER,
      scp: "IMAP.AccessAsUser.All POP.AccessAsUser.All",
    };
    const cases: [string, string, string][] = [
      ["aud with slash", MAILBOX, await token({ aud: "https://outlook.office365.com/" })],
      ["aud as app ID", MAILBOX, await token({ aud: "00000002-0000-0ff1-ce00-000000000000" })],
      ["user's own mailbox", USER, await token(user)],
    ];
    for (const [name, mailbox, accessToken] of cases) {
      const { client, reply } = await imapLogin(server, mailbox, accessToken);
      try {
        assert.equal(reply, "A01 OK AUTHENTICATE completed.", name);
        await client.send('A02 LIST "" INBOX');
        assert.equal(await client.line(), '* LIST (\\HasNoChildren) "/" INBOX', name);
      } finally {
        await client.close();
      }
    }
    const { client, reply } = await imapLogin(
      server,
      USER,
      await token({ ...user, scp: "SMTP.Send" }),
    );
    await client.close();
    assert.equal(reply, "A01 NO AUTHENTICATE failed.");
  });
});

Deno.test("startExchange() ends the session when the token expires", async () => {
  await withExchange(async (server) => {
    const exp = Math.floor(Date.now() / 1000) + 2;
    const { client, reply } = await imapLogin(server, MAILBOX, await token({ exp }));
    try {
      assert.equal(reply, "A01 OK AUTHENTICATE completed.");
      await new Promise((resolve) => setTimeout(resolve, exp * 1000 - Date.now() + 50));
      await client.send("A02 NOOP");
      assert.equal(await client.line(), "* BYE Session invalidated - AccessTokenExpired");
      assert.ok(await client.closedByServer());
    } finally {
      await client.close();
    }
  });
});

Deno.test("startExchange() ignores LF-only lines, then closes after 8 KiB", async () => {
  await withExchange(async (server) => {
    for (
      const [port, bye] of [[server.imapPort, "* BYE Connection is closed. 13"], [
        server.pop3Port,
        "-ERR Connection is closed. 13",
      ]] as const
    ) {
      const client = await connect(port);
      try {
        await client.line();
        await client.raw("A01 CAPABILITY\n");
        assert.equal(await client.line(300), null);
        await client.raw("x".repeat(9000) + "\n");
        assert.equal(await client.line(), bye);
        assert.ok(await client.closedByServer());
      } finally {
        await client.close();
      }
    }
    assert.deepEqual(server.sessions.map((s) => s.received), [[], []]);
  });
});

Deno.test("startExchange() in silent mode completes TLS but never greets", async () => {
  await withExchange(async (server) => {
    const client = await connect(server.imapPort);
    try {
      await client.send("A01 CAPABILITY");
      assert.equal(await client.line(300), null);
    } finally {
      await client.close();
    }
    assert.equal(server.connections, 1);
    assert.deepEqual(server.sessions[0].sent, []);
  }, { behaviour: "silent" });
});

Deno.test("startExchange() close() ends sessions that are still open", async () => {
  const server = await startExchange({
    tls: { certPem: pki.certPem, keyPem: pki.keyPem },
    tokenKey: { publicKeyPem },
    mailboxPermissions: {},
  });
  const imap = await connect(server.imapPort);
  const pop3 = await connect(server.pop3Port);
  try {
    await imap.line();
    await pop3.line();
    await server.close();
    assert.ok(await imap.closedByServer());
    assert.ok(await pop3.closedByServer());
    await assert.rejects(connect(server.imapPort));
  } finally {
    await imap.close();
    await pop3.close();
  }
});

// ---------------------------------------------------------------- POP3

Deno.test("startExchange() POP3: two-line AUTH XOAUTH2, STAT and QUIT", async () => {
  await withExchange(async (server) => {
    const client = await connect(server.pop3Port);
    try {
      assert.match(
        (await client.line())!,
        /^\+OK The Microsoft Exchange POP3 service is ready\. \[[A-Za-z0-9+/]+=*\]$/,
      );
      await client.send("CAPA");
      const capa = await client.until(".");
      assert.equal(capa[0], "+OK");
      assert.ok(capa.includes("SASL PLAIN XOAUTH2"));
      await client.send("STAT");
      assert.equal(await client.line(), "-ERR Command is not valid in this state.");
      await client.send("AUTH XOAUTH2");
      assert.equal(await client.line(), "+");
      await client.send(buildXoauth2(MAILBOX, await token()));
      assert.equal(await client.line(), "+OK User successfully authenticated.");
      await client.send("STAT");
      assert.equal(await client.line(), "+OK 3 14523");
      await client.send("QUIT");
      assert.equal(await client.line(), "+OK Microsoft Exchange Server POP3 server signing off.");
      assert.ok(await client.closedByServer());
    } finally {
      await client.close();
    }
  });
});

Deno.test("startExchange() POP3: custom messages and a '+ ' continuation", async () => {
  await withExchange(async (server) => {
    const client = await connect(server.pop3Port);
    try {
      await client.line();
      await client.send("AUTH XOAUTH2");
      assert.equal(await client.line(), "+ ");
      await client.send(buildXoauth2(MAILBOX, await token({ roles: ["POP.AccessAsApp"] })));
      assert.equal(await client.line(), "+OK User successfully authenticated.");
      await client.send("STAT");
      assert.equal(await client.line(), "+OK 2 300");
    } finally {
      await client.close();
    }
  }, { messages: { [MAILBOX]: [100, 200] }, pop3Continuation: "+ " });
});

Deno.test("startExchange() POP3: no FullAccess, wrong role and one-line AUTH fail", async () => {
  await withExchange(async (server) => {
    const failure = "-ERR Authentication failure: unknown user name or bad password.";
    const client = await connect(server.pop3Port);
    try {
      await client.line();
      for (
        const sasl of [
          buildXoauth2(LOCKED, await token()),
          buildXoauth2(MAILBOX, await token({ roles: ["IMAP.AccessAsApp"] })),
        ]
      ) {
        await client.send("AUTH XOAUTH2");
        assert.equal(await client.line(), "+");
        await client.send(sasl);
        assert.equal(await client.line(), failure);
      }
      await client.send(`AUTH XOAUTH2 ${buildXoauth2(MAILBOX, await token())}`);
      assert.equal(await client.line(), "-ERR Protocol error. 14");
    } finally {
      await client.close();
    }
  });
});

// ---------------------------------------------------------------- SMTP

const SMTP_ROLES = { roles: ["SMTP.SendAsApp"] };
/** What a connected client sees: a line transport that can start TLS. */
type SmtpClient = StartTlsTransport;

/** Lines up to and including the last line of a reply (`250 ` ends `250-` lines). */
async function reply(client: SmtpClient): Promise<string[]> {
  const lines: string[] = [];
  while (true) {
    const line = await client.readLine();
    lines.push(line);
    if (!/^\d{3}-/.test(line)) return lines;
  }
}

async function smtpCommand(client: SmtpClient, line: string): Promise<string[]> {
  await client.writeLine(line);
  return await reply(client);
}

/** Connects, reads the greeting and sends EHLO; TLS comes only with `secure`. */
async function smtpConnect(server: ExchangeServer, secure = true): Promise<SmtpClient> {
  const client = await connectPlain({ host: "127.0.0.1", port: server.smtpPort, timeoutMs: 5000 });
  try {
    await reply(client);
    await smtpCommand(client, "EHLO client.test");
    if (secure) {
      assert.deepEqual(await smtpCommand(client, "STARTTLS"), ["220 2.0.0 SMTP server ready"]);
      await client.startTls({ hostname: "127.0.0.1", caCerts: [pki.caPem] });
      await smtpCommand(client, "EHLO client.test");
    }
    return client;
  } catch (error) {
    client.close();
    throw error;
  }
}

/** AUTH XOAUTH2 in the two-step form; returns the final reply line. */
async function smtpLogin(client: SmtpClient, user: string, accessToken: string): Promise<string> {
  assert.deepEqual(await smtpCommand(client, "AUTH XOAUTH2"), ["334 "]);
  return (await smtpCommand(client, buildXoauth2(user, accessToken)))[0];
}

Deno.test("startExchange() SMTP: STARTTLS, AUTH XOAUTH2, one message and QUIT", async () => {
  await withExchange(async (server) => {
    const client = await connectPlain({
      host: "127.0.0.1",
      port: server.smtpPort,
      timeoutMs: 5000,
    });
    const sasl = buildXoauth2(MAILBOX, await token(SMTP_ROLES));
    try {
      assert.match(
        (await reply(client))[0],
        /^220 TB0P264MB0001\.testbed\.prod\.outlook\.com Microsoft ESMTP MAIL Service ready at \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d \+0000$/,
      );
      const before = await smtpCommand(client, "EHLO client.test");
      assert.match(
        before[0],
        /^250-TB0P264MB0001\.testbed\.prod\.outlook\.com Hello \[127\.0\.0\.1\]$/,
      );
      assert.ok(before.includes("250-STARTTLS"), before.join("\n"));
      assert.ok(!before.some((line) => line.includes("AUTH")), before.join("\n"));
      assert.equal(before.at(-1), "250 SMTPUTF8");
      assert.deepEqual(await smtpCommand(client, "MAIL FROM:<x@y.test>"), [
        "530 5.7.57 Client not authenticated to send mail",
      ]);
      assert.deepEqual(await smtpCommand(client, "STARTTLS"), ["220 2.0.0 SMTP server ready"]);
      await client.startTls({ hostname: "127.0.0.1", caCerts: [pki.caPem] });
      const after = await smtpCommand(client, "EHLO client.test");
      assert.ok(after.includes("250-AUTH LOGIN XOAUTH2"), after.join("\n"));
      assert.ok(!after.includes("250-STARTTLS"));
      assert.deepEqual(await smtpCommand(client, "AUTH XOAUTH2"), ["334 "]);
      assert.deepEqual(await smtpCommand(client, sasl), ["235 2.7.0 Authentication successful"]);
      assert.deepEqual(await smtpCommand(client, `MAIL FROM:<${MAILBOX}>`), [
        "250 2.1.0 Sender OK",
      ]);
      assert.deepEqual(await smtpCommand(client, "RCPT TO:<admin@contoso.test>"), [
        "250 2.1.5 Recipient OK",
      ]);
      assert.deepEqual(await smtpCommand(client, "DATA"), [
        "354 Start mail input; end with <CRLF>.<CRLF>",
      ]);
      for (const line of ["Message-ID: <m1@contoso.test>", "Subject: hi", "", "..dot", "end"]) {
        await client.writeLine(line);
      }
      assert.deepEqual(await smtpCommand(client, "."), [
        "250 2.0.0 OK <m1@contoso.test> [Hostname=TB0P264MB0001.testbed.prod.outlook.com] " +
        "Queued mail for delivery",
      ]);
      assert.deepEqual(await smtpCommand(client, "QUIT"), [
        "221 2.0.0 Service closing transmission channel",
      ]);
    } finally {
      client.close();
    }
    const [session] = server.sessions;
    assert.equal(session.protocol, "SMTP");
    assert.equal(session.credentialsBeforeTls, false);
    assert.deepEqual(session.delivered, [{
      from: MAILBOX,
      to: ["admin@contoso.test"],
      data: "Message-ID: <m1@contoso.test>\r\nSubject: hi\r\n\r\n.dot\r\nend",
    }]);
    // TLS was up from the second EHLO on, and the credentials came only then.
    const firstSecure = session.receivedSecure.indexOf(true);
    assert.equal(session.received[firstSecure], "EHLO client.test");
    assert.deepEqual(session.received.slice(0, firstSecure), [
      "EHLO client.test",
      "MAIL FROM:<x@y.test>",
      "STARTTLS",
    ]);
    assert.ok(session.receivedSecure.slice(firstSecure).every((secure) => secure));
    assert.ok(session.received.indexOf(sasl) > firstSecure);
  });
});

Deno.test("startExchange() SMTP: AUTH before STARTTLS is refused and recorded", async () => {
  await withExchange(async (server) => {
    const client = await smtpConnect(server, false);
    try {
      const sasl = buildXoauth2(MAILBOX, await token(SMTP_ROLES));
      assert.deepEqual(await smtpCommand(client, "AUTH XOAUTH2"), [
        "530 5.7.0 Must issue a STARTTLS command first",
      ]);
      assert.equal(server.sessions[0].credentialsBeforeTls, false);
      assert.deepEqual(await smtpCommand(client, `AUTH XOAUTH2 ${sasl}`), [
        "530 5.7.0 Must issue a STARTTLS command first",
      ]);
    } finally {
      client.close();
    }
    assert.equal(server.sessions[0].credentialsBeforeTls, true);
  });
});

Deno.test("startExchange() SMTP: token checks at AUTH, SendAs permission at MAIL FROM", async () => {
  await withExchange(async (server) => {
    const user = { roles: undefined, appid: undefined, upn: USER, scp: "SMTP.Send" };
    const failed = "535 5.7.3 Authentication unsuccessful [TB0P264MB0001.testbed.prod.outlook.com]";
    const cases: [string, string, string, string | null][] = [
      ["IMAP role only", MAILBOX, await token(), failed],
      ["unknown mailbox", "nobody@contoso.test", await token(SMTP_ROLES), failed],
      ["expired", MAILBOX, await token({ ...SMTP_ROLES, exp: 1000 }), failed],
      [
        "user without SMTP.Send",
        USER,
        await token({ ...user, scp: "IMAP.AccessAsUser.All" }),
        failed,
      ],
      ["app with permission", MAILBOX, await token(SMTP_ROLES), "250 2.1.0 Sender OK"],
      ["user's own mailbox", USER, await token(user), "250 2.1.0 Sender OK"],
      [
        "app without permission",
        LOCKED,
        await token(SMTP_ROLES),
        "550 5.7.60 SMTP; Client does not have permissions to send as this sender",
      ],
    ];
    for (const [name, mailbox, accessToken, expected] of cases) {
      const client = await smtpConnect(server);
      try {
        const result = await smtpLogin(client, mailbox, accessToken);
        if (expected === failed) {
          assert.equal(result, failed, name);
          continue;
        }
        assert.equal(result, "235 2.7.0 Authentication successful", name);
        assert.deepEqual(await smtpCommand(client, `MAIL FROM:<${mailbox}>`), [expected], name);
      } finally {
        client.close();
      }
    }
    // Logged in for one mailbox, sending as another without permission.
    const client = await smtpConnect(server);
    try {
      await smtpLogin(client, MAILBOX, await token(SMTP_ROLES));
      assert.match((await smtpCommand(client, `MAIL FROM:<${LOCKED}>`))[0], /^550 5\.7\.60 /);
      assert.deepEqual(await smtpCommand(client, "RCPT TO:<a@b.test>"), [
        "503 5.5.2 Need mail command",
      ]);
    } finally {
      client.close();
    }
  });
});

Deno.test("startExchange() SMTP: basic authentication (AUTH LOGIN) is disabled", async () => {
  await withExchange(async (server) => {
    const client = await smtpConnect(server);
    try {
      assert.deepEqual(await smtpCommand(client, "AUTH LOGIN"), ["334 VXNlcm5hbWU6"]);
      assert.deepEqual(await smtpCommand(client, btoa(MAILBOX)), ["334 UGFzc3dvcmQ6"]);
      assert.deepEqual(await smtpCommand(client, btoa("password")), [
        "535 5.7.139 Authentication unsuccessful, basic authentication is disabled. " +
        "[TB0P264MB0001.testbed.prod.outlook.com]",
      ]);
      assert.match((await smtpCommand(client, "AUTH PLAIN"))[0], /^504 5\.7\.4 /);
    } finally {
      client.close();
    }
  });
});

Deno.test("startExchange() SMTP: smtpNoStartTls never offers STARTTLS", async () => {
  await withExchange(async (server) => {
    const client = await smtpConnect(server, false);
    try {
      const ehlo = await smtpCommand(client, "EHLO client.test");
      assert.ok(!ehlo.some((line) => /STARTTLS|AUTH/.test(line)), ehlo.join("\n"));
      assert.deepEqual(await smtpCommand(client, "STARTTLS"), ["500 5.3.3 Unrecognized command"]);
      assert.deepEqual(await smtpCommand(client, "AUTH XOAUTH2"), [
        "530 5.7.0 Must issue a STARTTLS command first",
      ]);
    } finally {
      client.close();
    }
  }, { smtpNoStartTls: true });
});

Deno.test("startExchange() SMTP: smtpAuthDisabled answers valid logins with 5.7.139", async () => {
  for (const scope of ["Tenant", "Mailbox"] as const) {
    await withExchange(async (server) => {
      const client = await smtpConnect(server);
      try {
        assert.equal(
          await smtpLogin(client, MAILBOX, await token(SMTP_ROLES)),
          `535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the ${scope}. ` +
            "Visit https://aka.ms/smtp_auth_disabled for more information. " +
            "[TB0P264MB0001.testbed.prod.outlook.com]",
        );
      } finally {
        client.close();
      }
    }, { smtpAuthDisabled: scope === "Tenant" ? "tenant" : "mailbox" });
  }
});

Deno.test("startExchange() SMTP: basic-retired answers AUTH LOGIN and XOAUTH2 with 550 5.7.30", async () => {
  const retired = "550 5.7.30 Basic authentication is not supported for Client Submission.";
  await withExchange(async (server) => {
    const client = await smtpConnect(server);
    try {
      assert.equal(await smtpLogin(client, MAILBOX, await token(SMTP_ROLES)), retired);
      assert.deepEqual(await smtpCommand(client, "AUTH LOGIN"), ["334 VXNlcm5hbWU6"]);
      assert.deepEqual(await smtpCommand(client, btoa(MAILBOX)), ["334 UGFzc3dvcmQ6"]);
      assert.deepEqual(await smtpCommand(client, btoa("password")), [retired]);
    } finally {
      client.close();
    }
  }, { smtpAuthDisabled: "basic-retired" });
});

Deno.test("startExchange() SMTP: smtpSendAsDenied data refuses the message with 554 5.2.252", async () => {
  await withExchange(async (server) => {
    const client = await smtpConnect(server);
    try {
      await smtpLogin(client, LOCKED, await token(SMTP_ROLES));
      assert.deepEqual(await smtpCommand(client, `MAIL FROM:<${LOCKED}>`), ["250 2.1.0 Sender OK"]);
      assert.deepEqual(await smtpCommand(client, "RCPT TO:<a@b.test>"), ["250 2.1.5 Recipient OK"]);
      assert.match((await smtpCommand(client, "DATA"))[0], /^354 /);
      await client.writeLine("Subject: x");
      await client.writeLine("");
      const [reply] = await smtpCommand(client, ".");
      assert.match(
        reply,
        new RegExp(
          `^554 5\\.2\\.252 SendAsDenied; [^ ]+ not allowed to send as ${LOCKED}; ` +
            "STOREDRV\\.Submission\\.Exception:SendAsDeniedException\\.MapiExceptionSendAsDenied",
        ),
      );
      assert.equal(server.sessions.at(-1)!.delivered.length, 0);
    } finally {
      client.close();
    }
  }, { smtpSendAsDenied: "data" });
});

Deno.test("startExchange() records the peak of concurrent connections over all protocols", async () => {
  await withExchange(async (server) => {
    const imap = await connect(server.imapPort);
    const pop3 = await connect(server.pop3Port);
    const smtp = await smtpConnect(server);
    try {
      await imap.line();
      await pop3.line();
      assert.equal(server.peakConnections, 3);
      // Let the server end each session, so it has counted them as closed.
      await imap.send("A01 LOGOUT");
      assert.ok(await imap.closedByServer());
      await pop3.send("QUIT");
      assert.ok(await pop3.closedByServer());
      await smtpCommand(smtp, "QUIT");
      await assert.rejects(smtp.readLine(), ConnectionError);
    } finally {
      await imap.close();
      await pop3.close();
      smtp.close();
    }
    const again = await smtpConnect(server, false);
    again.close();
    assert.equal(server.connections, 4);
    assert.equal(server.peakConnections, 3);
  });
});
