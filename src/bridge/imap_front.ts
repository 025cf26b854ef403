/**
 * The bridge's IMAP server side before the relay starts: its own greeting and CAPABILITY,
 * LOGIN and AUTHENTICATE PLAIN checked locally, and only after a local login succeeded the
 * upstream login (`openUpstream`); the client's command then gets the tagged OK and the relay
 * starts. A state machine over `FrontLines`; it never repeats a password and never says whether
 * a user name exists.
 */
import { parsePlainResponse, type PlainCredentials } from "../sasl/plain.ts";
import {
  finishLogin,
  type FrontLines,
  type FrontOptions,
  type FrontOutcome,
  FrontTls,
} from "./front.ts";

/** Honest: plain IMAP4rev1 on loopback or over TLS, PLAIN with SASL-IR. */
export const IMAP_CAPABILITIES = "IMAP4rev1 SASL-IR AUTH=PLAIN";
/** A STARTTLS listener before STARTTLS: no login at all (RFC 9051 LOGINDISABLED, no AUTH=). */
export const IMAP_CAPABILITIES_BEFORE_TLS = "IMAP4rev1 STARTTLS LOGINDISABLED";
export const imapGreeting = (beforeTls: boolean): string =>
  `* OK [CAPABILITY ${
    beforeTls ? IMAP_CAPABILITIES_BEFORE_TLS : IMAP_CAPABILITIES
  }] Get-IMAPAccessToken IMAP bridge ready.`;
export const IMAP_GREETING = imapGreeting(false);
export const IMAP_TLS_REQUIRED =
  "NO [PRIVACYREQUIRED] Logins are disabled until STARTTLS (LOGINDISABLED).";
export const IMAP_LOGIN_FAILED = "NO [AUTHENTICATIONFAILED] Authentication failed.";
export const IMAP_UPSTREAM_FAILED =
  "NO [UNAVAILABLE] The mail server cannot be reached right now; try again later.";
export const IMAP_LITERAL_LOST = "BAD A literal was not sent whole (a line end inside it?).";

