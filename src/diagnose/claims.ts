/**
 * Decodes a JWT access token's claims for display and checks. Decode only:
 * the signature is not verified and nothing here is used for security.
 */
import { fromBase64 } from "../base64.ts";

export type Claims = Record<string, unknown>;

function decodeBase64Url(part: string): string {
  const b64 = part.replace(/-/g, "+").replace(/_/g, "/");
  const padded = b64 + "=".repeat((4 - (b64.length % 4)) % 4);
  return new TextDecoder().decode(fromBase64(padded));
}

/** Returns the payload of a JWT, or null if the token is not a readable JWT (opaque tokens exist). */
export function decodeClaims(token: string): Claims | null {
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  try {
    const payload = JSON.parse(decodeBase64Url(parts[1]));
    return payload && typeof payload === "object" && !Array.isArray(payload) ? payload : null;
  } catch {
    return null;
  }
}

/**
 * The claims worth showing: identity of app, tenant and audience, roles and
 * scopes, validity. Keeps output stable and small; never includes the token.
 */
const SHOWN = [
  "aud",
  "iss",
  "tid",
  "appid",
  "azp",
  "app_displayname",
  "oid",
  "upn",
  "unique_name",
  "roles",
  "scp",
  "iat",
  "nbf",
  "exp",
] as const;

export function summarizeClaims(claims: Claims): Claims {
  const out: Claims = {};
  for (const key of SHOWN) if (claims[key] !== undefined) out[key] = claims[key];
  return out;
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The object ID of the app's service principal (its Enterprise application): the `oid` of a
 * client-credential token. It is what New-ServicePrincipal -ObjectId needs; the App
 * registration's own object ID, which admins often paste instead, never appears in the token.
 */
export function servicePrincipalId(claims: Claims | null): string | undefined {
  const oid = claims?.oid;
  return typeof oid === "string" && GUID.test(oid) ? oid : undefined;
}
