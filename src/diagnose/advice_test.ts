import assert from "node:assert/strict";
import { type AdviceContext, advise } from "./advice.ts";

const OID = "6c0f9a4e-2b7d-4e15-9f83-d1a2b3c4e5f6";
const CTX: AdviceContext = {
  mailbox: "box@contoso.com",
  clientId: "3f6d2b1e-8c47-4a59-b0e2-71d9c5a8f403",
  tenantId: "9a1c3f52-7d4e-4b8a-9c61-2f0e8d7b5a34",
  protocol: "POP3",
  permissionOk: true,
  servicePrincipalId: OID,
};
const LANGS = ["en", "de"] as const;

Deno.test("advise() fills the token's oid into every step-3 command, in English and German", () => {
  for (const lang of LANGS) {
    const pop = advise("POP3_AUTH_FAILED", CTX, lang)!;
    assert.equal(pop.step, 3);
    assert.ok(pop.fix.includes(`New-ServicePrincipal -AppId ${CTX.clientId} -ObjectId ${OID};`));
    assert.ok(
      pop.fix.includes(
        `Add-MailboxPermission -Identity box@contoso.com -User ${OID} ` +
          "-AccessRights FullAccess",
      ),
    );
    assert.ok(pop.fix.includes("Set-CASMailbox -Identity box@contoso.com -PopEnabled $true"));
    assert.ok(pop.cause.includes(OID), `${lang}: the cause names where the value comes from`);
    const imap = advise("IMAP_AUTH_FAILED", { ...CTX, protocol: "IMAP" }, lang)!;
    assert.ok(imap.fix.includes(`-ObjectId ${OID}`));
    assert.ok(imap.fix.includes(`-User ${OID}`));
    assert.ok(imap.fix.includes("Set-CASMailbox -Identity box@contoso.com -ImapEnabled $true"));
    const notConnected = advise("IMAP_NOT_CONNECTED", CTX, lang)!;
    assert.ok(notConnected.fix.includes(`-User ${OID} -AccessRights FullAccess`));
    const sendAs = advise("SMTP_SEND_AS_DENIED", CTX, lang)!;
    assert.ok(sendAs.fix.includes(
      `Add-RecipientPermission -Identity box@contoso.com -Trustee ${OID} -AccessRights SendAs`,
    ));
  }
  // Without a token (or for a user token) the placeholders stay.
  const { servicePrincipalId: _, ...noOid } = CTX;
  assert.match(
    advise("POP3_AUTH_FAILED", noOid, "en")!.fix,
    /-ObjectId <Object ID from Enterprise/,
  );
  assert.match(advise("POP3_AUTH_FAILED", noOid, "de")!.fix, /-ObjectId <Objekt-ID aus/);
});

Deno.test("advise() says the Secret ID was given when AADSTS7000215 follows a GUID secret", () => {
  for (const lang of LANGS) {
    const plain = advise("AADSTS7000215", CTX, lang)!;
    assert.equal(plain.key, "AADSTS7000215");
    const refined = advise("AADSTS7000215", { ...CTX, secretIsId: true }, lang)!;
    assert.equal(refined.key, "SECRET_ID_GIVEN");
    assert.equal(refined.step, 1);
    assert.match(
      refined.cause,
      lang === "en" ? /Secret ID \(a GUID\)/ : /Geheimnis-ID \(eine GUID\)/,
    );
    assert.match(refined.fix, lang === "en" ? /Client secrets: the Value column/ : /Spalte Wert/);
    assert.ok(refined.fix.includes(CTX.clientId!));
    const warning = advise("CLIENT_SECRET_IS_ID", CTX, lang)!;
    assert.equal(warning.step, 1);
    assert.match(warning.cause, /AADSTS7000215/);
  }
});

Deno.test("advise() says -clientId is the tenant's ID when AADSTS700016 follows equal IDs", () => {
  const same = { ...CTX, clientId: CTX.tenantId, clientIdIsTenant: true };
  for (const lang of LANGS) {
    const refined = advise("AADSTS700016", same, lang)!;
    assert.equal(refined.key, "TENANT_ID_AS_CLIENT_ID");
    assert.match(
      refined.cause,
      lang === "en" ? /-clientId equals -tenantID/ : /-clientId gleich -tenantID/,
    );
    const warning = advise("CLIENT_ID_IS_TENANT", same, lang)!;
    assert.ok(warning.cause.includes(CTX.tenantId!));
    assert.match(
      warning.fix,
      lang === "en"
        ? /Application \(client\) ID goes into -clientId/
        : /Anwendungs-ID \(Client\) gehört zu -clientId/,
    );
    // A swapped pair is not seen locally; the unknown-tenant advice names it.
    assert.match(advise("AADSTS90002", CTX, lang)!.fix, lang === "en" ? /swapped/ : /vertauscht/);
  }
});

