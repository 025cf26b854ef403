/**
 * Error -> advice: which of the three setup steps (or the network, or the
 * client's own input) is wrong, why, and the concrete fix with the user's own
 * values filled in. The texts live in messages_en.ts / messages_de.ts; this
 * file only decides which advice applies.
 */
import type { ErrorCode } from "../errors.ts";
import { type Lang, MESSAGES, type Values } from "./messages.ts";
import { APP_ROLE } from "./claims_check.ts";

/** Setup steps of the guide: 1 app registration, 2 API permission + consent, 3 Exchange. */
export type Step = 1 | 2 | 3 | "network" | "client";

export interface Advice {
  key: AdviceCode;
  step: Step;
  cause: string;
  fix: string;
}

/**
 * Advice that is not one error code's: the same code gets different advice
 * when the token's claims or the server's words tell more (see adviceKey).
 */
export const REFINEMENTS = [
  "AUTH_FAILED_ROLE_MISSING",
  "CONNECTION_CLOSED_LF",
  // AADSTS7000215 when -clientsecret was a GUID: the Secret ID was given.
  "SECRET_ID_GIVEN",
  // AADSTS7000215 after whitespace around -clientsecret was removed.
  "SECRET_TRIMMED",
  // AADSTS700016 when -clientId equals -tenantID.
  "TENANT_ID_AS_CLIENT_ID",
  // SMTP to a port that expects TLS from the first byte.
  "SMTP_IMPLICIT_TLS_PORT",
  // The token endpoint kept answering 5xx until the retries ran out (HTTP_5xx, or the AADSTS
  // code such an answer named): Microsoft's side, for now.
  "ENTRA_UNAVAILABLE",
] as const;
export type Refinement = typeof REFINEMENTS[number];

/** Where each advice belongs. The keys are error codes (errors.ts) and refinements. */
export const ADVICE_STEPS = {
  AADSTS7000215: 1,
  AADSTS7000222: 1,
  AADSTS700016: 1,
  AADSTS90002: 1,
  AADSTS700027: 1,
  AADSTS7000218: 1,
  AADSTS700025: 1,
  AADSTS50011: 1,
  AADSTS65001: 2,
  AADSTS500011: 2,
  AADSTS1002012: "client",
  AADSTS70011: "client",
  AADSTS50076: "client",
  AADSTS53003: "client",
  AADSTS70000: "client",
  AADSTS700082: "client",
  AADSTS900144: "client",
  AADSTS50173: "client",
  AADSTS65004: "client",
  AADSTS70020: "client",
  CLIENT_SECRET_IS_ID: 1,
  SECRET_ID_GIVEN: 1,
  SECRET_TRIMMED: 1,
  CLIENT_ID_IS_TENANT: 1,
  TENANT_ID_AS_CLIENT_ID: 1,
  ROLE_MISSING: 2,
  SCOPE_MISSING: 2,
  WRONG_AUDIENCE: "client",
  WRONG_TENANT: 1,
  TOKEN_EXPIRED: "client",
  IMAP_AUTH_FAILED: 3,
  POP3_AUTH_FAILED: 3,
  AUTH_FAILED_ROLE_MISSING: 2,
  IMAP_NOT_CONNECTED: 3,
  IMAP_LIST_FAILED: 3,
  POP3_STAT_FAILED: 3,
  POP3_XOAUTH2_UNSUPPORTED: "network",
  IMAP_XOAUTH2_UNSUPPORTED: "network",
  CONNECTION_CLOSED_LF: "client",
  SMTP_AUTH_FAILED: 3,
  SMTP_AUTH_DISABLED_TENANT: 3,
  SMTP_AUTH_DISABLED_MAILBOX: 3,
  SMTP_BASIC_AUTH_DISABLED: 3,
  SMTP_NOT_AUTHENTICATED: 3,
  SMTP_SEND_FAILED: 3,
  SMTP_BASIC_AUTH_RETIRED: 3,
  SMTP_SEND_AS_DENIED: 3,
  SMTP_NO_STARTTLS: "network",
  SMTP_XOAUTH2_UNSUPPORTED: "network",
  IMAP_BAD_GREETING: "network",
  POP3_BAD_GREETING: "network",
  SMTP_BAD_GREETING: "network",
  TLS_FAILED: "network",
  DNS_FAILED: "network",
  CONNECTION_REFUSED: "network",
  TIMEOUT: "network",
  TLS_UNTRUSTED: "network",
  TLS_HOSTNAME: "network",
  PROXY_REFUSED: "network",
  PROXY_AUTH_FAILED: "network",
  PROXY_UNREACHABLE: "network",
  SIGN_IN_REQUIRED: "client",
  REFRESH_FAILED: "client",
  SMTP_IMPLICIT_TLS_PORT: "network",
  ENTRA_UNAVAILABLE: "network",
} as const satisfies Partial<Record<ErrorCode | Refinement, Step>>;

