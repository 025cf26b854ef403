import assert from "node:assert/strict";
import { MESSAGES } from "./messages.ts";
import { ADVICE_STEPS, type AdviceCode, advise, REFINEMENTS } from "./advice.ts";
import { isErrorCode, TOOL_CODES } from "../errors.ts";
import { checkClaims } from "./claims_check.ts";
import { tableRows, troubleshootingMarkdown } from "../../scripts/troubleshooting.ts";

Deno.test("MESSAGES: English and German have exactly the same keys", () => {
  assert.deepEqual(Object.keys(MESSAGES.de).sort(), Object.keys(MESSAGES.en).sort());
});

Deno.test("advise() gives every advice code a step, cause and fix in both languages", () => {
  const values = {
    mailbox: "box@contoso.com",
    clientId: "APP-ID",
    tenantId: "TENANT",
    protocol: "IMAP",
  };
  for (const code of Object.keys(ADVICE_STEPS) as AdviceCode[]) {
    for (const lang of ["en", "de"] as const) {
      const a = advise(code, { ...values, permissionOk: true }, lang)!;
      assert.ok(a, `${code} ${lang}`);
      assert.equal(a.step, ADVICE_STEPS[code as keyof typeof ADVICE_STEPS]);
      assert.ok(a.cause.length > 10 && a.fix.length > 10, `${code} ${lang}`);
      assert.doesNotMatch(a.cause + a.fix, /undefined/, `${code} ${lang}`);
    }
  }
  assert.notEqual(
    advise("AADSTS7000215", values, "en")!.cause,
    advise("AADSTS7000215", values, "de")!.cause,
  );
});

Deno.test("advise() fills in the user's own values and never translates commands", () => {
  const ctx = { mailbox: "box@contoso.com", clientId: "APP-ID", tenantId: "T", protocol: "IMAP" };
  for (const lang of ["en", "de"] as const) {
    const a = advise("IMAP_NOT_CONNECTED", ctx, lang)!;
    assert.equal(a.step, 3);
    assert.match(
      a.fix,
      /Add-MailboxPermission -Identity box@contoso\.com -User .* -AccessRights FullAccess/,
    );
    const sp = advise("IMAP_AUTH_FAILED", { ...ctx, permissionOk: true }, lang)!;
    assert.match(sp.fix, /New-ServicePrincipal -AppId APP-ID -ObjectId/);
    assert.match(sp.cause, lang === "en" ? /Enterprise application/ : /Unternehmensanwendung/);
  }
});

Deno.test("advise() blames step 2 for a refused login when the token lacks the role", () => {
  const a = advise(
    "POP3_AUTH_FAILED",
    { protocol: "POP3", clientId: "C", permissionOk: false },
    "en",
  )!;
  assert.equal(a.key, "AUTH_FAILED_ROLE_MISSING");
  assert.equal(a.step, 2);
  assert.match(a.fix, /POP\.AccessAsApp/);
  assert.equal(advise("NO_SASL", {}, "en"), undefined);
});

Deno.test("checkClaims() finds a missing role, wrong audience, tenant and expiry", () => {
  const now = 1_800_000_000;
  const good = {
    aud: "https://outlook.office365.com",
    tid: "9a1c3f52-7d4e-4b8a-9c61-2f0e8d7b5a34",
    roles: ["POP.AccessAsApp"],
    exp: now + 3600,
  };
  const expect = {
    protocol: "POP3" as const,
    kind: "app" as const,
    tenantId: good.tid,
    requestedDefault: true,
    now,
  };
  assert.deepEqual(checkClaims(good, expect), { findings: [], permissionOk: true });
  const bad = checkClaims(
    {
      ...good,
      aud: "https://graph.microsoft.com",
      tid: "0badbad0-0000-4000-8000-000000000000",
      roles: [],
      exp: now - 1,
    },
    expect,
  );
  assert.deepEqual(bad.findings.map((f) => f.code), [
    "WRONG_AUDIENCE",
    "WRONG_TENANT",
    "ROLE_MISSING",
    "TOKEN_EXPIRED",
  ]);
  assert.equal(bad.permissionOk, false);
  const user = checkClaims({ ...good, roles: undefined, scp: "IMAP.AccessAsUser.All" }, {
    ...expect,
    kind: "user",
    requestedDefault: false,
  });
  assert.deepEqual(user.findings.map((f) => f.code), ["SCOPE_MISSING"]);
});

Deno.test("README's troubleshooting table is the one generated from the advice table", async () => {
  const readme = await Deno.readTextFile(new URL("../../README.md", import.meta.url));
  assert.deepEqual(
    tableRows(readme),
    tableRows(troubleshootingMarkdown()),
    "run `deno task docs` to regenerate the README section",
  );
  assert.equal(tableRows(readme).length, Object.keys(ADVICE_STEPS).length);
});

Deno.test("ADVICE_STEPS names only error codes that exist (errors.ts) or refinements", () => {
  const refinements: readonly string[] = REFINEMENTS;
  for (const key of Object.keys(ADVICE_STEPS)) {
    const ours = (TOOL_CODES as readonly string[]).includes(key);
    const entra = /^AADSTS\d+$/.test(key);
    assert.ok(ours || entra || refinements.includes(key), `advice for unknown code ${key}`);
    assert.ok(refinements.includes(key) || isErrorCode(key), key);
  }
});

Deno.test("TOOL_CODES spells every code once, upper case with underscores", () => {
  assert.equal(new Set(TOOL_CODES).size, TOOL_CODES.length);
  for (const code of TOOL_CODES) assert.match(code, /^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/, code);
});

Deno.test("advise() points SMTP on an implicit-TLS port at 587/STARTTLS, not the firewall", () => {
  for (const code of ["TIMEOUT", "CONNECTION_CLOSED"] as const) {
    for (const lang of ["en", "de"] as const) {
      const a = advise(code, { protocol: "SMTP", server: "smtp.office365.com", port: 465 }, lang);
      assert.equal(a?.key, "SMTP_IMPLICIT_TLS_PORT", `${code} ${lang}`);
      assert.match(a!.cause, /465/);
      assert.match(a!.fix, /-Port 587/);
      assert.doesNotMatch(`${a!.cause} ${a!.fix}`, /firewall/i);
    }
  }
  // The same code elsewhere keeps its own advice.
  assert.equal(advise("TIMEOUT", { protocol: "SMTP", port: 587 }, "en")?.key, "TIMEOUT");
  assert.equal(advise("TIMEOUT", { protocol: "IMAP", port: 993 }, "en")?.key, "TIMEOUT");
});