Deno.test("advise() names the app registration's Object ID as AADSTS700016's usual cause", () => {
  assert.match(
    advise("AADSTS700016", CTX, "en")!.cause,
    /Most often the app registration's Object ID was given instead of its Application \(client\) ID/,
  );
  assert.match(
    advise("AADSTS700016", CTX, "de")!.cause,
    /Meist wurde die Objekt-ID der App-Registrierung statt ihrer Anwendungs-ID \(Client\)/,
  );
});

Deno.test("advise() gives the 2026 SMTP refusals their exact commands, in English and German", () => {
  for (const lang of LANGS) {
    const tenant = advise("SMTP_AUTH_DISABLED_TENANT", CTX, lang)!;
    assert.match(tenant.fix, /^Set-TransportConfig -SmtpClientAuthenticationDisabled \$false/);
    assert.ok(tenant.fix.includes(
      "Set-CASMailbox -Identity box@contoso.com -SmtpClientAuthenticationDisabled $false",
    ));
    assert.match(tenant.cause, /5\.7\.139/);
    const retired = advise("SMTP_BASIC_AUTH_RETIRED", CTX, lang)!;
    assert.equal(retired.step, 3);
    assert.match(retired.cause, /5\.7\.30.*2026/);
    assert.ok(retired.fix.includes("SMTP.SendAsApp"));
    assert.ok(retired.fix.includes("Set-TransportConfig -SmtpClientAuthenticationDisabled $false"));
    assert.ok(retired.fix.includes(`-ObjectId ${OID}`));
    const sendAs = advise("SMTP_SEND_AS_DENIED", CTX, lang)!;
    assert.equal(sendAs.step, 3);
    assert.match(sendAs.cause, /SendAsDenied/);
  }
});

Deno.test("advise() names POP.AccessAsApp too when IMAP was tested only by default", () => {
  const ctx = { ...CTX, protocol: "IMAP", permissionOk: false, otherRole: "POP.AccessAsApp" };
  for (const lang of LANGS) {
    for (const code of ["ROLE_MISSING", "IMAP_AUTH_FAILED"] as const) {
      const a = advise(code, ctx, lang)!;
      assert.equal(a.step, 2);
      assert.match(a.fix, /IMAP\.AccessAsApp \((or|oder) POP\.AccessAsApp/);
    }
  }
  const { otherRole: _, ...explicit } = ctx;
  assert.doesNotMatch(advise("ROLE_MISSING", explicit, "en")!.fix, /POP\.AccessAsApp/);
});

Deno.test("advise() calls Entra's 5xx after the retries transient, in English and German", () => {
  const detail =
    "Entra ID refused the token request: login.microsoftonline.com answered HTTP 500 " +
    "Internal Server Error (AADSTS50000: There was an error issuing a token.); gave up after 4 " +
    "attempts in 2.1 s; Trace ID: 7e3f1c2a-9b4d-4e8f-a1c6-5d2b8e9f0a13";
  for (const lang of LANGS) {
    for (const code of ["HTTP_500", "HTTP_503", "AADSTS50000"] as const) {
      const advice = advise(code, { ...CTX, detail }, lang)!;
      assert.equal(advice.key, "ENTRA_UNAVAILABLE", `${code} ${lang}`);
      assert.equal(advice.step, "network");
      assert.match(advice.cause, /5xx/);
      assert.match(advice.fix, /status\.cloud\.microsoft/);
      assert.match(advice.fix, /Trace ID/);
    }
  }
  assert.match(advise("HTTP_503", CTX, "en")!.fix, /^Retry in a few minutes/);
  assert.match(advise("HTTP_503", CTX, "de")!.fix, /^In einigen Minuten erneut versuchen/);
  // The same AADSTS code in a plain refusal (HTTP 400) is not an outage.
  const refused = "Entra ID refused the token request: AADSTS50000: There was an error.";
  assert.equal(advise("AADSTS50000", { ...CTX, detail: refused }, "en"), undefined);
});
