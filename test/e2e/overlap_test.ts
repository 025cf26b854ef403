/**
 * The mail server's TCP + TLS handshake and greeting overlap the token request: against a slow
 * authority (every token answer 600 ms late), the Exchange-like server sees the connection
 * before the token is answered, and the run takes less than the two one after the other.
 */
import assert from "node:assert/strict";
import { json, runCli, secretArgs } from "./cli.ts";
import { APP, startTestBed } from "../bed/testbed.ts";

const DELAY_MS = 600;

Deno.test("the mail connection overlaps the token request", async (t) => {
  const bed = await startTestBed({ entra: { tokenDelayMs: DELAY_MS } });
  const ex = bed.exchange;
  const run = (...extra: string[]) =>
    runCli([...bed.common(), ...secretArgs(), "-NoTokenCache", ...extra]);
  try {
    await t.step(
      "-Protocol IMAP: connected while the token was still on its way (exit 0)",
      async () => {
        const r = await run(
          "-Protocol",
          "IMAP",
          "-Port",
          String(ex.imapPort),
          "-OutputFormat",
          "Json",
        );
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.ok(json(r).folders.includes("INBOX"));
        const session = ex.sessions.at(-1)!;
        const answered = bed.entra.tokenRequests.at(-1)!.answeredAt!;
        assert.ok(
          session.connectedAt < answered - DELAY_MS / 2,
          `connected ${answered - session.connectedAt} ms before the token answer`,
        );
        assert.ok(session.received.some((l) => /^\S+ AUTHENTICATE XOAUTH2 /.test(l)));
      },
    );

    await t.step("POP3 and its transcript are the same as without overlap", async () => {
      const r = await run("-Protocol", "POP3", "-Port", String(ex.pop3Port));
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^\+OK The Microsoft Exchange POP3 service is ready\./m);
      assert.match(r.stdout, /^\+OK 3 14523/m);
      const lines = r.stderr.split("\n");
      const token = lines.findIndex((l) => l.startsWith("Get access token"));
      const connect = lines.findIndex((l) => l.startsWith("Connect to 127.0.0.1"));
      assert.ok(token >= 0 && connect > token, r.stderr);
    });

    await t.step(
      "without -Protocol the token chooses it: no connection before the token",
      async () => {
        const r = await run("-Port", String(ex.imapPort));
        assert.equal(r.code, 0, r.stderr);
        const session = ex.sessions.at(-1)!;
        assert.ok(session.connectedAt >= bed.entra.tokenRequests.at(-1)!.answeredAt!);
      },
    );

    await t.step("a refused token: the early connection is closed unused (exit 3)", async () => {
      const before = ex.sessions.length;
      const r = await runCli([
        ...bed.common(),
        ...secretArgs({ secret: "wrong-secret-value" }),
        "-NoTokenCache",
        "-Protocol",
        "IMAP",
        "-Port",
        String(ex.imapPort),
      ]);
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /AADSTS7000215/);
      const sessions = ex.sessions.slice(before);
      assert.ok(sessions.every((s) => s.received.length === 0), "nothing was sent to the server");
      assert.doesNotMatch(r.stderr, /Connect to /);
    });
  } finally {
    await bed.close();
  }
});

Deno.test("no connection to the mail server before bad input is reported", async () => {
  const bed = await startTestBed();
  try {
    const r = await runCli([
      ...bed.common(),
      "-clientId",
      APP,
      "-clientcertificate",
      "00".repeat(20),
      "-targetMailbox",
      "box@contoso.com",
      "-Protocol",
      "IMAP",
      "-Port",
      String(bed.exchange.imapPort),
      "-NoTokenCache",
    ], { env: { GET_IMAPACCESSTOKEN_POWERSHELL: "", PATH: "/nonexistent" } });
    assert.equal(r.code, 2, r.stderr);
    assert.equal(bed.exchange.connections, 0);
    assert.equal(bed.entra.tokenRequests.length, 0);
  } finally {
    await bed.close();
  }
});
