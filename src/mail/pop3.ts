/**
 * POP3 client session: greeting, AUTH XOAUTH2 (two-line form), STAT, QUIT.
 * A small state machine over a `LineTransport`; it knows nothing about
 * sockets, tokens or output.
 */

import { AuthError, ConnectionError, InternalError, MailboxError } from "../errors.ts";
import { describeXoauth2Challenge, Wire } from "./lines.ts";
import type { LineTransport } from "./transport.ts";
import type { Pop3Result, SessionOptions } from "./types.ts";

export type { Pop3Result, SessionOptions } from "./types.ts";

/** The `code` of every error this module throws. */
export const Pop3Code = {
  badGreeting: "POP3_BAD_GREETING",
  protocol: "POP3_PROTOCOL_ERROR",
  xoauth2Unsupported: "POP3_XOAUTH2_UNSUPPORTED",
  authFailed: "POP3_AUTH_FAILED",
  statFailed: "POP3_STAT_FAILED",
  noSasl: "NO_SASL",
} as const;

const OK = /^\+OK( |$)/i;
const ERR = /^-ERR( |$)/i;
/** A SASL continuation: `+` alone or `+ <base64>` (Exchange sends `+`, Dovecot `+ `). */
const CONTINUATION = /^\+( |$)/;

/** Logs in with XOAUTH2, runs STAT and quits. Does not close the transport. */
export async function runPop3(
  transport: LineTransport,
  options: SessionOptions,
): Promise<Pop3Result> {
  if (options.sasl === "") {
    throw new InternalError("no XOAUTH2 string to log in with", { code: Pop3Code.noSasl });
  }
  const wire = new Wire(transport, options);
  const violation = (what: string, line: string) =>
    new ConnectionError(`POP3 protocol violation (${what}): ${wire.quote(line)}`, {
      code: Pop3Code.protocol,
    });

  const greeting = await wire.receive();
  if (!OK.test(greeting)) {
    throw new ConnectionError(`POP3 server sent an unexpected greeting: ${wire.quote(greeting)}`, {
      code: Pop3Code.badGreeting,
      hint: "Check that host and port belong to a POP3 server.",
    });
  }

  options.onProgress?.("authenticate", "Authenticate using XOAuth2.");
  await authenticate(wire, options.sasl, violation);

  options.onProgress?.("stat", "Read the mailbox size (STAT).");
  await wire.send("STAT");
  const stat = await wire.receive();
  if (ERR.test(stat)) {
    throw new MailboxError(`POP3 server refused STAT after login: ${wire.quote(stat)}`, {
      code: Pop3Code.statFailed,
    });
  }
  const counts = /^\+OK (\d+) (\d+)(?: .*)?$/i.exec(stat);
  if (!counts) throw violation("malformed STAT reply", stat);

  options.onProgress?.("logout", "Quit.");
  try {
    await wire.send("QUIT");
    await wire.receive();
  } catch {
    // The check already succeeded; a connection that ends early changes nothing.
  }
  return { greeting, count: Number(counts[1]), octets: Number(counts[2]) };
}

async function authenticate(
  wire: Wire,
  sasl: string,
  violation: (what: string, line: string) => ConnectionError,
): Promise<void> {
  // Two-line form: Exchange does not accept the initial response on the AUTH line.
  await wire.send("AUTH XOAUTH2");
  const ready = await wire.receive();
  if (ERR.test(ready)) {
    throw new AuthError(`POP3 server refused XOAUTH2 authentication: ${wire.quote(ready)}`, {
      code: Pop3Code.xoauth2Unsupported,
    });
  }
  if (!CONTINUATION.test(ready)) throw violation("expected a continuation after AUTH", ready);

  await wire.send(sasl);
  let reply = await wire.receive();
  let detail: string | undefined;
  if (CONTINUATION.test(reply)) {
    // A challenge after the credentials means failure (Dovecot); it must be
    // answered with an empty line before the server sends its -ERR.
    detail = describeXoauth2Challenge(reply.slice(2));
    await wire.send("");
    reply = await wire.receive();
  }
  if (OK.test(reply)) return;
  if (ERR.test(reply)) {
    throw new AuthError(
      `POP3 server rejected the login: ${wire.quote(reply)}` +
        (detail ? ` (server detail: ${detail})` : ""),
      {
        code: Pop3Code.authFailed,
        hint: "Check the token's roles (POP.AccessAsApp), the Exchange service principal, " +
          "its FullAccess on the mailbox and that POP3 is enabled for the mailbox.",
      },
    );
  }
  throw violation("unexpected reply to the credentials", reply);
}
