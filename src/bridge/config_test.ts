import assert from "node:assert/strict";
import { addressMatches, parseBridgeConfig } from "./config.ts";
import { makeServerPki } from "../../test/bed/pki.ts";

const HASH =
  "scrypt$16384$8$1$c2FsdHNhbHRzYWx0c2FsdA==$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g=";
const GUID = "3f6d2b1e-8c47-4a59-b0e2-71d9c5a8f403";

function minimal(): Record<string, unknown> {
  return {
    tenantId: "contoso.onmicrosoft.com",
    clientId: GUID,
    credential: { secretFile: "/etc/secret" },
    listeners: [{ protocol: "POP3", port: 1110 }],
    accounts: { scanner: { mailbox: "box@contoso.com", passwordHash: HASH } },
  };
}

const files = (path: string) => {
  if (path === "/etc/secret") return "the-secret\n";
  throw new Deno.errors.NotFound(path);
};

function parse(config: unknown) {
  return parseBridgeConfig(JSON.stringify(config), "bridge.json", files);
}

Deno.test("parseBridgeConfig() fills in the defaults of a minimal file", () => {
  const c = parse(minimal());
  assert.deepEqual(c.credential, { kind: "secret", secret: "the-secret" });
  assert.deepEqual(c.listeners, [{ protocol: "POP3", address: "127.0.0.1", port: 1110 }]);
  assert.deepEqual(c.upstream.POP3, { host: "outlook.office365.com", port: 995 });
  assert.deepEqual(c.upstream.IMAP, { host: "outlook.office365.com", port: 993 });
  assert.deepEqual(c.upstream.SMTP, { host: "smtp.office365.com", port: 587 });
  assert.equal(c.authorityHost, "https://login.microsoftonline.com");
  assert.equal(c.resource, "https://outlook.office365.com");
  assert.equal(c.accounts.get("scanner")?.mailbox, "box@contoso.com");
  assert.deepEqual(c.timeouts, {
    upstreamMs: 30_000,
    idleMs: 600_000,
    shutdownMs: 10_000,
    sessionMs: 4 * 3600_000,
    loginMs: 60_000,
  });
  assert.equal(c.maxSessions, 200);
  assert.equal(c.maxSessionsPerAddress, 50);
  assert.equal(parse({ ...minimal(), maxSessionsPerAddress: 5 }).maxSessionsPerAddress, 5);
  const set = parse({ ...minimal(), timeouts: { loginSeconds: 5 }, maxSessions: 20 });
  assert.equal(set.timeouts.loginMs, 5000);
  assert.equal(set.maxSessions, 20);
  assert.equal(
    parse({ ...minimal(), timeouts: { sessionSeconds: 90 } }).timeouts.sessionMs,
    90_000,
  );
});

Deno.test("parseBridgeConfig() follows -Cloud-like settings and overrides", () => {
  const c = parse({
    ...minimal(),
    cloud: "usgov",
    listeners: [
      { protocol: "pop3", port: 1110 },
      { protocol: "imap", port: 1143 },
      { protocol: "smtp", port: 1587 },
    ],
    upstream: { pop3: { host: "127.0.0.1", port: 9955 }, imap: { port: 9933 } },
    accounts: { Scanner: { mailbox: "box@contoso.com", passwordHash: HASH }, _note: "comment" },
    _comment: "keys starting with _ are comments",
  });
  assert.equal(c.cloud, "USGov");
  assert.deepEqual(c.upstream.POP3, { host: "127.0.0.1", port: 9955 });
  assert.deepEqual(c.upstream.IMAP, { host: "outlook.office365.us", port: 9933 });
  assert.deepEqual(c.listeners.map((l) => l.protocol), ["POP3", "IMAP", "SMTP"]);
  assert.deepEqual(c.upstream.SMTP, { host: "smtp.office365.us", port: 587 });
  assert.equal(c.accounts.get("scanner")?.name, "Scanner", "looked up without case");
});

