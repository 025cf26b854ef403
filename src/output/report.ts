/** The result of one run: what JSON prints and what the Text summary is made from. */
import type { ErrorKind } from "../errors.ts";
import type { TranscriptLine } from "../mail/transport.ts";
import type { Claims } from "../diagnose/claims.ts";

export interface ReportError {
  kind: ErrorKind;
  message: string;
  code: string | null;
  hint: string | null;
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
  deviceCode?: { verificationUri: string; userCode: string; message: string };
  protocol: string | null;
  server: string | null;
  mailbox: string | null;
  token: { expiresOn: string | null; fromCache: boolean; claims: Claims | null } | null;
  folders?: string[];
  messages?: { count: number; octets: number };
  transcript: TranscriptLine[];
  warnings: string[];
  error: ReportError | null;
}