/** A password or user name is short; a bigger literal is refused before it is read. */
const MAX_LITERAL = 1024;
/** RFC 3501 tag: printable ASCII except space, `(){%*"\\+` and `]`. */
export const TAG = /^[!#$&',-/0-9:-Z[^-z|}~]+$/;

/**
 * "lost": a literal the client sent (or was told to send) was not there whole, e.g. a line end
 * inside it: where the client's next command starts is unknown, so the session ends rather than
 * read the rest of the literal as commands.
 */
type Args = string[] | "gone" | "bad" | "lost";

type Credentials = PlainCredentials;

/** Runs the session from after the greeting until the relay can start or the session ends. */
export async function imapFront<U>(
  client: FrontLines,
  options: FrontOptions<U>,
): Promise<FrontOutcome<U>> {
  const tls = new FrontTls(options);
  let failures = 0;
  while (true) {
    const line = await client.readLine();
    if (line === null) return { kind: "gone", failures };
    const [tag, command = "", rest = ""] = splitCommand(line);
    if (!TAG.test(tag) || command === "") {
      await client.write("* BAD Malformed command.");
      continue;
    }
    const reply = (text: string) => client.write(`${tag} ${text}`);

    switch (command.toUpperCase()) {
      case "CAPABILITY": {
        const capabilities = tls.required ? IMAP_CAPABILITIES_BEFORE_TLS : IMAP_CAPABILITIES;
        await client.write(`* CAPABILITY ${capabilities}`, `${tag} OK CAPABILITY completed.`);
        continue;
      }
      case "NOOP":
        await reply("OK NOOP completed.");
        continue;
      case "LOGOUT":
        await client.write("* BYE Logging out.", `${tag} OK LOGOUT completed.`);
        return { kind: "quit", failures };
      case "STARTTLS":
        // RFC 9051 6.2.1: the client asks for CAPABILITY again over TLS.
        if (
          await tls.command(client, {
            goAhead: `${tag} OK Begin TLS negotiation now.`,
            active: `${tag} BAD TLS is already active.`,
            unavailable: `${tag} NO STARTTLS is not available on this loopback listener.`,
          }) === "gone"
        ) {
          return { kind: "gone", failures };
        }
        continue;
      case "LOGIN":
      case "AUTHENTICATE":
        if (tls.required) {
          // Refused before reading any argument: no "+" for a literal or a SASL response.
          await reply(IMAP_TLS_REQUIRED);
          continue;
        }
        break;
      default:
        await reply("BAD Log in first (LOGIN or AUTHENTICATE PLAIN).");
        continue;
    }
    const credentials = command.toUpperCase() === "LOGIN"
      ? await loginArguments(client, rest)
      : await authenticatePlain(client, rest);
    if (credentials === "gone") return { kind: "gone", failures };
    if (credentials === "lost") {
      // Nothing more is read: the rest of the literal must not be taken for commands.
      await client.write(`${tag} ${IMAP_LITERAL_LOST}`, "* BYE Closing the session.");
      return { kind: "protocol error", failures, reason: "a literal was not sent whole" };
    }
    if (credentials === "bad") {
      await reply("BAD Invalid arguments.");
      continue;
    }
    if (credentials === "cancelled") {
      await reply("BAD Authentication cancelled.");
      continue;
    }
    if (credentials === "no") {
      await reply("NO Unsupported authentication mechanism; use PLAIN or LOGIN.");
      continue;
    }
    // Checked even when the answer is already no, so every failure takes the same time.
    const found = await options.checkLogin(credentials.user, credentials.password);
    const account = credentials.actingForOther ? undefined : found;
    if (account === undefined) failures++;
    const end = await finishLogin(client, options, account, failures, {
      failed: [`${tag} ${IMAP_LOGIN_FAILED}`],
      tooMany: [
        `${tag} NO [AUTHENTICATIONFAILED] Authentication failed; too many attempts.`,
        "* BYE Too many failed logins.",
      ],
      upstreamFailed: [`${tag} ${IMAP_UPSTREAM_FAILED}`, "* BYE Closing the session."],
      loggedIn: [`${tag} OK Logged in.`],
    });
    if (end !== "again") return end;
  }
}

/** `tag SP command [SP rest]`. */
function splitCommand(line: string): [string, string?, string?] {
  const first = line.indexOf(" ");
  if (first < 0) return [line];
  const second = line.indexOf(" ", first + 1);
  return second < 0
    ? [line.slice(0, first), line.slice(first + 1)]
    : [line.slice(0, first), line.slice(first + 1, second), line.slice(second + 1)];
}

/**
 * Reads astrings (atom, quoted string, literal) from `text`; a literal at the end of the line is
 * asked for with `+` (not for LITERAL+ `{n+}`) and read from the next line.
 */
async function readArguments(client: FrontLines, text: string): Promise<Args> {
  const encoder = new TextEncoder();
  const decoder = new TextDecoder("utf-8", { fatal: true });
  const args: string[] = [];
  let rest = text;
  let i = 0;
  while (true) {
    if (i >= rest.length) return args;
    if (args.length > 0) {
      if (rest[i] !== " ") return "bad";
      i++;
    }
    if (rest[i] === '"') {
      let value = "";
      i++;
      while (true) {
        if (i >= rest.length) return "bad";
        const c = rest[i++];
        if (c === '"') break;
        if (c === "\\") {
          if (i >= rest.length || !'"\\'.includes(rest[i])) return "bad";
          value += rest[i++];
        } else value += c;
      }
      args.push(value);
      continue;
    }
    const literal = /^\{(\d{1,10})(\+?)\}$/.exec(rest.slice(i));
    if (literal) {
      const size = Number(literal[1]);
      // A synchronizing literal is refused before the client sends it; a LITERAL+ one is on its way.
      if (size > MAX_LITERAL) return literal[2] === "" ? "bad" : "lost";
      if (literal[2] === "" && !(await client.write("+ Ready for the literal."))) return "gone";
      const next = await client.readLine();
      if (next === null) return "gone";
      const bytes = encoder.encode(next);
      if (bytes.length < size) return "lost"; // a line end inside the literal
      try {
        args.push(decoder.decode(bytes.subarray(0, size)));
        rest = decoder.decode(bytes.subarray(size));
      } catch {
        return "bad";
      }
      i = 0;
      continue;
    }
    const start = i;
    while (i < rest.length && !' "{}()\\'.includes(rest[i])) i++;
    if (i === start) return "bad";
    args.push(rest.slice(start, i));
  }
}

/** LOGIN's user name and password (atoms, quoted strings or literals). */
async function loginArguments(
  client: FrontLines,
  text: string,
): Promise<Credentials | "gone" | "bad" | "lost"> {
  const args = await readArguments(client, text);
  if (typeof args === "string") return args;
  return args.length === 2 ? { user: args[0], password: args[1], actingForOther: false } : "bad";
}

/** AUTHENTICATE PLAIN with or without initial response (RFC 4959, RFC 4616). */
async function authenticatePlain(
  client: FrontLines,
  text: string,
): Promise<Credentials | "gone" | "bad" | "cancelled" | "no"> {
  const [mechanism, initial, extra] = text.split(" ");
  if (extra !== undefined || mechanism === "") return "bad";
  if (mechanism.toUpperCase() !== "PLAIN") return "no";
  let response = initial;
  if (response === undefined) {
    if (!(await client.write("+ "))) return "gone";
    const line = await client.readLine();
    if (line === null) return "gone";
    if (line === "*") return "cancelled";
    response = line;
  }
  return parsePlainResponse(response) ?? "bad";
}
