import assert from "node:assert/strict";
import { UsageError } from "../errors.ts";
import {
  mailRoute,
  NoProxy,
  parseProxyVariable,
  proxyLabel,
  proxySettings,
  tokenRoute,
} from "./proxy_choice.ts";

const env = (vars: Record<string, string>) => (name: string) => vars[name];

Deno.test("NoProxy.matches() reads host names as Deno's fetch does", () => {
  // Observed with Deno 2.9.6's fetch (proxied or not) for each NO_PROXY value.
  const table: [string, Record<string, boolean>][] = [
    ["*", { "foo.example.com": true, "example.com": true }],
    [".example.com", { "foo.example.com": true, "example.com": true, "xexample.com": false }],
    ["example.com", { "foo.example.com": true, "example.com": true, "xexample.com": false }],
    [" x , example.com ", { "foo.example.com": true }],
    ["EXAMPLE.com", { "foo.example.com": false, "example.com": false }],
    ["*.example.com", { "foo.example.com": false, "example.com": false }],
    ["xample.com", { "foo.example.com": false }],
    ["foo.example.com:443", { "foo.example.com": false }],
    ["127.0.0.1", { "foo.example.com": false }],
    ["", { "foo.example.com": false }],
  ];
  for (const [noProxy, hosts] of table) {
    const rules = NoProxy.parse(noProxy);
    for (const [host, direct] of Object.entries(hosts)) {
      assert.equal(rules.matches(host), direct, `NO_PROXY='${noProxy}' ${host}`);
    }
  }
  assert.equal(NoProxy.parse("example.com").matches("Mail.Example.COM"), true, "host case");
});

Deno.test("NoProxy.matches() agrees with Deno's fetch for IP and loopback hosts", async () => {
  // A proxy that only counts CONNECTs, and a port nobody listens on: a direct attempt fails
  // at once, a proxied one reaches the counter.
  const proxy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (closed.addr as Deno.NetAddr).port;
  closed.close();
  let connects = 0;
  const serving = (async () => {
    for await (const conn of proxy) {
      connects++;
      await conn.write(new TextEncoder().encode("HTTP/1.1 502 No\r\n\r\n")).catch(() => {});
      conn.close();
    }
  })();
  const saved = Deno.env.get("NO_PROXY");
  const values = [
    "*",
    "127.0.0.1",
    "127.0.0.0/8",
    "10.0.0.0/8",
    "localhost",
    "::1",
    "[::1]",
    "::1/128",
    "127.0.0.1:" + port,
    ".0.0.1",
    "",
  ];
  try {
    for (const value of values) {
      Deno.env.set("NO_PROXY", value);
      for (const host of ["127.0.0.1", "localhost", "[::1]", "127.0.0.2"]) {
        const client = Deno.createHttpClient({
          proxy: { url: `http://127.0.0.1:${(proxy.addr as Deno.NetAddr).port}` },
        });
        const before = connects;
        await fetch(`https://${host}:${port}/`, { client, signal: AbortSignal.timeout(3000) })
          .then((r) => r.body?.cancel(), () => {});
        client.close();
        const deno = connects === before;
        assert.equal(NoProxy.parse(value).matches(host), deno, `NO_PROXY='${value}' ${host}`);
      }
    }
  } finally {
    if (saved === undefined) Deno.env.delete("NO_PROXY");
    else Deno.env.set("NO_PROXY", saved);
    proxy.close();
    await serving.catch(() => {});
  }
});

Deno.test("proxySettings() takes the variable Deno uses and refuses a malformed one", () => {
  const url = (s: ReturnType<typeof proxySettings>) =>
    s.environment && `${s.environment.source} ${proxyLabel(s.environment.url)}`;
  assert.equal(
    url(proxySettings(undefined, env({ https_proxy: "http://b:2", HTTPS_PROXY: "http://a:1" }))),
    "HTTPS_PROXY a:1",
  );
  assert.equal(
    url(proxySettings(undefined, env({ HTTPS_PROXY: "", https_proxy: "proxy:3128" }))),
    "https_proxy proxy:3128",
  );
  assert.equal(
    url(proxySettings(undefined, env({ HTTPS_PROXY: "http://a:1", ALL_PROXY: "socks5://s" }))),
    "ALL_PROXY s:1080",
  );
  assert.equal(url(proxySettings(undefined, env({ HTTP_PROXY: "http://a:1" }))), undefined);
  // With -Proxy the variables are not used, so not checked either.
  const explicit = new URL("http://p:8080");
  assert.equal(proxySettings(explicit, env({ HTTPS_PROXY: "::bad::" })).explicit, explicit);
  for (
    const [value, why] of [
      ["http://proxy :8080", /spaces/],
      ["htp:/:x", /not a proxy address/],
      ["http://proxy:/", /no port after/],
      ["ftp://proxy:21", /scheme ftp is not supported/],
      ["http://proxy:99999", /not a proxy address/],
      ["//proxy:8080", /not a proxy address/],
      ["proxy:8080/", /only host:port/],
      ["http://user:pa ss@proxy:8080", /spaces/],
    ] as const
  ) {
    assert.throws(
      () => proxySettings(undefined, env({ https_proxy: value })),
      (e: unknown) => {
        assert.ok(e instanceof UsageError);
        assert.equal(e.code, "BAD_URL");
        assert.match(e.message, /^https_proxy \(environment variable\): /);
        assert.match(e.message, why);
        assert.ok(!e.message.includes("pa ss"), "never the password");
        return true;
      },
    );
  }
  assert.doesNotThrow(() => parseProxyVariable("HTTPS_PROXY", "HTTP://u:p%40x@proxy:1/"));
});

Deno.test("tokenRoute() and mailRoute() apply NO_PROXY alike; the mail connection uses -Proxy only", () => {
  const explicit = new URL("http://user:secret@proxy.corp:3128");
  const settings = proxySettings(explicit, env({ NO_PROXY: ".office365.com" }));
  assert.equal(tokenRoute(settings, "login.microsoftonline.com")?.source, "-Proxy");
  assert.equal(mailRoute(settings, "outlook.office365.com"), undefined);
  assert.equal(tokenRoute(settings, "outlook.office365.com"), undefined);
  assert.equal(mailRoute(settings, "imap.example.com")?.source, "-Proxy");
  const fromEnv = proxySettings(undefined, env({ HTTPS_PROXY: "http://proxy.corp:3128" }));
  assert.equal(tokenRoute(fromEnv, "login.microsoftonline.com")?.source, "HTTPS_PROXY");
  assert.equal(mailRoute(fromEnv, "outlook.office365.com"), undefined);
  assert.equal(proxyLabel(explicit), "proxy.corp:3128");
});
