/**
 * Mix-ups in the parameters that can be seen before anything is sent: a GUID
 * given as the client secret (almost surely the Secret ID, not its Value) and
 * the tenant's ID given as the client ID. Each is a warning with advice; the
 * request is still made, and if Entra refuses it the advice says plainly what
 * was mixed up (advice.ts refines AADSTS7000215 and AADSTS700016).
 */

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export type MixupCode = "CLIENT_SECRET_IS_ID" | "CLIENT_ID_IS_TENANT";

/**
 * Entra's client secret values are 40 characters with `~`, `.` or `_` in them;
 * the Secret ID shown beside the value is a GUID.
 */
export function secretLooksLikeId(secret: string): boolean {
  return GUID.test(secret.trim());
}

/** `-clientId` holds the tenant's own ID (the Directory (tenant) ID pasted twice). */
export function clientIdIsTenant(clientId: string, tenantId: string): boolean {
  return GUID.test(tenantId.trim()) &&
    clientId.trim().toLowerCase() === tenantId.trim().toLowerCase();
}
