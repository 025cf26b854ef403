/**
 * JWT-like strings for claim decoding: three base64url parts whose payload is JSON with the
 * claims Entra puts in an Exchange token, holding values of every JSON type (and the ones
 * that trip `String()` and `Date`: objects with a `toString` member, huge and negative times),
 * sometimes edited as text before encoding so the JSON itself is broken.
 */

import { mutateString, randomString } from "../mutate.ts";
import type { Rng } from "../rng.ts";

const CLAIM_NAMES = [
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
  "email",
  "__proto__",
  "constructor",
  "toString",
];

const STRINGS = [
  "https://outlook.office365.com",
  "https://outlook.office365.com/",
  "https://outlook.office.com",
  "00000002-0000-0ff1-ce00-000000000000",
  "https://graph.microsoft.com",
  "11111111-2222-3333-4444-555555555555",
  "IMAP.AccessAsApp",
  "POP.AccessAsApp",
  "SMTP.SendAsApp",
  "IMAP.AccessAsUser.All SMTP.Send offline_access",
  "",
  " ",
];

const NUMBERS = [
  0,
  -1,
  1,
  1.5,
  1700000000,
  4102444800,
  8.64e12,
  -8.64e12,
  1e20,
  -1e20,
  1e308,
  -1e308,
];

/** Sets an own property, even `__proto__` (which plain assignment turns into the prototype). */
function set(object: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(object, key, {
    value,
    enumerable: true,
    writable: true,
    configurable: true,
  });
}

/** Any JSON value, nested at most `depth` levels. */
export function randomJson(rng: Rng, depth = 3): unknown {
  const kind = rng.int(depth > 0 ? 8 : 5);
  switch (kind) {
    case 0:
      return null;
    case 1:
      return rng.chance(0.5);
    case 2:
      return rng.chance(0.7) ? rng.pick(NUMBERS) : (rng.float() - 0.5) * 10 ** rng.int(22);
    case 3:
    case 4:
      return rng.chance(0.7) ? rng.pick(STRINGS) : randomString(rng, 30);
    case 5:
    case 6:
      return Array.from({ length: rng.small(4) }, () => randomJson(rng, depth - 1));
    default: {
      const object: Record<string, unknown> = {};
      for (let i = rng.small(3); i > 0; i--) {
        set(
          object,
          rng.pick(["toString", "valueOf", "x", ...CLAIM_NAMES]),
          randomJson(rng, depth - 1),
        );
      }
      return object;
    }
  }
}

/** A claims object: mostly Exchange's claims with plausible values, some odd ones. */
export function claimsObject(rng: Rng): Record<string, unknown> {
  const claims: Record<string, unknown> = {};
  if (rng.chance(0.7)) claims.aud = rng.pick(STRINGS.slice(0, 5));
  if (rng.chance(0.7)) claims.tid = "11111111-2222-3333-4444-555555555555";
  if (rng.chance(0.5)) {
    claims.roles = [rng.pick(["IMAP.AccessAsApp", "POP.AccessAsApp", "SMTP.SendAsApp"])];
  }
  if (rng.chance(0.3)) claims.scp = "IMAP.AccessAsUser.All POP.AccessAsUser.All SMTP.Send";
  if (rng.chance(0.7)) claims.exp = rng.pick(NUMBERS);
  for (let i = rng.small(4); i > 0; i--) set(claims, rng.pick(CLAIM_NAMES), randomJson(rng));
  return claims;
}

export function base64Url(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

const JSON_TOKENS = [
  "{",
  "}",
  "[",
  "]",
  ",",
  ":",
  '"',
  "null",
  "1e999",
  "-1e999",
  '"exp":',
  '"aud":',
  '{"toString":1}',
  "\\u0000",
  "\\ud800",
];

/** A string that looks like a JWT (or nearly). */
export function jwtLike(rng: Rng): string {
  const header = rng.chance(0.9)
    ? base64Url('{"typ":"JWT","alg":"RS256","kid":"k"}')
    : randomString(rng, 20);
  let json = JSON.stringify(claimsObject(rng));
  if (rng.chance(0.3)) json = mutateString(rng, json, JSON_TOKENS, 8192);
  let payload = base64Url(json);
  if (rng.chance(0.1)) payload = payload.replace(/-/g, "+").replace(/_/g, "/") + "==";
  if (rng.chance(0.05)) payload = mutateString(rng, payload, ["=", "+", "/", "-", "_", " ", "."]);
  const signature = rng.chance(0.9) ? base64Url(randomString(rng, 40)) : "";
  const parts = [header, payload, signature];
  if (rng.chance(0.05)) parts.push("extra");
  if (rng.chance(0.05)) parts.pop();
  return parts.join(".");
}
