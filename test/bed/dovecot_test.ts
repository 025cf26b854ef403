import assert from "node:assert/strict";
import { buildXoauth2 } from "../../src/sasl/xoauth2.ts";
import { dovecotPath, startDovecot } from "./dovecot.ts";
import { exportSpkiPem, signJwt } from "./jwt.ts";
import { LineClient } from "./line_client.ts";
import { makeServerPki } from "./pki.ts";
import { freePort } from "./ports.ts";

const ISSUER = "https://login.microsoftonline.com/tenant-id/v2.0";
const KID = "test-kid-1";
const MAILBOX = "alice@contoso.test";

// ---------------------------------------------------------------- tokens

const rsa = {
  name: "RSASSA-PKCS1-v1_5",
  modulusLength: 2048,
  publicExponent: new Uint8Array([1, 0, 1]),
  hash: "SHA-256",
};

/** A token Dovecot accepts: `typ` JWT, `kid` naming the key file, `sub`, `exp`, `iss`, `email`. */
function token(key: CryptoKey, email = MAILBOX): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  // No JSON null anywhere: it crashes Dovecot 2.3.19's auth process (test-bed.md).
  return signJwt({ alg: "RS256", typ: "JWT", kid: KID }, {
    iss: ISSUER,
    sub: "app-object-id",
    aud: "https://outlook.office365.com",
    iat: now,
    nbf: now,
    exp: now + 600,
    email,
    roles: ["IMAP.AccessAsApp", "POP.AccessAsApp", "SMTP.SendAsApp"],
  }, key);
}

// ---------------------------------------------------------------- tests

Deno.test("dovecotPath() finds the installed Dovecot", () => {
  assert.ok(
    dovecotPath(),
    "Dovecot is not installed; these tests need it: " +
      "apt-get install -y dovecot-imapd dovecot-pop3d dovecot-submissiond",
  );
});

Deno.test("freePort() returns a port that can be bound on 127.0.0.1", async () => {
  const port = await freePort();
  const listener = Deno.listen({ hostname: "127.0.0.1", port });
  listener.close();
  assert.ok(port > 0);
});

