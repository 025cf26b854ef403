import assert from "node:assert/strict";
import { checkClaims, type ClaimsExpectation } from "./claims_check.ts";

const APP_IMAP: ClaimsExpectation = {
  protocol: "IMAP",
  kind: "app",
  tenantId: "11111111-2222-3333-4444-555555555555",
  requestedDefault: true,
  now: 1_750_000_000,
};

Deno.test("checkClaims() reports an expiry too far in the past for a date (fuzz finding)", () => {
  // new Date(-1e20 * 1000).toISOString() throws RangeError "Invalid time value".
  for (const exp of [-1e20, -1e308]) {
    const { findings } = checkClaims(
      { aud: "https://outlook.office365.com", roles: ["IMAP.AccessAsApp"], exp },
      APP_IMAP,
    );
    assert.deepEqual(findings, [{ code: "TOKEN_EXPIRED", detail: String(exp) }]);
  }
  const { findings } = checkClaims({ exp: 0 }, APP_IMAP);
  assert.deepEqual(findings.at(-1), { code: "TOKEN_EXPIRED", detail: "1970-01-01T00:00:00.000Z" });
});

Deno.test("checkClaims() shows claims whose toString is not a function (fuzz finding)", () => {
  // JSON can hold {"toString": 1}; String() of such an object throws TypeError.
  const odd = JSON.parse('{"aud":{"toString":1},"scp":[{"valueOf":"x","toString":[]}]}');
  const app = checkClaims(odd, APP_IMAP);
  assert.deepEqual(app.findings[0], { code: "WRONG_AUDIENCE", detail: '{"toString":1}' });
  const user = checkClaims(odd, { ...APP_IMAP, kind: "user", requestedDefault: false });
  assert.deepEqual(user.findings.map((f) => f.code), ["WRONG_AUDIENCE", "SCOPE_MISSING"]);
  assert.equal(user.findings[1].detail, '[{"valueOf":"x","toString":[]}]');
});
