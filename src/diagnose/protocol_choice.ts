/**
 * Which protocol to test when -Protocol is not given: the token says what the
 * app (roles) or the user (scp) may do. If it allows exactly one of IMAP and
 * POP3, that one is tested; if both or neither, IMAP, as the original script.
 * An explicit -Protocol always wins. SMTP is never chosen by itself.
 */
import type { Claims } from "./claims.ts";
import { APP_ROLE, type Protocol, USER_SCOPE } from "./claims_check.ts";

export interface ProtocolChoice {
  protocol: Protocol;
  /** `parameter`: -Protocol; `token`: the token's permissions; `default`: IMAP, as the original. */
  source: "parameter" | "token" | "default";
  /** Why, in English for JSON, e.g. `roles: POP.AccessAsApp`; null for `parameter`. */
  reason: string | null;
  /** Which of IMAP and POP3 the token allows (empty for `parameter` and unreadable claims). */
  allowed: ("IMAP" | "POP3")[];
}

function names(value: unknown): string[] {
  const items = Array.isArray(value)
    ? value.filter((v): v is string => typeof v === "string")
    : typeof value === "string"
    ? value.split(/\s+/)
    : [];
  // Delegated scopes may come as full URLs (https://outlook.office.com/POP.AccessAsUser.All).
  return items.filter(Boolean).map((s) => s.slice(s.lastIndexOf("/") + 1).toLowerCase());
}

export function chooseProtocol(
  claims: Claims | null,
  kind: "app" | "user",
  explicit?: Protocol,
): ProtocolChoice {
  if (explicit) return { protocol: explicit, source: "parameter", reason: null, allowed: [] };
  if (!claims) {
    const reason = "the token's claims cannot be read";
    return { protocol: "IMAP", source: "default", reason, allowed: [] };
  }
  const claim = kind === "app" ? "roles" : "scp";
  const wanted = kind === "app" ? APP_ROLE : USER_SCOPE;
  const granted = names(claims[claim]);
  const allowed = (["IMAP", "POP3"] as const).filter((p) =>
    granted.includes(wanted[p].toLowerCase())
  );
  if (allowed.length === 1) {
    const reason = `${claim}: ${wanted[allowed[0]]}`;
    return { protocol: allowed[0], source: "token", reason, allowed };
  }
  return {
    protocol: "IMAP",
    source: "default",
    reason: allowed.length === 2
      ? `${claim} allow both IMAP and POP3`
      : `${claim} allow neither IMAP nor POP3`,
    allowed,
  };
}
