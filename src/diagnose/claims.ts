/**
 * Decodes a JWT access token's claims for display and checks. Decode only:
 * the signature is not verified and nothing here is used for security.
 */
export type Claims = Record<string, unknown>;

function decodeBase64Url(part: string): string {
  const b64 = part.replace(/-/g, "+").replace(/_/g, "/");
  const padded = b64 + "=".repeat((4 - (b64.length % 4)) % 4);
  return new TextDecoder().decode(Uint8Array.from(atob(padded), (c) => c.charCodeAt(0)));
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
