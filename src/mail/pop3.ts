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
    throw new InternalError("no XOAUTH2 string to log in with", { code: "NO_SASL" });
  }
  const wire = new Wire(transport, options);
  const violation = violationOf(wire);
  const greeting = await receiveGreeting(wire);

  let counts: RegExpExecArray | null;
  try {
    options.onProgress?.("authenticate", "Authenticate using XOAuth2.");
    await authenticate(wire, options.sasl, violation);

    options.onProgress?.("stat", "Read the mailbox size (STAT).");
    await wire.send("STAT");
    const stat = await wire.receive();
    if (ERR.test(stat)) {
      throw new MailboxError(`POP3 server refused STAT after login: ${wire.quote(stat)}`, {
        code: "POP3_STAT_FAILED",
      });
    }
    counts = /^\+OK (\d+) (\d+)(?: .*)?$/i.exec(stat);
    if (!counts) throw violation("malformed STAT reply", stat);
  } catch (error) {
    // Refused login or mailbox, but the server still talks: QUIT frees the session.
    if (error instanceof AuthError || error instanceof MailboxError) await quit(wire);
    throw error;
  }

  options.onProgress?.("logout", "Quit.");
  await quit(wire);
  return { greeting, count: Number(counts[1]), octets: Number(counts[2]) };
}

/**
 * Reads the greeting and logs in with XOAUTH2, nothing else: the bridge's upstream login, after
 * which the session is the caller's (the transport is neither closed nor told to QUIT, also
 * not when the login was refused). Returns the greeting.
 */
export async function loginPop3(
  transport: LineTransport,
  options: SessionOptions,
): Promise<string> {
  if (options.sasl === "") {
    throw new InternalError("no XOAUTH2 string to log in with", { code: "NO_SASL" });
  }
  const wire = new Wire(transport, options);
  const greeting = await receiveGreeting(wire);
  options.onProgress?.("authenticate", "Authenticate using XOAuth2.");
  await authenticate(wire, options.sasl, violationOf(wire));
  return greeting;
}

function violationOf(wire: Wire): (what: string, line: string) => ConnectionError {
  return (what, line) =>
    new ConnectionError(`POP3 protocol violation (${what}): ${wire.quote(line)}`, {
      code: "POP3_PROTOCOL_ERROR",
    });
}

async function receiveGreeting(wire: Wire): Promise<string> {
  const greeting = await wire.receive();
  if (!OK.test(greeting)) {
    throw new ConnectionError(`POP3 server sent an unexpected greeting: ${wire.quote(greeting)}`, {
      code: "POP3_BAD_GREETING",
    });
  }
  return greeting;
}

/** Ends the session; the result (or the error being reported) stands whatever happens here. */
async function quit(wire: Wire): Promise<void> {
  try {
    await wire.send("QUIT");
    await wire.receive();
  } catch {
    // A connection that ends early changes nothing.
  }
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
      code: "POP3_XOAUTH2_UNSUPPORTED",
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
        code: "POP3_AUTH_FAILED",
      },
    );
  }
  throw violation("unexpected reply to the credentials", reply);
}
