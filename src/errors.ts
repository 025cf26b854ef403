/**
 * Typed errors. Every failure the tool reports is one of these; each carries
 * the process exit code so that `main.ts` is the single place that maps an
 * error to output and `Deno.exit`. What the user should do about an error is
 * not part of it: diagnose/advice.ts derives that from the code (one source of
 * guidance, translated).
 */

/**
 * Every error code the tool itself reports, in one spelling. JSON shows it as
 * `error.code`, Text output in brackets after the message, and the advice
 * table (diagnose/advice.ts) is keyed by it. Scripts may match on these:
 * never rename one.
 */
export const TOOL_CODES = [
  // Parameters and input (exit 2)
  "UNKNOWN_PARAMETER",
  "AMBIGUOUS_PARAMETER",
  "DUPLICATE_PARAMETER",
  "POSITIONAL_ARGUMENT",
  "MISSING_VALUE",
  "MISSING_MANDATORY",
  "PARAMETER_SET_CONFLICT",
  "PARAMETER_SET_UNRESOLVED",
  "EMPTY_VALUE",
  "BAD_SWITCH",
  "BAD_NUMBER",
  "BAD_ENUM",
  "BAD_TENANT",
  "BAD_CLIENT_ID",
  "BAD_MAILBOX",
  "BAD_SERVER",
  "BAD_PORT",
  "BAD_URL",
  "BAD_SCOPE",
  "BAD_TIMEOUT",
  "BAD_COMBINATION",
  "BAD_FILE",
  "UNSAFE_CACHE_FOLDER",
  "INPUT_TOO_LARGE",
  "INPUT_TIMEOUT",
  "BAD_INPUT",
  "NO_OUTPUT",
  "NO_INPUT",
  "NO_MAILBOX",
  "CERT_FILE_NOT_FOUND",
  "CERT_BAD_VALUE",
  "CERT_UNREADABLE",
  "CERT_NO_CERTIFICATE",
  "CERT_NO_KEY",
  "CERT_KEY_MISMATCH",
  "CERT_NOT_RSA",
  "CERT_PASSWORD_NEEDED",
  "CERT_PASSWORD_WRONG",
  "SECRET_QUOTED",
  "CERT_NOT_FOUND",
  "CERT_KEY_ACCESS",
  "CERT_SIGN_FAILED",
  "CERT_SIGN_CANCELLED",
  "POWERSHELL_NOT_FOUND",
  "POWERSHELL_CONSTRAINED",
  "SIGNER_TIMEOUT",
  "BRIDGE_BAD_CONFIG",
  // Token (exit 3); Entra's own codes are `AADSTS<n>` and `HTTP_<status>`, see ErrorCode
  "NO_TOKEN",
  "BAD_TOKEN",
  "BAD_REDIRECT_ADDRESS",
  "STATE_MISMATCH",
  "SIGN_IN_REQUIRED",
  "SIGN_IN_TIMEOUT",
  "REFRESH_FAILED",
  // The bridge's user credential: no cached sign-in of that user (the message names the command)
  "BRIDGE_SIGN_IN_REQUIRED",
  "NETWORK_ERROR",
  "WRONG_AUDIENCE",
  "WRONG_TENANT",
  "ROLE_MISSING",
  "SCOPE_MISSING",
  "TOKEN_EXPIRED",
  // Mix-ups seen in the parameters before sending (warnings, diagnose/mixups.ts)
  "CLIENT_SECRET_IS_ID",
  "CLIENT_ID_IS_TENANT",
  // Network, for the token request and the mail connection alike (exit 3 or 4)
  "DNS_FAILED",
  "CONNECTION_REFUSED",
  "CONNECTION_FAILED",
  "CONNECTION_CLOSED",
  "TIMEOUT",
  "TLS_UNTRUSTED",
  "TLS_HOSTNAME",
  "TLS_FAILED",
  "PROXY_REFUSED",
  "PROXY_AUTH_FAILED",
  "PROXY_UNREACHABLE",
  "LINE_TOO_LONG",
  "REPLY_TOO_LONG",
  // Mail protocols (exit 4, 5 or 6)
  "IMAP_BAD_GREETING",
  "IMAP_BYE",
  "IMAP_PROTOCOL_ERROR",
  "IMAP_XOAUTH2_UNSUPPORTED",
  "IMAP_AUTH_FAILED",
  "IMAP_NOT_CONNECTED",
  "IMAP_LIST_FAILED",
  "POP3_BAD_GREETING",
  "POP3_PROTOCOL_ERROR",
  "POP3_XOAUTH2_UNSUPPORTED",
  "POP3_AUTH_FAILED",
  "POP3_STAT_FAILED",
  "SMTP_BAD_GREETING",
  "SMTP_SERVICE_UNAVAILABLE",
  "SMTP_PROTOCOL_ERROR",
  "SMTP_EHLO_FAILED",
  "SMTP_NO_STARTTLS",
  "SMTP_STARTTLS_FAILED",
  "SMTP_XOAUTH2_UNSUPPORTED",
  "SMTP_AUTH_FAILED",
  "SMTP_AUTH_DISABLED_TENANT",
  "SMTP_AUTH_DISABLED_MAILBOX",
  "SMTP_BASIC_AUTH_DISABLED",
  "SMTP_NOT_AUTHENTICATED",
  "SMTP_SEND_FAILED",
  "SMTP_BAD_ADDRESS",
  "SMTP_BASIC_AUTH_RETIRED",
  "SMTP_SEND_AS_DENIED",
  // Bridge (exit 4): a listener could not be opened
  "BRIDGE_LISTEN_FAILED",
  // Bugs (exit 1): a caller broke a module's contract
  "NO_SASL",
  "INVALID_LINE",
  "INVALID_OPTIONS",
  "TRANSPORT_BUSY",
  "TLS_ALREADY_ACTIVE",
] as const;

