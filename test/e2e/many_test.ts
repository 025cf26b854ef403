/**
 * Many mailboxes with one token against the Exchange-like server: one token
 * request, never more than -ThrottleLimit connections at once, per-mailbox
 * results, the worst exit code; -MailboxFile; duplicates checked once.
 */
import assert from "node:assert/strict";
import { json, runCli, secretArgs } from "./cli.ts";
import { APP, SECRET, startTestBed } from "../bed/testbed.ts";
import { startExchange } from "../bed/exchange.ts";

Deno.test("200 mailboxes: one token, throttled sessions, per-mailbox results, worst exit code", async (t) => {
  const bed = await startTestBed();
  const mailboxes = Array.from({ length: 200 }, (_, i) => `user${i}@contoso.com`);
  const denied = new Set(mailboxes.filter((_, i) => i % 40 === 7)); // 5 without FullAccess
  const exchange = await startExchange({
    tls: { certPem: bed.pki.certPem, keyPem: bed.pki.keyPem },
    tokenKey: { publicKeyPem: bed.entra.signingKey.publicKeyPem },
    mailboxPermissions: Object.fromEntries(
      mailboxes.map((m) => [m, denied.has(m) ? [] : [APP]]),
    ),
  });
  const common = [
    ...bed.common(),
    "-NoTokenCache",
    ...secretArgs({ mailbox: null }),
    "-Port",
    String(exchange.imapPort),
  ];
  try {
    await t.step("-MailboxFile with 200 addresses, -ThrottleLimit 5", async () => {
      const file = `${bed.dir}/mailboxes.txt`;
      await Deno.writeTextFile(
        file,
        "# mailboxes of the fetcher\n\n" + mailboxes.join("\n") + "\nUSER0@contoso.com  # again\n",
      );
      const tokensBefore = bed.entra.tokenRequests.length;
      const r = await runCli([
        ...common,
        "-MailboxFile",
        file,
        "-ThrottleLimit",
        "5",
        "-OutputFormat",
        "Json",
      ]);
      assert.equal(r.code, 6, r.stderr);
      const j = json(r);
      assert.equal(bed.entra.tokenRequests.length - tokensBefore, 1, "one token for all");
      assert.equal(j.results.length, 200, "duplicates are checked once");
      assert.ok(exchange.peakConnections <= 5, `peak ${exchange.peakConnections} > 5`);
      assert.ok(exchange.peakConnections >= 2, "sessions ran concurrently");
      assert.deepEqual(j.summary, { total: 200, ok: 195, failed: 5, worstExitCode: 6 });
      for (const result of j.results) {
        if (denied.has(result.mailbox)) {
          assert.equal(result.exitCode, 6);
          assert.equal(result.error.code, "IMAP_NOT_CONNECTED");
          assert.match(result.error.advice.fix, new RegExp(`-Identity ${result.mailbox} `));
        } else {
          assert.equal(result.ok, true, JSON.stringify(result.error));
          assert.ok(result.folders.includes("INBOX"));
        }
      }
      assert.deepEqual(j.results.map((x: { mailbox: string }) => x.mailbox), mailboxes, "in order");
      const sasl = JSON.stringify(j.results).match(/AUTHENTICATE XOAUTH2 (\S+)/)![1];
      assert.equal(sasl, "<XOAUTH2", "transcripts never hold the SASL string");
    });

    await t.step("-targetMailbox list: Text table and the default throttle of 8", async () => {
      const r = await runCli([
        ...common,
        "-targetMailbox",
        `${mailboxes[0]},${mailboxes[7]}, ${mailboxes[1]}`,
      ]);
      assert.equal(r.code, 6, r.stderr);
      const lines = r.stdout.trimEnd().split("\n");
      assert.match(lines[0], /^MAILBOX\s+PROTOCOL\s+RESULT\s+TIME\s+HINT$/);
      assert.match(lines[1], /^user0@contoso\.com\s+IMAP\s+OK\s+\d+ ms$/);
      assert.match(
        lines[2],
        /^user7@contoso\.com\s+IMAP\s+EXIT 6 IMAP_NOT_CONNECTED\s+\d+ ms\s+\(step 3/,
      );
      assert.match(r.stderr, /FAILED: 2 of 3 mailboxes work; worst exit code 6\./);
    });

    await t.step("a token failure stops all mailboxes (exit 3, no session)", async () => {
      const sessions = exchange.sessions.length;
      const r = await runCli([
        ...common.map((a) => (a === SECRET ? "wrong-secret-value" : a)),
        "-targetMailbox",
        mailboxes.slice(0, 10).join(","),
        "-OutputFormat",
        "Json",
      ]);
      assert.equal(r.code, 3);
      assert.equal(exchange.sessions.length, sessions);
    });
  } finally {
    await exchange.close();
    await bed.close();
  }
});
