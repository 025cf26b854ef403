/**
 * Typed errors. Every failure the tool reports is one of these; each carries
 * the process exit code so that `main.ts` is the single place that maps an
 * error to output and `Deno.exit`.
 */

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
  /** Machine-readable code, e.g. `AADSTS7000215` or `IMAP-NO`. */
  code?: string;
  /** One sentence telling the user what to do. */
  hint?: string;
  cause?: unknown;
}

export class ToolError extends Error {
  readonly kind: ErrorKind;
  readonly code?: string;
  readonly hint?: string;

  constructor(kind: ErrorKind, message: string, options: ToolErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.kind = kind;
    this.code = options.code;
    this.hint = options.hint;
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

/** Turns any thrown value into a ToolError, keeping the original as `cause`. */
export function toToolError(error: unknown): ToolError {
  if (error instanceof ToolError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new InternalError(message, { cause: error });
}
