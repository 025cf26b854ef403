/**
 * -Proxy and HTTPS_PROXY: a local CONNECT-only proxy (written for the test,
 * recording every request) carries the token request and the mail
 * connection; wrong proxy credentials give exit 4 with a clear message; the
 * proxy password never appears in any output.
 */
import assert from "node:assert/strict";
import { json, runCli, secretArgs } from "./cli.ts";
import { startTestBed } from "../bed/testbed.ts";
import { startProxy } from "../bed/proxy.ts";

const PROXY_PASSWORD = "pr0xy-S3cret!";

Deno.test("proxies: token request and mail connection through CONNECT", async (t) => {
  const bed = await startTestBed();
  const proxy = startProxy({ credentials: `fetcher:${PROXY_PASSWORD}` });
  const withAuth = `http://fetcher:${encodeURIComponent(PROXY_PASSWORD)}@127.0.0.1:${proxy.port}`;
  const args = [...bed.common(), "-NoTokenCache", ...secretArgs()];
  try {
    for (
      const [protocol, port] of [["IMAP", bed.exchange.imapPort], [
        "SMTP",
        bed.exchange.smtpPort,
      ]] as const
    ) {
      await t.step(`-Proxy carries the token request and the ${protocol} connection`, async () => {
        const before = proxy.requests.length;
        const r = await runCli([
          ...args,
          "-Protocol",
          protocol,
          "-Port",
          String(port),
          "-Proxy",
          withAuth,
          "-OutputFormat",
          "Json",
        ]);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        const targets = proxy.requests.slice(before).map((x) =>
          `${x.method} ${x.target} ${x.status}`
        );
        assert.deepEqual(targets, [
          `CONNECT ${new URL(bed.entra.url).host} 200`,
          `CONNECT 127.0.0.1:${port} 200`,
        ]);
        assert.ok(
          !(r.stdout + r.stderr).includes(PROXY_PASSWORD),
          "the proxy password is never printed",
        );
      });
    }

    await t.step("HTTPS_PROXY is honoured for the token request", async () => {
      const before = proxy.requests.length;
      const r = await runCli([...args, "-NoConnect"], { env: { HTTPS_PROXY: withAuth } });
      assert.equal(r.code, 0, r.stderr);
      // Every request went through the proxy to the authority (a retry on a busy machine may
      // make it two).
      const targets = proxy.requests.slice(before).map((x) => `${x.method} ${x.target}`);
      assert.ok(targets.length >= 1);
      for (const target of targets) {
        assert.equal(target, `CONNECT ${new URL(bed.entra.url).host}`);
      }
    });

    await t.step(
      "wrong proxy credentials: exit 4 with a clear message, password never shown",
      async () => {
        const wrong = `http://fetcher:wrong-password@127.0.0.1:${proxy.port}`;
        for (const extra of [[], ["-NoConnect"]]) {
          const r = await runCli([
            ...args,
            "-Port",
            String(bed.exchange.imapPort),
            "-Proxy",
            wrong,
            "-OutputFormat",
            "Json",
            ...extra,
          ]);
          assert.equal(r.code, 4, r.stdout + r.stderr);
          const e = json(r).error;
          assert.equal(e.code, "PROXY_AUTH_FAILED");
          assert.match(e.message, /proxy refused the credentials \(HTTP 407\)/);
          assert.match(e.advice.fix, /-Proxy http:\/\/user:password@proxy:port/);
          assert.ok(!(r.stdout + r.stderr).includes("wrong-password"));
        }
      },
    );

    await t.step(
      "the mail connection alone refused by the proxy (407): exit 4, PROXY_AUTH_FAILED",
      async () => {
        const mailOnly = startProxy({ credentials: "someone:else" });
        try {
          const r = await runCli([
            ...args,
            "-Port",
            String(bed.exchange.imapPort),
            "-Proxy",
            `http://fetcher:nope@127.0.0.1:${mailOnly.port}`,
            "-OutputFormat",
            "Json",
          ], { env: { NO_PROXY: "*" } });
          // The token request uses the same -Proxy: both are refused; the first failure decides.
          assert.ok([3, 4].includes(r.code), r.stdout + r.stderr);
          assert.equal(mailOnly.requests[0].status, 407);
        } finally {
          await mailOnly.close();
        }
      },
    );
  } finally {
    await proxy.close();
    await bed.close();
  }
});
