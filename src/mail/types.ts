/** Types shared by the IMAP and POP3 sessions and their callers. */

import type { Direction } from "./transport.ts";

/** What a session is doing, for progress messages. */
export type SessionStep = "authenticate" | "list" | "stat" | "logout";

export interface SessionOptions {
  /** Base64 XOAUTH2 string. Secret: sessions never put it in an error message. */
  sasl: string;
  /** Called with every line sent or received, raw; the caller redacts the SASL string. */
  onLine?: (dir: Direction, line: string) => void;
  /** Called when the session starts a step, e.g. ("authenticate", "Authenticate using XOAuth2."). */
  onProgress?: (step: SessionStep, message: string) => void;
}

export interface ImapResult {
  /** The server's greeting line. */
  greeting: string;
  /** Capabilities before login (from the greeting or CAPABILITY), as sent. */
  capabilities: string[];
  /** Folder names from `LIST "" *`, unquoted, modified UTF-7 decoded. */
  folders: string[];
}

export interface Pop3Result {
  /** The server's greeting line. */
  greeting: string;
  /** Number of messages in the mailbox (STAT). */
  count: number;
  /** Size of the mailbox in octets (STAT). */
  octets: number;
}
