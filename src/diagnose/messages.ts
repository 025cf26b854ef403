/**
 * The translated texts, one file per language with the same keys (the type
 * system and a test both check that). Server lines and parameter names are
 * never translated.
 */
import { en } from "./messages_en.ts";
import { de } from "./messages_de.ts";
import type { Lang } from "./language.ts";

export type { Lang };

/** Values filled into texts: always the user's own, never secrets. */
export interface Values {
  mailbox?: string;
  clientId?: string;
  tenantId?: string;
  protocol?: string;
  server?: string;
  port?: number;
  authorityHost?: string;
  /** The failing step's proxy (host:port, never credentials) and the setting it came from. */
  proxy?: string;
  proxySource?: string;
  /** The server's or Entra's own words, shown as they are. */
  detail?: string;
  protocolFlag?: string;
  role?: string;
  /** The certificate the run signed with: SHA-1 hex and base64url SHA-256 thumbprints. */
  certificate?: { sha1: string; sha256: string };
  /**
   * Object ID of the app's service principal (Enterprise application): the `oid` of an app
   * token. What New-ServicePrincipal -ObjectId and the mailbox permissions need.
   */
  servicePrincipalId?: string;
  /**
   * The other protocol's role, when -Protocol was not given and the token allows neither
   * IMAP nor POP3: IMAP is tested, but the mail software may need this one instead.
   */
  otherRole?: string;
}

export type Text = (v: Values) => string;
export type MessageKey = keyof typeof en;

export const MESSAGES: Record<Lang, Record<MessageKey, Text>> = { en, de };