Deno.test("parseBridgeConfig() names the field of each problem in one line (exit 2)", () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ ...minimal(), clientId: "app" }, /clientId: expected the Application \(client\) ID/],
    [{ ...minimal(), tenantid: "x" }, /tenantid: unknown setting/],
    [{ ...minimal(), credential: {} }, /credential: give exactly one of/],
    [
      { ...minimal(), credential: { secretFile: "/nope" } },
      /credential.secretFile: file not found/,
    ],
    [{ ...minimal(), listeners: [] }, /listeners: expected a list/],
    [
      { ...minimal(), listeners: [{ protocol: "POP3", port: 70000 }] },
      /listeners\[0\]\.port: expected a whole number from 0 to 65535/,
    ],
    [
      { ...minimal(), listeners: [{ protocol: "NNTP", port: 119 }] },
      /listeners\[0\]\.protocol: expected POP3, IMAP or SMTP/,
    ],
    [
      { ...minimal(), listeners: [{ protocol: "POP3", address: "0.0.0.0", port: 1110 }] },
      /listeners\[0\]\.tls: 0\.0\.0\.0 is not a loopback address, so the listener needs TLS/,
    ],
    [
      { ...minimal(), accounts: { scanner: { mailbox: "box", passwordHash: HASH } } },
      /accounts\.scanner\.mailbox: 'box'/,
    ],
    [
      { ...minimal(), accounts: { scanner: { mailbox: "a@b.c", passwordHash: "hunter2" } } },
      /accounts\.scanner\.passwordHash: expected scrypt.*-BridgePasswordHash/,
    ],
    [{ ...minimal(), accounts: {} }, /accounts: expected at least one local account/],
    [{ ...minimal(), timeouts: { idleSeconds: -1 } }, /timeouts\.idleSeconds: expected a number/],
    [{ ...minimal(), timeouts: { sessionSeconds: 0 } }, /timeouts\.sessionSeconds: expected/],
    [{ ...minimal(), timeouts: { sessionMinutes: 5 } }, /timeouts\.sessionMinutes: unknown/],
    [{ ...minimal(), timeouts: { loginSeconds: 0 } }, /timeouts\.loginSeconds: expected/],
    [{ ...minimal(), maxSessions: 0 }, /maxSessions: expected/],
    [{ ...minimal(), maxSessions: 2.5 }, /maxSessions: expected/],
    [{ ...minimal(), maxSessions: "200" }, /maxSessions: expected/],
    [{ ...minimal(), maxSessionsPerAddress: 0 }, /maxSessionsPerAddress: expected/],
  ];
  for (const [config, message] of cases) {
    assert.throws(() => parse(config), (error: Error & { code?: string; exitCode?: number }) => {
      assert.match(error.message, message);
      assert.match(error.message, /^-Bridge bridge\.json: /);
      assert.ok(!error.message.includes("\n"), "one line");
      assert.equal(error.code, "BRIDGE_BAD_CONFIG");
      assert.equal(error.exitCode, 2);
      return true;
    });
  }
  assert.throws(
    () => parseBridgeConfig("{ not json", "bridge.json", files),
    /bridge\.json: \(top level\): not valid JSON/,
  );
});

Deno.test("parseBridgeConfig() never puts the secret into a message", () => {
  assert.throws(
    () => parse({ ...minimal(), credential: { secret: "s3cr3t-value", certificate: "x" } }),
    (error: Error) => !error.message.includes("s3cr3t-value"),
  );
});

