/** Types shared by the IMAP, POP3 and SMTP sessions and their callers. */

import type { Direction } from "./transport.ts";

/** What a session is doing, for progress messages. */
export type SessionStep =
  | "starttls"
  | "authenticate"
  | "list"
  | "stat"
  | "send"
  | "logout";

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

export interface SmtpOptions extends SessionOptions {
  /** The name sent with EHLO; default `defaultClientName()` (this machine's host name). */
  clientName?: string;
  /** The mailbox logging in (XOAUTH2 `user=`); also the sender of the test message. */
  mailbox: string;
  /** How to verify the server after STARTTLS: usually the host name connected to. */
  tls: { hostname: string; caCerts?: string[] };
  /** When set, one short test message is sent to this address after the login. */
  sendTestMessageTo?: string;
}

export interface SmtpResult {
  /** The server's greeting (the first line of the 220 reply). */
  greeting: string;
  /** EHLO keywords after STARTTLS (the ones that decided the login), upper-cased, e.g. `AUTH LOGIN XOAUTH2`. */
  capabilities: string[];
  authenticated: true;
  /** The server's last reply line to the test message (its queue ID), when one was sent. */
  queued?: string;
}