export type ToolCode = typeof TOOL_CODES[number];

/** Entra ID's own error number, e.g. `AADSTS7000215`. */
export type EntraCode = `AADSTS${number}`;
/** The token endpoint kept answering with this HTTP status (429, 5xx) until the retries ran out. */
export type HttpCode = `HTTP_${number}`;
/** An OAuth 2.0 error name from Entra or msal-node when no AADSTS number came with it (`expired_token`). */
export type OAuthErrorName = Lowercase<string>;

/** The machine-readable code of an error: ours, or one that Entra ID answered with. */
export type ErrorCode = ToolCode | EntraCode | HttpCode | OAuthErrorName;

/** True for a string that is an `ErrorCode` in its one spelling. */
export function isErrorCode(value: string): value is ErrorCode {
  return (TOOL_CODES as readonly string[]).includes(value) || /^AADSTS\d+$/.test(value) ||
    /^HTTP_\d{3}$/.test(value) || /^[a-z][a-z0-9_]*$/.test(value);
}

/** A code received from Entra ID or msal-node (AADSTS number, HTTP_nnn or OAuth error name), if it is one. */
export function receivedCode(value: unknown): EntraCode | HttpCode | OAuthErrorName | undefined {
  if (typeof value !== "string") return undefined;
  if (/^AADSTS\d+$/.test(value)) return value as EntraCode;
  if (/^HTTP_\d{3}$/.test(value)) return value as HttpCode;
  if (/^[a-z][a-z0-9_]*$/.test(value)) return value as OAuthErrorName;
  return undefined;
}

/** What went wrong, as shown in JSON `error.kind`. */
export type ErrorKind = "usage" | "token" | "connection" | "auth" | "mailbox" | "internal";

/** Exit codes, documented in README.md. Scripts depend on them: never renumber. */
export const ExitCode = {
  ok: 0,
  internal: 1,
  usage: 2,
  token: 3,
  connection: 4,
  auth: 5,
  mailbox: 6,
} as const;

export interface ToolErrorOptions {
  /** Machine-readable code, e.g. `AADSTS7000215` or `IMAP_AUTH_FAILED`. */
  code?: ErrorCode;
  cause?: unknown;
}

export class ToolError extends Error {
  readonly kind: ErrorKind;
  readonly code?: ErrorCode;

  constructor(kind: ErrorKind, message: string, options: ToolErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.kind = kind;
    this.code = options.code;
  }

  get exitCode(): number {
    return ExitCode[this.kind];
  }
}

/** Bad parameters or bad input files: exit 2, raised before any network traffic. */
export class UsageError extends ToolError {
  override readonly name = "UsageError";
  constructor(message: string, options: ToolErrorOptions = {}) {
    super("usage", message, options);
  }
}

/** The token could not be obtained from Entra ID: exit 3. */
export class TokenError extends ToolError {
  override readonly name = "TokenError";
  constructor(message: string, options: ToolErrorOptions = {}) {
    super("token", message, options);
  }
}

/** Connection, TLS, timeout or protocol failure talking to the mail server: exit 4. */
export class ConnectionError extends ToolError {
  override readonly name = "ConnectionError";
  constructor(message: string, options: ToolErrorOptions = {}) {
    super("connection", message, options);
  }
}

/** The mail server rejected the XOAUTH2 login: exit 5. */
export class AuthError extends ToolError {
  override readonly name = "AuthError";
  constructor(message: string, options: ToolErrorOptions = {}) {
    super("auth", message, options);
  }
}

/** Logged in, but the mailbox cannot be used: exit 6. */
export class MailboxError extends ToolError {
  override readonly name = "MailboxError";
  constructor(message: string, options: ToolErrorOptions = {}) {
    super("mailbox", message, options);
  }
}

/** Wraps anything unexpected (a bug): exit 1. */
export class InternalError extends ToolError {
  override readonly name = "InternalError";
  constructor(message: string, options: ToolErrorOptions = {}) {
    super("internal", message, options);
  }
}

/** A thrown value's message: an Error's own, anything else as text. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Turns any thrown value into a ToolError, keeping the original as `cause`. */
export function toToolError(error: unknown): ToolError {
  if (error instanceof ToolError) return error;
  return new InternalError(messageOf(error), { cause: error });
}