Deno.test("parseBridgeConfig() reads a listener's TLS certificate and key and checks they fit", async () => {
  const pki = await makeServerPki();
  const other = await makeServerPki(undefined, "other");
  const read = (path: string) =>
    path === "/etc/secret" ? "the-secret" : Deno.readTextFileSync(path);
  const withTls = (tls: unknown, address = "0.0.0.0") =>
    parseBridgeConfig(
      JSON.stringify({ ...minimal(), listeners: [{ protocol: "IMAP", address, port: 993, tls }] }),
      "bridge.json",
      read,
    );
  try {
    const c = withTls({ mode: "implicit", certificate: pki.certFile, key: pki.keyFile });
    assert.equal(c.listeners[0].tls?.mode, "implicit");
    assert.equal(c.listeners[0].tls?.certificate, pki.certPem);
    assert.equal(c.listeners[0].tls?.key, pki.keyPem);
    const loopback = { mode: "STARTTLS", certificate: pki.certFile, key: pki.keyFile };
    assert.equal(withTls(loopback, "127.0.0.1").listeners[0].tls?.mode, "starttls");
    const cases: [unknown, RegExp][] = [
      [
        { mode: "ssl", certificate: pki.certFile, key: pki.keyFile },
        /tls\.mode: expected implicit/,
      ],
      [{ mode: "implicit", key: pki.keyFile }, /tls\.certificate: expected a non-empty string/],
      [
        { mode: "implicit", certificate: "/nope", key: pki.keyFile },
        /tls\.certificate: file not found/,
      ],
      [
        { mode: "implicit", certificate: pki.keyFile, key: pki.keyFile },
        /tls\.certificate: not a PEM certificate/,
      ],
      [
        { mode: "implicit", certificate: pki.certFile, key: pki.certFile },
        /tls\.key: not an unencrypted PEM private key/,
      ],
      [
        { mode: "implicit", certificate: pki.certFile, key: other.keyFile },
        /tls\.key: .* is not the key of /,
      ],
      [
        { mode: "implicit", certificate: pki.certFile, key: pki.keyFile, ca: "x" },
        /tls\.ca: unknown setting/,
      ],
    ];
    for (const [tls, message] of cases) {
      assert.throws(() => withTls(tls), (error: Error & { code?: string }) => {
        assert.match(error.message, /^-Bridge bridge\.json: listeners\[0\]\.tls\./);
        assert.match(error.message, message);
        assert.ok(!error.message.includes("MII"), "never the key or certificate itself");
        assert.equal(error.code, "BRIDGE_BAD_CONFIG");
        return true;
      });
    }
  } finally {
    await Deno.remove(pki.dir, { recursive: true });
    await Deno.remove(other.dir, { recursive: true });
  }
});

Deno.test("parseBridgeConfig() reads an SMTP listener's allow-list and checks its accounts", () => {
  const smtp = (allowWithoutAuth: unknown, protocol = "SMTP") =>
    parse({ ...minimal(), listeners: [{ protocol, port: 1587, allowWithoutAuth }] });
  assert.equal(parse(minimal()).listeners[0].allowWithoutAuth, undefined, "off by default");
  assert.deepEqual(
    smtp([
      { address: "192.168.1.50", account: "Scanner" },
      { address: "10.0.0.0/24", account: "scanner" },
      { address: "2001:db8:1:2::/64", account: "scanner" },
      { address: "2001:db8::17", account: "scanner" },
    ]).listeners[0].allowWithoutAuth,
    [
      { address: "192.168.1.50", account: "scanner" },
      { address: "10.0.0.0/24", account: "scanner" },
      { address: "2001:db8:1:2::/64", account: "scanner" },
      { address: "2001:db8::17", account: "scanner" },
    ],
  );
  const cases: [unknown, RegExp, string?][] = [
    [
      [{ address: "192.168.1.50", account: "printer" }],
      /allowWithoutAuth\[0\]\.account: 'printer' is not in accounts/,
    ],
    [
      [{ address: "scanner.lan", account: "scanner" }],
      /allowWithoutAuth\[0\]\.address: expected an IP address/,
    ],
    [
      [{ address: "10.0.0.0/33", account: "scanner" }],
      /allowWithoutAuth\[0\]\.address: expected an IP address/,
    ],
    [{ address: "10.0.0.1" }, /allowWithoutAuth: expected a list/],
    ...["0.0.0.0/0", "10.0.0.0/8", "192.168.0.0/23", "::/0", "2001:db8::/48", "2001:db8::/63"].map((
      address,
    ): [unknown, RegExp] => [
      [{ address: "192.168.1.50", account: "scanner" }, { address, account: "scanner" }],
      new RegExp(
        `allowWithoutAuth\\[1\\]\\.address: '${address.replace(/\./g, "\\.")}' is wider than ` +
          `/${
            address.includes(":") ? 64 : 24
          }: everyone in it could send as the account without a password; list single devices`,
      ),
    ]),
    [
      [{ address: "10.0.0.1", account: "scanner" }],
      /allowWithoutAuth: only on an SMTP listener/,
      "POP3",
    ],
  ];
  for (const [list, message, protocol] of cases) {
    assert.throws(() => smtp(list, protocol), message);
  }
});