export type AdviceCode = keyof typeof ADVICE_STEPS;

/** What the advice may need to know beyond the error code. */
export interface AdviceContext extends Values {
  /** The token carries the protocol's role/scope (from the claims check); undefined = unknown. */
  permissionOk?: boolean;
  /** -clientsecret has the form of a GUID (diagnose/mixups.ts): most likely the Secret ID. */
  secretIsId?: boolean;
  /** Whitespace around -clientsecret was removed before it was sent. */
  secretTrimmed?: boolean;
  /** -clientId equals -tenantID (diagnose/mixups.ts). */
  clientIdIsTenant?: boolean;
}

/** Picks the advice for an error code; the token's claims refine login failures. */
export function adviceKey(
  code: ErrorCode | Refinement | undefined,
  ctx: AdviceContext,
): AdviceCode | undefined {
  if (!code) return undefined;
  const loginRefused: (ErrorCode | Refinement)[] = [
    "IMAP_AUTH_FAILED",
    "POP3_AUTH_FAILED",
    "SMTP_AUTH_FAILED",
  ];
  if (loginRefused.includes(code) && ctx.permissionOk === false) {
    return "AUTH_FAILED_ROLE_MISSING";
  }
  if (code === "IMAP_BYE" && /closed\. 13/.test(ctx.detail ?? "")) {
    return "CONNECTION_CLOSED_LF";
  }
  if (code === "AADSTS7000215" && ctx.secretIsId) return "SECRET_ID_GIVEN";
  if (code === "AADSTS7000215" && ctx.secretTrimmed) return "SECRET_TRIMMED";
  if (code === "AADSTS700016" && ctx.clientIdIsTenant) return "TENANT_ID_AS_CLIENT_ID";
  // SMTP submission starts in plain text; a port that expects TLS from the first byte
  // (465, or IMAP's/POP3's) stays silent or hangs up: the firewall is not the problem.
  if (
    ctx.protocol === "SMTP" && IMPLICIT_TLS_PORTS.includes(Number(ctx.port)) &&
    ["TIMEOUT", "CONNECTION_CLOSED", "SMTP_BAD_GREETING", "SMTP_PROTOCOL_ERROR"].includes(code)
  ) {
    return "SMTP_IMPLICIT_TLS_PORT";
  }
  // Entra's 5xx after the retries: network.ts's message says "answered HTTP 5xx ...; gave up".
  if (
    /^HTTP_5\d\d$/.test(code) ||
    (/^AADSTS\d+$/.test(code) &&
      /answered HTTP 5\d\d\b[\s\S]*; gave up after/.test(ctx.detail ?? ""))
  ) {
    return "ENTRA_UNAVAILABLE";
  }
  return code in ADVICE_STEPS ? code as AdviceCode : undefined;
}

/** Ports where the server expects TLS from the first byte. */
const IMPLICIT_TLS_PORTS = [465, 993, 995];

export function advise(
  code: ErrorCode | Refinement | undefined,
  ctx: AdviceContext,
  lang: Lang,
): Advice | undefined {
  const key = adviceKey(code, ctx);
  if (!key) return undefined;
  const text = MESSAGES[lang];
  const values: Values = {
    ...ctx,
    mailbox: ctx.mailbox ?? "<mailbox>",
    clientId: ctx.clientId ?? "<client ID>",
    tenantId: ctx.tenantId ?? "<tenant>",
    detail: ctx.detail ?? "?",
    server: ctx.server ?? "<server>",
    protocol: ctx.protocol ?? "IMAP",
    port: ctx.port ?? (ctx.protocol === "POP3" ? 995 : 993),
    protocolFlag: ctx.protocol === "POP3" ? "-PopEnabled" : "-ImapEnabled",
    role: APP_ROLE[ctx.protocol as keyof typeof APP_ROLE] ?? APP_ROLE.IMAP,
  };
  return {
    key,
    step: ADVICE_STEPS[key],
    cause: text[`${key}.cause`](values),
    fix: text[`${key}.fix`](values),
  };
}
