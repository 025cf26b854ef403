import assert from "node:assert/strict";
import { parseBridgeConfig } from "./config.ts";
import { signInCommand } from "./user_credential.ts";

const HASH =
  "scrypt$16384$8$1$c2FsdHNhbHRzYWx0c2FsdA==$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g=";

function parse(credential: unknown, extra: Record<string, unknown> = {}) {
  return parseBridgeConfig(
    JSON.stringify({
      tenantId: "contoso.onmicrosoft.com",
      clientId: "3f6d2b1e-8c47-4a59-b0e2-71d9c5a8f403",
      credential,
      listeners: [{ protocol: "POP3", port: 1110 }],
      accounts: { scanner: { mailbox: "box@contoso.com", passwordHash: HASH } },
      ...extra,
    }),
    "bridge.json",
    (path) => {
      throw new Deno.errors.NotFound(path);
    },
  );
}

Deno.test("parseBridgeConfig() takes a cached user sign-in as the credential", () => {
  assert.deepEqual(parse({ user: " admin@contoso.com " }).credential, {
    kind: "user",
    user: "admin@contoso.com",
    tokenCachePath: undefined,
  });
  assert.deepEqual(
    parse({ user: "admin@contoso.com", tokenCachePath: "/var/cache/b" }).credential,
    {
      kind: "user",
      user: "admin@contoso.com",
      tokenCachePath: "/var/cache/b",
    },
  );
});

Deno.test("parseBridgeConfig() names the field of a wrong user credential", () => {
  const cases: [unknown, RegExp][] = [
    [{ user: "admin@contoso.com", secret: "s" }, /credential: give exactly one of .* or user/],
    [{ user: "admin" }, /credential\.user: 'admin' is not an e-mail address/],
    [{ user: "'admin@contoso.com'" }, /credential\.user: .* is in quotes/],
    [{ user: "" }, /credential\.user: expected a non-empty string/],
    [
      { secretFile: "/x", tokenCachePath: "/c" },
      /credential\.tokenCachePath: only with credential\.user/,
    ],
    [{ user: "a@b.c", keyFile: "/k" }, /credential\.keyFile: only with credential\.certificate/],
  ];
  for (const [credential, message] of cases) {
    assert.throws(() => parse(credential), (e: Error) => {
      assert.match(e.message, message);
      assert.match(e.message, /^-Bridge bridge\.json: /);
      return true;
    });
  }
});

Deno.test("signInCommand() is the program's own device-code sign-in for the same cache", () => {
  const c = parse({ user: "admin@contoso.com" });
  assert.equal(
    signInCommand(c, "admin@contoso.com"),
    "Get-IMAPAccessToken -tenantID contoso.onmicrosoft.com -clientId " +
      "3f6d2b1e-8c47-4a59-b0e2-71d9c5a8f403 -DeviceCode -LoginHint admin@contoso.com",
  );
  const gov = parse({ user: "a@b.us" }, { cloud: "USGov", authorityHost: "https://login.example" });
  assert.equal(
    signInCommand(gov, "a@b.us", "/var/cache/my bridge"),
    "Get-IMAPAccessToken -tenantID contoso.onmicrosoft.com -clientId " +
      "3f6d2b1e-8c47-4a59-b0e2-71d9c5a8f403 -Cloud USGov -AuthorityHost https://login.example " +
      "-TokenCachePath '/var/cache/my bridge' -DeviceCode -LoginHint a@b.us",
  );
});
