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
import { closedPort } from "../mail/tls_server.ts";

const PROXY_PASSWORD = "pr0xy-S3cret!";

Deno.test("proxies: token request and mail connection through CONNECT", async (t) => {
  const bed = await startTestBed();
  const proxy = startProxy({ credentials: `fetcher:${PROXY_PASSWORD}` });
  const withAuth = `http://fetcher:${encodeURIComponent(PROXY_PASSWORD)}@127.0.0.1:${proxy.port}`;
  const args = [...bed.common(), "-NoTokenCache", ...secretArgs()];
  let entraBefore = 0;
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
        // Both through the proxy; in either order, as the mail connection overlaps the token
        // request.
        assert.deepEqual(
          targets.toSorted(),
          [
            `CONNECT ${new URL(bed.entra.url).host} 200`,
            `CONNECT 127.0.0.1:${port} 200`,
          ].toSorted(),
        );
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
          assert.match(
            e.message,
            /^the proxy 127\.0\.0\.1:\d+ \(from -Proxy\) refused the credentials \(HTTP 407\)/,
          );
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

    await t.step(
      "NO_PROXY exempts the token request and the mail connection alike (-Proxy)",
      async () => {
        // Deno's rules: an IP entry matches IP hosts; `*` and names match host names only.
        for (
          const [noProxy, expected] of [
            ["127.0.0.1", []],
            ["127.0.0.0/8", []],
            ["localhost,example.com", ["entra", "mail"]],
            ["*", ["entra", "mail"]],
          ] as const
        ) {
          const before = proxy.requests.length;
          const r = await runCli([
            ...args,
            "-Port",
            String(bed.exchange.imapPort),
            "-Proxy",
            withAuth,
          ], { env: { NO_PROXY: noProxy } });
          assert.equal(r.code, 0, r.stdout + r.stderr);
          const seen = proxy.requests.slice(before).map((x) =>
            x.target === new URL(bed.entra.url).host ? "entra" : "mail"
          );
          assert.deepEqual(seen, expected, `NO_PROXY=${noProxy}`);
        }
      },
    );

    await t.step(
      "a proxy that cannot be reached is named with its setting (exit 4), never its password",
      async () => {
        const dead = closedPort();
        const url = `http://fetcher:${encodeURIComponent(PROXY_PASSWORD)}@127.0.0.1:${dead}`;
        for (
          const [source, extra, env] of [
            ["-Proxy", ["-Proxy", url], {}],
            ["HTTPS_PROXY", [], { HTTPS_PROXY: url }],
            ["https_proxy", [], { https_proxy: url }],
            ["ALL_PROXY", [], { ALL_PROXY: url }],
          ] as const
        ) {
          entraBefore = bed.entra.requests.length;
          const r = await runCli([...args, ...extra, "-OutputFormat", "Json"], { env });
          assert.equal(r.code, 4, r.stdout + r.stderr);
          const e = json(r).error;
          assert.equal(e.code, "PROXY_UNREACHABLE");
          assert.equal(
            e.message,
            `cannot reach the proxy 127.0.0.1:${dead} (from ${source}): connection refused`,
          );
          assert.ok(e.advice.fix.includes(source), e.advice.fix);
          assert.doesNotMatch(e.advice.fix, /-Server|-Port/);
          assert.ok(!(r.stdout + r.stderr).includes(PROXY_PASSWORD));
          assert.equal(bed.entra.requests.length, entraBefore, "nothing reached Entra");
        }
      },
    );

    await t.step("a proxy that refuses the tunnel is named, not the authority", async () => {
      // The authority's port is closed: the proxy's CONNECT fails (502).
      const authority = `https://127.0.0.1:${closedPort()}`;
      const r = await runCli([
        ...bed.common().map((x) => x === bed.entra.url ? authority : x),
        "-NoTokenCache",
        ...secretArgs(),
        "-NoConnect",
        "-OutputFormat",
        "Json",
      ], { env: { https_proxy: withAuth } });
      assert.equal(r.code, 4, r.stdout + r.stderr);
      const e = json(r).error;
      assert.equal(e.code, "PROXY_REFUSED");
      assert.match(
        e.message,
        new RegExp(
          `^the proxy 127\\.0\\.0\\.1:${proxy.port} \\(from https_proxy\\) refused the connection to 127\\.0\\.0\\.1:\\d+ `,
        ),
      );
      assert.match(e.advice.fix, /https_proxy names the right proxy/);
      assert.ok(!(r.stdout + r.stderr).includes(PROXY_PASSWORD));
    });

    await t.step(
      "a malformed proxy variable is exit 2 naming it, before any traffic, password never shown",
      async () => {
        for (
          const [name, value] of [
            ["HTTPS_PROXY", "http://fetcher:pa ss@proxy.corp:8080"],
            ["https_proxy", "proxy.corp:3128/"],
            ["ALL_PROXY", "ftp://proxy.corp:21"],
            ["HTTPS_PROXY", "http://proxy.corp:99999"],
          ] as const
        ) {
          const before = proxy.requests.length;
          entraBefore = bed.entra.requests.length;
          const r = await runCli(args, { env: { [name]: value } });
          assert.equal(r.code, 2, r.stdout + r.stderr);
          const lines = r.stderr.trim().split("\n");
          assert.equal(lines.length, 1, r.stderr);
          assert.match(
            lines[0],
            new RegExp(`^ERROR: ${name} \\(environment variable\\): .*\\[BAD_URL\\]$`),
          );
          assert.ok(!r.stderr.includes("pa ss"), "never the password");
          assert.equal(bed.entra.requests.length, entraBefore, "nothing sent");
          assert.equal(proxy.requests.length, before);
        }
      },
    );
  } finally {
    await proxy.close();
    await bed.close();
  }
});
