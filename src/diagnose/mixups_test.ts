import assert from "node:assert/strict";
import { clientIdIsTenant, secretLooksLikeId } from "./mixups.ts";

Deno.test("secretLooksLikeId() is true for a GUID (the Secret ID), false for secret values", () => {
  assert.equal(secretLooksLikeId("0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"), true);
  assert.equal(secretLooksLikeId(" 0F1E2D3C-4B5A-4978-8695-A4B3C2D1E0F9 "), true);
  assert.equal(secretLooksLikeId("Qx8~vR2.pL9_kT4-mN7wZ3yB6cD1fH5jS0aE"), false);
  assert.equal(secretLooksLikeId("0f1e2d3c-secret-id-4b5a"), false);
  assert.equal(secretLooksLikeId(""), false);
});

Deno.test("clientIdIsTenant() is true only when -clientId repeats the tenant's GUID", () => {
  const tenant = "9a1c3f52-7d4e-4b8a-9c61-2f0e8d7b5a34";
  assert.equal(clientIdIsTenant(tenant, tenant), true);
  assert.equal(clientIdIsTenant(tenant.toUpperCase(), tenant), true);
  assert.equal(clientIdIsTenant("3f6d2b1e-8c47-4a59-b0e2-71d9c5a8f403", tenant), false);
  assert.equal(clientIdIsTenant("contoso.onmicrosoft.com", "contoso.onmicrosoft.com"), false);
});