Deno.test("startDovecot() fails with Dovecot's own message when it cannot start", async () => {
  const error = await startDovecot({
    tls: { certFile: "/nonexistent/cert.pem", keyFile: "/nonexistent/key.pem" },
    issuers: [ISSUER],
    signingKey: { kid: KID, publicKeyPem: "unused" },
  }).then(() => null, (e: unknown) => e);
  assert.ok(error instanceof Error);
  assert.match(error.message, /exited during start-up[\s\S]*ssl_cert: Can't open file/);
});

Deno.test("startDovecot() logs in with RS256 XOAUTH2 tokens over IMAPS, POP3S and submission", async (t) => {
  const pki = await makeServerPki();
  const signer = await crypto.subtle.generateKey(rsa, true, ["sign", "verify"]);
  const stranger = await crypto.subtle.generateKey(rsa, true, ["sign", "verify"]);
  const dovecot = await startDovecot({
    tls: { certFile: pki.certFile, keyFile: pki.keyFile },
    issuers: [ISSUER],
    signingKey: { kid: KID, publicKeyPem: await exportSpkiPem(signer.publicKey) },
    messages: { [MAILBOX]: 3 },
  });
  const good = buildXoauth2(MAILBOX, await token(signer.privateKey));
  const forged = buildXoauth2(MAILBOX, await token(stranger.privateKey));
  const imap = () => LineClient.tls(dovecot.imapsPort, pki.caPem);
  const pop3 = () => LineClient.tls(dovecot.pop3sPort, pki.caPem);

  try {
    await t.step("IMAP SASL-IR: OK [CAPABILITY ...] Logged in, then LIST", async () => {
      const client = await imap();
      try {
        assert.match(await client.nextLine(), /^\* OK \[CAPABILITY .*AUTH=XOAUTH2.*\] Dovecot/);
        await client.send(`A01 AUTHENTICATE XOAUTH2 ${good}`);
        assert.match(await client.nextLine(), /^A01 OK \[CAPABILITY [^\]]+\] Logged in$/);
        await client.send('A02 LIST "" *');
        const lines = await client.until("A02 ", Infinity);
        assert.ok(lines.includes('* LIST (\\HasNoChildren) "." INBOX'), lines.join("\n"));
        assert.match(lines.at(-1)!, /^A02 OK List completed/);
        await client.send("A03 LOGOUT");
        assert.deepEqual((await client.until("A03 ", Infinity))[0], "* BYE Logging out");
      } finally {
        await client.close();
      }
    });

    await t.step("IMAP two-step: '+ ' then the base64 line", async () => {
      const client = await imap();
      try {
        await client.nextLine();
        await client.send("A01 AUTHENTICATE XOAUTH2");
        assert.equal(await client.nextLine(), "+ ");
        await client.send(good);
        assert.match(await client.nextLine(), /^A01 OK \[CAPABILITY [^\]]+\] Logged in$/);
      } finally {
        await client.close();
      }
    });

    await t.step("IMAP forged token: '+ eyJ...' challenge, empty line, then NO", async () => {
      const client = await imap();
      try {
        await client.nextLine();
        await client.send(`A01 AUTHENTICATE XOAUTH2 ${forged}`);
        const challenge = await client.nextLine();
        assert.match(challenge, /^\+ eyJ/);
        assert.match(atob(challenge.slice(2)), /"status":"401"/);
        await client.send(""); // without this answer Dovecot waits forever
        assert.equal(
          await client.nextLine(),
          "A01 NO [AUTHENTICATIONFAILED] Authentication failed.",
        );
      } finally {
        await client.close();
      }
    });

    await t.step("POP3 two-step: +OK Logged in. and STAT counts the seeded messages", async () => {
      const client = await pop3();
      try {
        assert.equal(await client.nextLine(), "+OK Dovecot (Debian) ready.");
        await client.send("AUTH XOAUTH2");
        assert.equal(await client.nextLine(), "+ ");
        await client.send(good);
        assert.equal(await client.nextLine(), "+OK Logged in.");
        await client.send("STAT");
        assert.match(await client.nextLine(), /^\+OK 3 \d+$/);
        await client.send("QUIT");
        assert.equal(await client.nextLine(), "+OK Logging out.");
      } finally {
        await client.close();
      }
    });

    await t.step("POP3 forged token: challenge, empty line, then -ERR [AUTH]", async () => {
      const client = await pop3();
      try {
        await client.nextLine();
        await client.send("AUTH XOAUTH2");
        await client.nextLine();
        await client.send(forged);
        assert.match(await client.nextLine(), /^\+ eyJ/);
        await client.send("");
        assert.equal(await client.nextLine(), "-ERR [AUTH] Authentication failed.");
      } finally {
        await client.close();
      }
    });

    await t.step("submission: AUTH XOAUTH2 two-step gives 235 (relay sink in place)", async () => {
      assert.ok(dovecot.submissionPort);
      const client = await LineClient.tcp(dovecot.submissionPort);
      try {
        assert.match(await client.nextLine(), /^220 /);
        await client.send("EHLO client.test");
        const ehlo = await client.until("250 ", Infinity);
        assert.ok(ehlo.includes("250-AUTH XOAUTH2 OAUTHBEARER"), ehlo.join("\n"));
        assert.ok(ehlo.includes("250-STARTTLS"));
        await client.send("AUTH XOAUTH2");
        assert.equal(await client.nextLine(), "334 ");
        await client.send(good);
        assert.equal(await client.nextLine(), "235 2.7.0 Logged in.");
        await client.send("QUIT");
        assert.match(await client.nextLine(), /^221 /);
      } finally {
        await client.close();
      }
    });

    await t.step("log() shows the logins and the rejected signature", async () => {
      const log = await dovecot.log();
      assert.match(log, /imap-login: Info: Login: user=<alice@contoso\.test>, method=XOAUTH2/);
      assert.match(log, /Local validation failed: Bad signature/);
    });
  } finally {
    await dovecot.stop();
    await Deno.remove(pki.dir, { recursive: true });
  }
  await assert.rejects(Deno.stat(dovecot.dir), Deno.errors.NotFound);
});
