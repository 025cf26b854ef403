/**
 * The bridge's POP3 server side before the relay starts: its own greeting and CAPA, USER/PASS
 * checked locally, and only after a local login succeeded the upstream login (`openUpstream`).
 * A state machine over `FrontLines`, so every rule is testable without sockets; it never
 * repeats a password and never says whether a user name exists.
 */
import {
  finishLogin,
  type FrontLines,
  type FrontOptions,
  type FrontOutcome,
  FrontTls,
} from "./front.ts";

export type { FrontLines, FrontOutcome, UpstreamAttempt } from "./front.ts";
export type Pop3FrontOptions<U> = FrontOptions<U>;

export const POP3_GREETING = "+OK Get-IMAPAccessToken POP3 bridge ready";
/** The CAPA answer offering `login`: USER, or before TLS STLS instead. */
function capa(login: "USER" | "STLS"): string[] {
  return [
    "+OK Capability list follows",
    login,
    "TOP",
    "UIDL",
    "RESP-CODES",
    "AUTH-RESP-CODE",
    "IMPLEMENTATION Get-IMAPAccessToken-bridge",
    ".",
  ];
}
export const POP3_CAPA = capa("USER");
/** A STARTTLS listener before STLS: no USER (RFC 2595: no plain-text login offered yet). */
export const POP3_CAPA_BEFORE_TLS = capa("STLS");
export const POP3_TLS_REQUIRED =
  "-ERR Send STLS first: this listener takes passwords only over TLS.";
export const POP3_LOGIN_FAILED = "-ERR [AUTH] Authentication failed.";
export const POP3_UPSTREAM_FAILED =
  "-ERR [SYS/TEMP] The mail server cannot be reached right now; try again later.";

/** Runs the session from after the greeting until the relay can start or the session ends. */
export async function pop3Front<U>(
  client: FrontLines,
  options: Pop3FrontOptions<U>,
): Promise<FrontOutcome<U>> {
  let user: string | undefined;
  const tls = new FrontTls(options);
  let failures = 0;
  while (true) {
    const line = await client.readLine();
    if (line === null) return { kind: "gone", failures };
    const space = line.indexOf(" ");
    const command = (space < 0 ? line : line.slice(0, space)).toUpperCase();
    const argument = space < 0 ? "" : line.slice(space + 1);
    if (tls.required && (command === "USER" || command === "PASS")) {
      await client.write(POP3_TLS_REQUIRED);
      continue;
    }
    switch (command) {
      case "CAPA":
        await client.write(...(tls.required ? POP3_CAPA_BEFORE_TLS : POP3_CAPA));
        break;
      case "QUIT":
        await client.write("+OK Bye.");
        return { kind: "quit", failures };
      case "USER":
        if (argument.trim() === "") {
          await client.write("-ERR USER needs a user name.");
          break;
        }
        user = argument.trim();
        await client.write("+OK Send the password (PASS).");
        break;
      case "PASS": {
        if (user === undefined) {
          await client.write("-ERR Send USER first.");
          break;
        }
        // The whole rest of the line: passwords may contain spaces.
        const account = await options.checkLogin(user, argument);
        user = undefined;
        if (account === undefined) failures++;
        const end = await finishLogin(client, options, account, failures, {
          failed: [POP3_LOGIN_FAILED],
          tooMany: ["-ERR [AUTH] Authentication failed; too many attempts."],
          upstreamFailed: [POP3_UPSTREAM_FAILED],
          loggedIn: ["+OK Logged in."],
        });
        if (end !== "again") return end;
        break;
      }
      case "AUTH":
      case "APOP":
        await client.write("-ERR Log in with USER and PASS.");
        break;
      case "STLS": {
        const started = await tls.command(client, {
          goAhead: "+OK Begin TLS negotiation.",
          active: "-ERR TLS is already active.",
          unavailable: "-ERR STLS is not available on this loopback listener.",
        });
        if (started === "gone") return { kind: "gone", failures };
        // RFC 2595: the client starts over (CAPA) on the new connection; so does USER.
        if (started === "upgraded") user = undefined;
        break;
      }
      case "":
        await client.write("-ERR Empty command.");
        break;
      default:
        await client.write("-ERR Log in first (USER and PASS).");
    }
  }
}
