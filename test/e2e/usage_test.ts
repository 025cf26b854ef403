/**
 * Bad invocations: each must exit 2 with a one-line message naming the
 * parameter, print nothing on stdout, and make no network connection (the
 * authority and mail server point at a tripwire listener that counts).
 */
import assert from "node:assert/strict";
import { runCli, tripwire } from "./cli.ts";

const T = "9a1c3f52-7d4e-4b8a-9c61-2f0e8d7b5a34";
const C = "3f6d2b1e-8c47-4a59-b0e2-71d9c5a8f403";

Deno.test("bad invocations exit 2 with a one-line error and no network traffic", async (t) => {
  const wire = tripwire();
  const dir = await Deno.makeTempDir();
  try {
    const garbage = `${dir}/garbage.pem`;
    await Deno.writeTextFile(garbage, "this is not a certificate\n");
    const net = [
      "-AuthorityHost",
      `https://127.0.0.1:${wire.port}`,
      "-Server",
      "127.0.0.1",
      "-Port",
      String(wire.port),
    ];
    const secret = ["-tenantID", T, "-clientId", C, "-clientsecret", "s3cret-value"];
    const ok = [...secret, "-targetMailbox", "box@contoso.com", ...net];
    const cases: [string, string[], string][] = [
      ["unknown parameter", [...ok, "-Foo", "x"], "-Foo"],
      [
        "ambiguous prefix",
        ["-tenantID", T, "-client", C, "-targetMailbox", "a@b.c", ...net],
        "-clientId -clientsecret -clientcertificate",
      ],
      [
        "ambiguous -t",
        [...ok, "-t", "x"],
        "-tenantID -targetMailbox -ThrottleLimit -TimeoutSeconds -TokenCachePath",
      ],
      ["no sign-in method", ["-tenantID", T, "-clientId", C, ...net], "-clientsecret"],
      ["missing -targetMailbox", [...secret, ...net], "-targetMailbox"],
      ["missing -tenantID", [
        "-clientId",
        C,
        "-clientsecret",
        "s",
        "-targetMailbox",
        "a@b.c",
        ...net,
      ], "-tenantID"],
      ["missing -clientId", [
        "-tenantID",
        T,
        "-clientsecret",
        "s",
        "-targetMailbox",
        "a@b.c",
        ...net,
      ], "-clientId"],
      ["secret and certificate", [...ok, "-clientcertificate", garbage], "-clientcertificate"],
      ["secret and redirectUri", [...ok, "-redirectUri", "https://localhost"], "-redirectUri"],
      [
        "secret and CertificatePassword",
        [...ok, "-CertificatePassword", "pw"],
        "-CertificatePassword",
      ],
      ["given twice", [...ok, "-tenantID", T], "-tenantID"],
      ["empty tenant", [
        "-tenantID",
        "",
        "-clientId",
        C,
        "-clientsecret",
        "s",
        "-targetMailbox",
        "a@b.c",
        ...net,
      ], "-tenantID"],
      ["empty secret", [
        "-tenantID",
        T,
        "-clientId",
        C,
        "-clientsecret",
        "",
        "-targetMailbox",
        "a@b.c",
        ...net,
      ], "-clientsecret"],
      ["missing value at end", [...ok, "-Protocol"], "-Protocol"],
      ["value is a parameter name", [
        "-tenantID",
        "-clientId",
        C,
        "-clientsecret",
        "s",
        "-targetMailbox",
        "a@b.c",
        ...net,
      ], "-tenantID"],
      ["bare word", [...ok, "extra"], "'extra'"],
      ["bad port text", [...secret, "-targetMailbox", "a@b.c", "-Port", "imap"], "-Port"],
      ["port zero", [...secret, "-targetMailbox", "a@b.c", "-Port", "0"], "-Port"],
      ["port too big", [...secret, "-targetMailbox", "a@b.c", "-Port", "65536"], "-Port"],
      [
        "bad URL",
        [...secret, "-targetMailbox", "a@b.c", "-AuthorityHost", "::not a url::"],
        "-AuthorityHost",
      ],
      ["http authority", [
        ...secret,
        "-targetMailbox",
        "a@b.c",
        "-AuthorityHost",
        `http://127.0.0.1:${wire.port}`,
      ], "-AuthorityHost"],
      ["authority with path", [
        ...secret,
        "-targetMailbox",
        "a@b.c",
        "-AuthorityHost",
        `https://127.0.0.1:${wire.port}/tenant`,
      ], "-AuthorityHost"],
      ["server with scheme", [
        ...secret,
        "-targetMailbox",
        "a@b.c",
        "-Server",
        "imaps://outlook.office365.com",
      ], "-Server"],
      ["mailbox without @", [...secret, "-targetMailbox", "box", ...net], "-targetMailbox"],
      [
        "mailbox with control char",
        [...secret, "-targetMailbox", "box\x01@contoso.com", ...net],
        "-targetMailbox",
      ],
      [
        "mailbox with CRLF",
        [...secret, "-targetMailbox", "box@contoso.com\r\nA02 LOGOUT", ...net],
        "-targetMailbox",
      ],
      [
        "DOMAIN\\user mailbox",
        [...secret, "-targetMailbox", "CONTOSO\\box@contoso.com", ...net],
        "-targetMailbox",
      ],
      ["bad protocol", [...ok, "-Protocol", "SMTPS"], "-Protocol"],
      ["bad output format", [...ok, "-OutputFormat", "Yaml"], "-OutputFormat"],
      ["bad timeout", [...ok, "-TimeoutSeconds", "-1"], "-TimeoutSeconds"],
      ["bad switch value", [...ok, "-Verbose:maybe"], "-Verbose"],
      ["clientId not a GUID", [
        "-tenantID",
        T,
        "-clientId",
        "directmail",
        "-clientsecret",
        "s",
        "-targetMailbox",
        "a@b.c",
        ...net,
      ], "-clientId"],
      ["tenant 'common' for app sign-in", [
        "-tenantID",
        "common",
        "-clientId",
        C,
        "-clientsecret",
        "s",
        "-targetMailbox",
        "a@b.c",
        ...net,
      ], "-tenantID"],
      ["tenant with spaces", [
        "-tenantID",
        "my tenant",
        "-clientId",
        C,
        "-clientsecret",
        "s",
        "-targetMailbox",
        "a@b.c",
        ...net,
      ], "-tenantID"],
      ["missing CA file", [...ok, "-CaFile", `${dir}/nope.pem`], "-CaFile"],
      ["CA file without certificate", [...ok, "-CaFile", garbage], "-CaFile"],
      ["missing certificate file", [
        "-tenantID",
        T,
        "-clientId",
        C,
        "-clientcertificate",
        `${dir}/nope.pem`,
        "-targetMailbox",
        "a@b.c",
        ...net,
      ], "-clientcertificate"],
      ["garbage certificate file", [
        "-tenantID",
        T,
        "-clientId",
        C,
        "-clientcertificate",
        garbage,
        "-targetMailbox",
        "a@b.c",
        ...net,
      ], "-clientcertificate"],
      ["missing key file", [
        "-tenantID",
        T,
        "-clientId",
        C,
        "-clientcertificate",
        garbage,
        "-CertificateKeyFile",
        `${dir}/nope.key`,
        "-targetMailbox",
        "a@b.c",
        ...net,
      ], "-CertificateKeyFile"],
      ["not a thumbprint nor a file", [
        "-tenantID",
        T,
        "-clientId",
        C,
        "-clientcertificate",
        "ABCDEF",
        "-targetMailbox",
        "a@b.c",
        ...net,
      ], "-clientcertificate"],
      ["device code mixed with a secret", [...ok, "-DeviceCode"], "-DeviceCode"],
      ["-Scopes with app sign-in", [...ok, "-Scopes", "openid"], "-Scopes"],
      ["secret from empty stdin", [
        "-tenantID",
        T,
        "-clientId",
        C,
        "-clientsecret",
        "-",
        "-targetMailbox",
        "a@b.c",
        ...net,
      ], "-clientsecret"],
    ];
    assert.ok(cases.length >= 30);
    for (const [name, args, mentions] of cases) {
      await t.step(name, async () => {
        const r = await runCli(args, { stdin: "" });
        assert.equal(r.code, 2, `exit code; stderr: ${r.stderr}`);
        assert.equal(r.stdout, "");
        const lines = r.stderr.trimEnd().split("\n");
        assert.equal(lines.length, 1, `one line expected, got:\n${r.stderr}`);
        assert.ok(lines[0].includes(mentions), `'${lines[0]}' should name ${mentions}`);
        assert.match(lines[0], /^ERROR: .* \[[A-Z][A-Z0-9_]*\]$/, "ERROR: message [CODE]");
        assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
        assert.ok(!r.stderr.includes("s3cret-value"), "secret must not be printed");
      });
    }
    assert.equal(wire.count(), 0, "bad input must not open any network connection");
  } finally {
    wire.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("help lists every parameter set and --version prints the version", async () => {
  for (const flag of ["-?", "-h", "--help"]) {
    const r = await runCli([flag]);
    assert.equal(r.code, 0);
    for (
      const set of ["clientcredentialsSecret", "clientcredentialsCertificate", "authorizationcode"]
    ) {
      assert.ok(r.stdout.includes(set), `${flag} help names ${set}`);
    }
    for (
      const p of [
        "-tenantID",
        "-clientId",
        "-clientsecret",
        "-clientcertificate",
        "-targetMailbox",
        "-Protocol",
        "-OutputFormat",
        "-CaFile",
        "-TimeoutSeconds",
      ]
    ) {
      assert.ok(r.stdout.includes(p), `help lists ${p}`);
    }
  }
  const v = await runCli(["--version"]);
  assert.equal(v.code, 0);
  assert.match(v.stdout, /^Get-IMAPAccessToken \d+\.\d+\.\d+\n$/);
});

Deno.test("a usage error with -OutputFormat Json also prints a JSON error object", async () => {
  const r = await runCli(["-tenantID", T, "-clientId", C, "-OutputFormat", "Json"]);
  assert.equal(r.code, 2);
  const json = JSON.parse(r.stdout);
  assert.equal(json.ok, false);
  assert.equal(json.exitCode, 2);
  assert.equal(json.error.kind, "usage");
  assert.equal(json.error.code, "PARAMETER_SET_UNRESOLVED");
  assert.equal(json.parameterSet, null, "no set was resolved");
  assert.equal(r.stderr, "", "JSON carries the error, like any failure in Json output");
});
