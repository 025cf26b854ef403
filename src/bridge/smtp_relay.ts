/**
 * The bridge's SMTP session after the login: command by command, not a byte pipe, because the
 * bridge must keep checking what the client does. `MAIL FROM` must be the account's mailbox or
 * one of its `allowedSenders` (else `550 5.7.1`, never sent upstream; for an allowed sender
 * Exchange still decides, and its refusal such as `5.7.60` or `5.2.252 SendAsDenied` is passed
 * on); EHLO is answered by the bridge (so the client never sees the upstream's PIPELINING or
 * CHUNKING); MAIL (after that check) and the commands in RELAYED go upstream, and their replies come back; the message
 * after `354` goes through line by line up to the final `.`.
 *
 * Strict on purpose, so no command can slip past the sender check: the verb is the letters up to
 * the first space (or the line end), and a command line with leading white space, a tab or any
 * other control character (a bare CR, a NUL) gets `500 5.5.2 Syntax error` and is not sent. Any
 * verb not in RELAYED (BDAT, ETRN, EXPN, a second AUTH, unknown ones) is answered by the bridge
 * and not sent. A message line with a bare CR (which a server might read as a line end: SMTP
 * smuggling) refuses the whole message: the rest is read and dropped up to the final `.`, the
 * client gets `554 5.6.0`, and the session ends, since the only way to drop a message the server
 * has partly received is to close the connection before its final `.`.
 */
import type { FrontLines } from "./front.ts";
import { allowedSender, senderOf, senderRefusal, SMTP_EHLO, SMTP_HOST } from "./smtp_front.ts";

/** The upstream SMTP session after its login (a LineTransport in production). */
export interface SmtpUpstream {
  /** Sends one line; throws when the server is gone. */
  send(line: string): Promise<void>;
  /** Reads one complete reply (all its lines); throws when the server is gone or too slow. */
  reply(): Promise<string[]>;
}

export type SmtpRelayEnd = "quit" | "client closed" | "server error" | "message refused";

export interface SmtpRelayResult {
  end: SmtpRelayEnd;
  /** Messages the server accepted (250 after the final `.`). */
  messages: number;
  /** MAIL FROM refused by the bridge for another sender. */
  refusedSenders: number;
  /** Allowed senders (not the mailbox; as configured) of messages the server accepted. */
  sentAs: string[];
}

export const SMTP_UPSTREAM_LOST = "421 4.4.2 The connection to the mail server was lost.";
export const SMTP_SYNTAX_ERROR = "500 5.5.2 Syntax error";
export const SMTP_NOT_RELAYED = "502 5.5.1 Command not relayed";
export const SMTP_BARE_CR =
  "554 5.6.0 Message refused: a line has a bare CR; it was not sent. Closing the connection.";

/** The verb: letters up to a space or the line end (the rest of the line is not looked at here). */
const VERB = /^([A-Za-z]+)(?: |$)/;
/** Control characters (C0 and DEL): no command has them; a bare CR or NUL could hide one. */
// deno-lint-ignore no-control-regex
const CONTROL = /[\x00-\x1f\x7f]/;
/** Commands sent upstream as they are (besides MAIL, after the sender check). */
const RELAYED = new Set(["RCPT", "DATA", "RSET", "NOOP", "QUIT", "VRFY", "HELP"]);

/** The upper-case verb of a well-formed command line, or undefined (answer SMTP_SYNTAX_ERROR). */
export function smtpVerb(line: string): string | undefined {
  if (CONTROL.test(line)) return undefined;
  return VERB.exec(line)?.[1].toUpperCase();
}

export interface SmtpRelayOptions {
  /** The client's connection is TLS (implicit, or after STARTTLS). */
  secure?: boolean;
  /** A command the front already read, handled first (MAIL FROM of an allow-listed device). */
  pending?: string;
  /** The account's `allowedSenders`: MAIL FROM addresses allowed besides the mailbox. */
  allowedSenders?: readonly string[];
}

