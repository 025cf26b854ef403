import assert from "node:assert/strict";
import { parseCommandLine } from "./parse.ts";
import type { AppOptions, Options, SecretOptions } from "./options.ts";

const T = "11111111-2222-3333-4444-555555555555";
const C = "66666666-7777-8888-9999-000000000000";

function options(argv: string[]): Options {
  const c = parseCommandLine(argv);
  assert.equal(c.kind, "run");
  return (c as { options: Options }).options;
}

function appOptions(argv: string[]): AppOptions {
  const o = options(argv);
  assert.ok(o.parameterSet.startsWith("clientcredentials"));
  return o as AppOptions;
}

Deno.test("parseCommandLine() resolves the secret set with defaults", () => {
  const o = options([
    "-tenant",
    T,
    "-clientI",
    C,
    "-clientS",
    "s3cret",
    "-target",
    "box@contoso.com",
  ]);
  assert.equal(o.parameterSet, "clientcredentialsSecret");
  assert.equal(o.mail.protocol, "IMAP");
  assert.equal(o.mail.server, "outlook.office365.com");
  assert.equal(o.mail.port, 993);
  assert.equal(o.authorityHost, "https://login.microsoftonline.com");
  assert.equal(o.timeoutSeconds, 30);
  assert.equal(o.outputFormat, "Text");
  assert.equal(o.mailbox, "box@contoso.com");
});

Deno.test("parseCommandLine() defaults the POP3 port to 995", () => {
  const o = options([
    "-tenantID",
    T,
    "-clientId",
    C,
    "-clientsecret",
    "s",
    "-targetMailbox",
    "a@b.c",
    "-Protocol",
    "POP",
  ]);
  assert.equal(o.mail.protocol, "POP3");
  assert.equal(o.mail.port, 995);
});

Deno.test("parseCommandLine() resolves the certificate and authorizationcode sets", () => {
  assert.equal(
    options([
      "-tenantID",
      T,
      "-clientId",
      C,
      "-clientcertificate",
      "x.pem",
      "-targetMailbox",
      "a@b.c",
    ]).parameterSet,
    "clientcredentialsCertificate",
  );
  const o = options([
    "-tenantID",
    T,
    "-clientId",
    C,
    "-redirectUri",
    "https://localhost",
    "-LoginHint",
    "u@b.c",
    "-SharedMailbox",
    "s@b.c",
  ]);
  assert.equal(o.parameterSet, "authorizationcode");
  assert.equal(o.mailbox, "s@b.c");
});

Deno.test("parseCommandLine() names what is missing or conflicting", () => {
  const base = ["-tenantID", T, "-clientId", C];
  assert.throws(() => parseCommandLine(base), /choose a sign-in method/);
  assert.throws(
    () => parseCommandLine([...base, "-clientsecret", "s"]),
    /missing mandatory parameter -targetMailbox/,
  );
  assert.throws(
    () => parseCommandLine(["-clientsecret", "s", "-targetMailbox", "a@b.c"]),
    /missing mandatory parameters -tenantID, -clientId/,
  );
  assert.throws(
    () =>
      parseCommandLine([
        ...base,
        "-clientsecret",
        "s",
        "-clientcertificate",
        "c",
        "-targetMailbox",
        "a@b.c",
      ]),
    /-clientcertificate cannot be used together with -clientsecret/,
  );
  assert.throws(
    () =>
      parseCommandLine([
        ...base,
        "-clientsecret",
        "s",
        "-targetMailbox",
        "a@b.c",
        "-redirectUri",
        "https://x",
      ]),
    /-redirectUri cannot be used together with -clientsecret, -targetMailbox/,
  );
  assert.throws(
    () =>
      parseCommandLine([
        ...base,
        "-clientsecret",
        "s",
        "-targetMailbox",
        "a@b.c",
        "-CertificatePassword",
        "p",
      ]),
    /-CertificatePassword cannot be used together/,
  );
  assert.throws(
    () => parseCommandLine([...base, "-targetMailbox", "a@b.c"]),
    /choose a sign-in method/,
  );
});

