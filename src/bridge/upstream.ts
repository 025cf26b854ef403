/**
 * The bridge's upstream login: TLS to the server (STARTTLS for SMTP), `AUTH XOAUTH2` (POP3,
 * SMTP) or `AUTHENTICATE XOAUTH2` (IMAP) for the mapped mailbox
 * with the shared app token, then the connection is handed over for the relay. A token the
 * server refuses is dropped and the login tried once more with a new one (unless the refused
 * token had just been fetched: a fresh token will not do better).
 */
import { AuthError, toToolError } from "../errors.ts";
import { loginImap } from "../mail/imap.ts";
import { loginPop3 } from "../mail/pop3.ts";
import { loginSmtp } from "../mail/smtp.ts";
import { connectPlain, connectTls, type DetachableTransport } from "../mail/tls_transport.ts";
import type { Redactor } from "../redact.ts";
import { redactorOf } from "../redact.ts";
import { buildXoauth2 } from "../sasl/xoauth2.ts";
import type { SmtpUpstream } from "./smtp_relay.ts";
import type { TokenSource } from "./token_source.ts";

export interface UpstreamTarget {
  host: string;
  port: number;
  caCerts: string[];
  timeoutMs: number;
}

export interface UpstreamConnection {
  conn: Deno.Conn;
  /** Bytes the server sent after its login reply (normally none). */
  rest: Uint8Array;
}

/** How each protocol logs in upstream, and the code of a refused token. */
const LOGINS = {
  POP3: { login: loginPop3, refused: "POP3_AUTH_FAILED" },
  IMAP: { login: loginImap, refused: "IMAP_AUTH_FAILED" },
} as const;

/** Logs `mailbox` in upstream; throws a ToolError (TokenError, ConnectionError, AuthError). */
export async function openUpstream(
  protocol: keyof typeof LOGINS,
  target: UpstreamTarget,
  mailbox: string,
  tokens: TokenSource,
): Promise<UpstreamConnection> {
  const transport = await loggedIn(
    tokens,
    mailbox,
    (secrets) => connectTls({ ...target, secrets }),
    (t, sasl) => LOGINS[protocol].login(t, { sasl }),
    LOGINS[protocol].refused,
  );
  return transport.detach();
}

/**
 * SMTP submission: STARTTLS and AUTH XOAUTH2; the session stays a line transport because the
 * bridge keeps checking the client's commands (`smtp_relay.ts`).
 */
export async function openSmtpUpstream(
  target: UpstreamTarget,
  mailbox: string,
  tokens: TokenSource,
): Promise<DetachableTransport> {
  return await loggedIn(
    tokens,
    mailbox,
    (secrets) => connectPlain({ ...target, secrets }),
    (t, sasl) =>
      loginSmtp(t, { sasl, mailbox, tls: { hostname: target.host, caCerts: target.caCerts } }),
    "SMTP_AUTH_FAILED",
  );
}

/** The server's reply lines, all of a multi-line reply. */
const MAX_REPLY_LINES = 100;

/** The SMTP relay's view of the upstream transport. */
export function smtpUpstreamOf(transport: DetachableTransport): SmtpUpstream {
  return {
    send: (line) => transport.writeLine(line),
    async reply() {
      const lines: string[] = [];
      while (lines.length < MAX_REPLY_LINES) {
        const line = await transport.readLine();
        lines.push(line);
        if (!/^\d{3}-/.test(line)) return lines;
      }
      throw new Error("SMTP reply too long");
    },
  };
}

async function loggedIn(
  tokens: TokenSource,
  mailbox: string,
  connect: (secrets: Redactor) => Promise<DetachableTransport>,
  login: (transport: DetachableTransport, sasl: string) => Promise<unknown>,
  refusedCode: string,
): Promise<DetachableTransport> {
  for (let attempt = 1;; attempt++) {
    const before = tokens.requests;
    const token = await tokens.get();
    const fresh = tokens.requests !== before;
    const sasl = buildXoauth2(mailbox, token);
    const transport = await connect(redactorOf([sasl, token]));
    try {
      await login(transport, sasl);
      return transport;
    } catch (error) {
      transport.close();
      if (error instanceof AuthError && error.code === refusedCode) {
        tokens.refused(token);
        if (attempt === 1 && !fresh) continue;
      }
      throw toToolError(error);
    }
  }
}
