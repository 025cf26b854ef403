/**
 * The bridge's upstream login: TLS to the server, `AUTH XOAUTH2` (POP3) or
 * `AUTHENTICATE XOAUTH2` (IMAP) for the mapped mailbox
 * with the shared app token, then the connection is handed over for the relay. A token the
 * server refuses is dropped and the login tried once more with a new one (unless the refused
 * token had just been fetched: a fresh token will not do better).
 */
import { AuthError, toToolError } from "../errors.ts";
import { loginImap } from "../mail/imap.ts";
import { loginPop3 } from "../mail/pop3.ts";
import { connectTls } from "../mail/tls_transport.ts";
import { redactorOf } from "../redact.ts";
import { buildXoauth2 } from "../sasl/xoauth2.ts";
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
  for (let attempt = 1;; attempt++) {
    const before = tokens.requests;
    const token = await tokens.get();
    const fresh = tokens.requests !== before;
    const sasl = buildXoauth2(mailbox, token);
    const transport = await connectTls({
      host: target.host,
      port: target.port,
      caCerts: target.caCerts,
      timeoutMs: target.timeoutMs,
      secrets: redactorOf([sasl, token]),
    });
    try {
      await LOGINS[protocol].login(transport, { sasl });
      return transport.detach();
    } catch (error) {
      transport.close();
      if (error instanceof AuthError && error.code === LOGINS[protocol].refused) {
        tokens.refused(token);
        if (attempt === 1 && !fresh) continue;
      }
      throw toToolError(error);
    }
  }
}