Deno.test("parseCommandLine() validates values before any network use", () => {
  const ok = ["-tenantID", T, "-clientId", C, "-clientsecret", "s"];
  const cases: [string[], RegExp][] = [
    [
      ["-targetMailbox", "nobody"],
      /^UsageError: -targetMailbox: 'nobody' is not an e-mail address/,
    ],
    [
      ["-targetMailbox", "a\x01@b.c"],
      /^UsageError: -targetMailbox: 'a\\x01@b.c' contains a control character/,
    ],
    [["-targetMailbox", "a@b.c", "-Port", "0"], /^UsageError: -Port: expected 1-65535/],
    [["-targetMailbox", "a@b.c", "-Port", "70000"], /^UsageError: -Port: expected 1-65535/],
    [
      ["-targetMailbox", "a@b.c", "-AuthorityHost", "http://login.example"],
      /^UsageError: -AuthorityHost: must use https/,
    ],
    [
      ["-targetMailbox", "a@b.c", "-AuthorityHost", "not a url"],
      /^UsageError: -AuthorityHost: expected an https URL/,
    ],
    [
      ["-targetMailbox", "a@b.c", "-AuthorityHost", "https://x.example/tenant"],
      /^UsageError: -AuthorityHost: give the host only/,
    ],
    [
      ["-targetMailbox", "a@b.c", "-Server", "imaps://x"],
      /^UsageError: -Server: expected a host name/,
    ],
    [
      ["-targetMailbox", "a@b.c", "-CaFile", "/nonexistent/ca.pem"],
      /^UsageError: -CaFile: file not found/,
    ],
    [["-targetMailbox", "a@b.c", "-TimeoutSeconds", "0"], /^UsageError: -TimeoutSeconds:/],
  ];
  for (const [extra, pattern] of cases) {
    assert.throws(() => parseCommandLine([...ok, ...extra]), pattern, extra.join(" "));
  }
  assert.throws(
    () =>
      parseCommandLine([
        "-tenantID",
        "common",
        "-clientId",
        C,
        "-clientsecret",
        "s",
        "-targetMailbox",
        "a@b.c",
      ]),
    /^UsageError: -tenantID: 'common' is not a tenant/,
  );
  assert.throws(
    () =>
      parseCommandLine([
        "-tenantID",
        T,
        "-clientId",
        "my app",
        "-clientsecret",
        "s",
        "-targetMailbox",
        "a@b.c",
      ]),
    /^UsageError: -clientId: expected the Application \(client\) ID/,
  );
});

Deno.test("parseCommandLine() accepts a tenant domain and IPv6/IPv4 servers", () => {
  const o = options([
    "-tenantID",
    "contoso.onmicrosoft.com",
    "-clientId",
    C,
    "-clientsecret",
    "s",
    "-targetMailbox",
    "a@b.c",
    "-Server",
    "127.0.0.1",
  ]);
  assert.equal(o.tenantId, "contoso.onmicrosoft.com");
  assert.equal(o.mail.server, "127.0.0.1");
  const stdin = ["-tenantID", T, "-clientId", C, "-clientsecret", "-", "-targetMailbox", "a@b.c"];
  const fromStdin = options(stdin) as SecretOptions;
  assert.equal(fromStdin.parameterSet, "clientcredentialsSecret");
  assert.deepEqual(fromStdin.secret, { from: "stdin" });
});

