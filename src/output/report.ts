/** The result of one run: what JSON prints and what the Text summary is made from. */
import type { ErrorKind } from "../errors.ts";
import type { TranscriptLine } from "../mail/transport.ts";
import type { Claims } from "../diagnose/claims.ts";
import type { Step } from "../diagnose/advice.ts";
import type { CheckResult } from "../diagnose/checklist.ts";
import { VERSION } from "../version.ts";

/** Which setup step is wrong, why, and how to fix it (in the chosen language). */
export interface ReportAdvice {
  step: Step;
  cause: string;
  fix: string;
}

export interface ReportError {
  kind: ErrorKind;
  message: string;
  code: string | null;
  /** Cause and fix in one sentence pair (kept for scripts that read one field). */
  hint: string | null;
  advice: ReportAdvice | null;
}

/** One mailbox of a many-mailbox run. */
export interface MailboxResult {
  mailbox: string;
  ok: boolean;
  exitCode: number;
  /** Wall time of this mailbox's session. */
  ms: number;
  folders?: string[];
  messages?: { count: number; octets: number };
  transcript: TranscriptLine[];
  error: ReportError | null;
}

export interface Report {
  ok: boolean;
  exitCode: number;
  version: string;
  parameterSet: string | null;
  /** How the token was obtained: clientCredentials, interactive, authorizationCodePaste, deviceCode, refreshToken, cache. */
  signIn: string | null;
  /** The signed-in user (user sign-in), or null. */
  user: string | null;
  /** Device-code instructions, when that sign-in was used. */
  deviceCode?: {
    verificationUri: string;
    userCode: string;
    message: string;
    expiresInSeconds: number;
  };
  protocol: string | null;
  /**
   * Why `protocol` is tested: `parameter` (-Protocol), `token` (its roles/scp allow only this
   * one of IMAP and POP3) or `default` (IMAP); null before the token is there.
   */
  protocolChoice: { source: "parameter" | "token" | "default"; reason: string | null } | null;
  server: string | null;
  mailbox: string | null;
  token: { expiresOn: string | null; fromCache: boolean; claims: Claims | null } | null;
  folders?: string[];
  messages?: { count: number; octets: number };
  /** Problems found in the token's claims before connecting (e.g. a missing role). */
  diagnostics: ({ code: string; detail: string | null } & ReportAdvice)[];
  /** -Diagnose only: every check in order. */
  checklist?: CheckResult[];
  /** Many-mailbox runs: one entry per mailbox, in the order given. */
  results?: MailboxResult[];
  summary?: { total: number; ok: number; failed: number; worstExitCode: number };
  transcript: TranscriptLine[];
  warnings: string[];
  error: ReportError | null;
}

/** The report of a run that failed before it started (bad parameters): only the error. */
export function failedReport(error: ReportError, exitCode: number): Report {
  return {
    ok: false,
    exitCode,
    version: VERSION,
    parameterSet: null,
    signIn: null,
    user: null,
    protocol: null,
    protocolChoice: null,
    server: null,
    mailbox: null,
    token: null,
    diagnostics: [],
    transcript: [],
    warnings: [],
    error,
  };
}
