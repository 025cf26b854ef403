/**
 * Checks a token's claims against what the protocol and sign-in need, before
 * connecting: a missing role then names step 2 instead of surfacing later as
 * a bare "authentication failed" from the server. Decode-only; nothing here
 * is a security decision.
 */
import type { Claims } from "./claims.ts";
import { CLOUDS } from "../net/clouds.ts";

export type Protocol = "IMAP" | "POP3" | "SMTP";

export const APP_ROLE: Record<Protocol, string> = {
  IMAP: "IMAP.AccessAsApp",
  POP3: "POP.AccessAsApp",
  SMTP: "SMTP.SendAsApp",
};

export const USER_SCOPE: Record<Protocol, string> = {
  IMAP: "IMAP.AccessAsUser.All",
  POP3: "POP.AccessAsUser.All",
  SMTP: "SMTP.Send",
};

const EXCHANGE_AUDIENCES = [
  ...Object.values(CLOUDS).map((c) => c.resource),
  "https://outlook.office.com",
  "00000002-0000-0ff1-ce00-000000000000",
];

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export type FindingCode =
  | "WRONG_AUDIENCE"
  | "WRONG_TENANT"
  | "ROLE_MISSING"
  | "SCOPE_MISSING"
  | "TOKEN_EXPIRED";

export interface Finding {
  code: FindingCode;
  /** The claim's actual value, shown to the user. */
  detail?: string;
}

export interface ClaimsCheck {
  findings: Finding[];
  /** Whether the token carries the protocol's permission; undefined when it cannot be told. */
  permissionOk: boolean | undefined;
}

export interface ClaimsExpectation {
  protocol: Protocol;
  kind: "app" | "user";
  tenantId: string;
  /** The token was requested with a `.default` scope. */
  requestedDefault: boolean;
  /** Seconds since the epoch. */
  now?: number;
}

/**
 * `String(value)` for a claim from an unverified token: JSON such as `{"toString":1}` makes
 * `String()` throw, and JSON.stringify never does on parsed JSON.
 */
function text(value: unknown): string {
  try {
    return String(value);
  } catch {
    return JSON.stringify(value);
  }
}

function list(value: unknown, separator = /\s+/): string[] {
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === "string");
  return typeof value === "string" ? value.split(separator).filter(Boolean) : [];
}

export function checkClaims(claims: Claims | null, expect: ClaimsExpectation): ClaimsCheck {
  // Opaque tokens exist (not for Exchange today): nothing can be said about them.
  if (!claims) return { findings: [], permissionOk: undefined };
  const findings: Finding[] = [];
  const aud = text(claims.aud ?? "").replace(/\/$/, "");
  if (!EXCHANGE_AUDIENCES.includes(aud.toLowerCase())) {
    findings.push({ code: "WRONG_AUDIENCE", detail: aud || "(none)" });
  }
  const tid = typeof claims.tid === "string" ? claims.tid : undefined;
  if (tid && GUID.test(expect.tenantId) && tid.toLowerCase() !== expect.tenantId.toLowerCase()) {
    findings.push({ code: "WRONG_TENANT", detail: tid });
  }
  let permissionOk: boolean | undefined;
  if (expect.kind === "app") {
    permissionOk = list(claims.roles).includes(APP_ROLE[expect.protocol]);
    if (!permissionOk) {
      findings.push({ code: "ROLE_MISSING", detail: list(claims.roles).join(" ") || "(none)" });
    }
  } else {
    permissionOk = list(claims.scp).includes(USER_SCOPE[expect.protocol]);
    // With `.default` the consented permissions decide; Entra lists them in scp, but a
    // missing one is reported by the server, not guessed here.
    if (!permissionOk && !expect.requestedDefault) {
      findings.push({ code: "SCOPE_MISSING", detail: text(claims.scp ?? "(none)") });
    }
    if (!permissionOk && expect.requestedDefault) permissionOk = undefined;
  }
  const exp = typeof claims.exp === "number" ? claims.exp : undefined;
  if (exp !== undefined && exp <= (expect.now ?? Date.now() / 1000)) {
    // A time before year -271821 has no date (toISOString throws): show the number instead.
    const date = new Date(exp * 1000);
    findings.push({
      code: "TOKEN_EXPIRED",
      detail: Number.isNaN(date.getTime()) ? String(exp) : date.toISOString(),
    });
  }
  return { findings, permissionOk };
}