Deno.test("parseBridgeConfig() reads an account's allowedSenders and checks each like a mailbox", () => {
  const withSenders = (allowedSenders: unknown) =>
    parse({
      ...minimal(),
      accounts: { scanner: { mailbox: "box@contoso.com", passwordHash: HASH, allowedSenders } },
    });
  assert.equal(
    parse(minimal()).accounts.get("scanner")?.allowedSenders,
    undefined,
    "none by default",
  );
  assert.deepEqual(
    withSenders([" NoReply@contoso.com", "helpdesk@contoso.com"]).accounts.get("scanner")
      ?.allowedSenders,
    ["NoReply@contoso.com", "helpdesk@contoso.com"],
  );
  assert.deepEqual(withSenders([]).accounts.get("scanner")?.allowedSenders, []);
  const cases: [unknown, RegExp][] = [
    ["noreply@contoso.com", /accounts\.scanner\.allowedSenders: expected a list of addresses/],
    [
      ["noreply@contoso.com", "*@contoso.com"],
      /allowedSenders\[1\]: '\*@contoso\.com': wildcards are not supported; list each address$/,
    ],
    [["no*reply@contoso.com"], /allowedSenders\[0\]: .*wildcards are not supported/],
    [
      ["noreply@contoso.com", "helpdesk"],
      /allowedSenders\[1\]: 'helpdesk' is not an e-mail address/,
    ],
    [["Help Desk <helpdesk@contoso.com>"], /allowedSenders\[0\]: .* contains a space/],
    [["helpdesk@contoso.com\u200b"], /allowedSenders\[0\]: .*look-alike/],
    [[""], /allowedSenders\[0\]: expected a non-empty string/],
    [[42], /allowedSenders\[0\]: expected a non-empty string/],
    [
      ["BOX@contoso.com"],
      /allowedSenders\[0\]: 'BOX@contoso\.com' is the account's mailbox, which may always send/,
    ],
    [
      ["a@contoso.com", "A@Contoso.com"],
      /allowedSenders\[1\]: 'A@Contoso\.com' appears twice \(ignoring case\)/,
    ],
  ];
  for (const [allowedSenders, message] of cases) {
    assert.throws(
      () => withSenders(allowedSenders),
      (error: Error & { code?: string; exitCode?: number }) => {
        assert.match(error.message, message);
        assert.match(error.message, /^-Bridge bridge\.json: accounts\.scanner\.allowedSenders/);
        assert.ok(!error.message.includes("\n"), "one line");
        assert.equal(error.code, "BRIDGE_BAD_CONFIG");
        assert.equal(error.exitCode, 2);
        return true;
      },
    );
  }
});

Deno.test("addressMatches() compares exact addresses and IPv4 and IPv6 networks", () => {
  assert.ok(addressMatches("192.168.1.50", "192.168.1.50"));
  assert.ok(!addressMatches("192.168.1.50", "192.168.1.51"));
  assert.ok(addressMatches("192.168.1.0/24", "192.168.1.51"));
  assert.ok(!addressMatches("192.168.1.0/24", "192.168.2.1"));
  assert.ok(addressMatches("0.0.0.0/0", "8.8.8.8"));
  assert.ok(addressMatches("127.0.0.1", "::ffff:127.0.0.1"), "IPv4-mapped");
  assert.ok(addressMatches("fd00::5", "FD00::5"));
  assert.ok(!addressMatches("fd00::5", "fd00::6"));
  assert.ok(addressMatches("fd00:0:0:0::5", "fd00::5"), "IPv6 in another spelling");
  assert.ok(addressMatches("2001:db8:1::/48", "2001:db8:1:42::9"));
  assert.ok(!addressMatches("2001:db8:1::/48", "2001:db8:2::9"));
  assert.ok(!addressMatches("10.0.0.0/8", "fd00::5"));
});