Deno.test("parseCommandLine() -Cloud sets login host, mail hosts and scope; explicit values win", () => {
  const base = ["-tenantID", T, "-clientId", C, "-clientsecret", "s", "-targetMailbox", "a@b.c"];
  const cases: [string, string, string, string, string][] = [
    [
      "Global",
      "https://login.microsoftonline.com",
      "outlook.office365.com",
      "smtp.office365.com",
      "https://outlook.office365.com",
    ],
    [
      "USGov",
      "https://login.microsoftonline.us",
      "outlook.office365.us",
      "smtp.office365.us",
      "https://outlook.office365.us",
    ],
    [
      "USGovDoD",
      "https://login.microsoftonline.us",
      "outlook-dod.office365.us",
      "smtp-dod.office365.us",
      "https://outlook-dod.office365.us",
    ],
    [
      "China",
      "https://login.chinacloudapi.cn",
      "partner.outlook.cn",
      "smtp.partner.outlook.cn",
      "https://partner.outlook.cn",
    ],
  ];
  for (const [cloud, login, mail, smtp, resource] of cases) {
    const o = options([...base, "-Cloud", cloud]);
    assert.equal(o.authorityHost, login, cloud);
    assert.equal(o.mail.server, mail, cloud);
    assert.equal(o.resource, resource, cloud);
    assert.equal(options([...base, "-Cloud", cloud, "-Protocol", "SMTP"]).mail.server, smtp, cloud);
    assert.equal(options([...base, "-Cloud", cloud, "-Protocol", "SMTP"]).mail.port, 587, cloud);
  }
  const o = options([
    ...base,
    "-Cloud",
    "China",
    "-AuthorityHost",
    "https://login.example",
    "-Server",
    "mail.example",
  ]);
  assert.equal(o.authorityHost, "https://login.example");
  assert.equal(o.mail.server, "mail.example");
  assert.equal(o.resource, "https://partner.outlook.cn");
});

Deno.test("parseCommandLine() collects mailboxes from the list and -MailboxFile, once each", async () => {
  const file = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(file, "# fetcher\nb@x.de\n\n  c@x.de # second\nA@x.de\n");
    const o = appOptions([
      "-tenantID",
      T,
      "-clientId",
      C,
      "-clientsecret",
      "s",
      "-targetMailbox",
      "a@x.de, b@x.de",
      "-MailboxFile",
      file,
    ]);
    assert.deepEqual(o.mailboxes, ["a@x.de", "b@x.de", "c@x.de"]);
    assert.equal(o.mailbox, "a@x.de");
    assert.equal(o.throttleLimit, 8);
    const fileOnly = appOptions([
      "-tenantID",
      T,
      "-clientId",
      C,
      "-clientsecret",
      "s",
      "-MailboxFile",
      file,
    ]);
    assert.deepEqual(fileOnly.mailboxes, ["b@x.de", "c@x.de", "A@x.de"]);
    await Deno.writeTextFile(file, "b@x.de\nnot-an-address\n");
    assert.throws(
      () => options(["-tenantID", T, "-clientId", C, "-clientsecret", "s", "-MailboxFile", file]),
      /-MailboxFile: line 2: 'not-an-address' is not an e-mail address/,
    );
    // Outlook's list separator, and what copying from a page leaves, with the line number.
    await Deno.writeTextFile(file, "b@x.de; c@x.de\r\n# ok\r\nd@x.de\u200b\r\n");
    assert.throws(
      () => options(["-tenantID", T, "-clientId", C, "-clientsecret", "s", "-MailboxFile", file]),
      /^UsageError: -MailboxFile: line 3: 'd@x\.de<U\+200B>' contains U\+200B, an invisible/,
    );
    await Deno.writeTextFile(file, "b@x.de; c@x.de\r\n");
    assert.deepEqual(
      appOptions(["-tenantID", T, "-clientId", C, "-clientsecret", "s", "-MailboxFile", file])
        .mailboxes,
      ["b@x.de", "c@x.de"],
    );
    assert.deepEqual(
      appOptions([
        "-tenantID",
        T,
        "-clientId",
        C,
        "-clientsecret",
        "s",
        "-targetMailbox",
        "a@x.de;b@x.de",
      ]).mailboxes,
      ["a@x.de", "b@x.de"],
    );
  } finally {
    await Deno.remove(file);
  }
});