export async function smtpRelay(
  client: FrontLines,
  upstream: SmtpUpstream,
  mailbox: string,
  options: SmtpRelayOptions = {},
): Promise<SmtpRelayResult> {
  const result: SmtpRelayResult = {
    end: "client closed",
    messages: 0,
    refusedSenders: 0,
    sentAs: [],
  };
  const senders = { mailbox, allowedSenders: options.allowedSenders };
  /** The allowed sender (not the mailbox) of the transaction the server accepted MAIL FROM for. */
  let sendingAs: string | undefined;
  const forward = async (line: string): Promise<string[]> => {
    await upstream.send(line);
    const reply = await upstream.reply();
    await client.write(...reply);
    return reply;
  };
  let pending = options.pending;
  try {
    while (true) {
      const line = pending ?? await client.readLine();
      pending = undefined;
      if (line === null) {
        await upstream.send("QUIT").catch(() => {});
        return result;
      }
      const verb = smtpVerb(line);
      if (verb === undefined) {
        await client.write(SMTP_SYNTAX_ERROR);
        continue;
      }
      switch (verb) {
        case "EHLO":
        case "HELO":
          // A new EHLO resets the transaction: so does RSET upstream.
          sendingAs = undefined;
          await upstream.send("RSET");
          await upstream.reply();
          await client.write(...(verb === "EHLO" ? SMTP_EHLO : [`250 ${SMTP_HOST}`]));
          break;
        case "AUTH":
          await client.write("503 5.5.1 Already authenticated");
          break;
        case "STARTTLS":
          await client.write(
            options.secure
              ? "503 5.5.1 TLS is already active"
              : "502 5.5.1 STARTTLS is not available on this loopback listener.",
          );
          break;
        case "BDAT":
          await client.write("502 5.5.1 BDAT is not supported here; use DATA");
          break;
        case "MAIL": {
          const from = senderOf(line);
          const refusal = from === undefined ? undefined : senderRefusal(senders, from);
          if (from === undefined) {
            await client.write("501 5.5.4 Syntax: MAIL FROM:<address>");
          } else if (refusal) {
            result.refusedSenders++;
            await client.write(refusal);
          } else {
            const reply = await forward(line);
            if (reply.at(-1)?.startsWith("250")) {
              const as = allowedSender(senders, from);
              sendingAs = as === mailbox ? undefined : as;
            }
          }
          break;
        }
        case "DATA": {
          const reply = await forward(line);
          if (!reply.at(-1)?.startsWith("354")) break;
          let bareCr = false;
          while (true) {
            const data = await client.readLine();
            if (data === null) return result; // the server drops the unfinished message
            if (data === ".") break;
            // From the first bare CR on, nothing more is sent (not the final "." either).
            bareCr ||= data.includes("\r");
            if (!bareCr) await upstream.send(data);
          }
          if (bareCr) {
            // The caller closes the upstream connection: the server drops the unfinished message.
            await client.write(SMTP_BARE_CR);
            result.end = "message refused";
            return result;
          }
          await upstream.send(".");
          const done = await upstream.reply();
          await client.write(...done);
          if (done.at(-1)?.startsWith("250")) {
            result.messages++;
            if (sendingAs !== undefined && !result.sentAs.includes(sendingAs)) {
              result.sentAs.push(sendingAs);
            }
          }
          sendingAs = undefined; // the transaction is over, whatever the answer
          break;
        }
        case "QUIT":
          await forward(line).catch(() => client.write("221 2.0.0 Bye"));
          result.end = "quit";
          return result;
        default:
          await (RELAYED.has(verb) ? forward(line) : client.write(SMTP_NOT_RELAYED));
      }
    }
  } catch {
    await client.write(SMTP_UPSTREAM_LOST);
    result.end = "server error";
    return result;
  }
}
