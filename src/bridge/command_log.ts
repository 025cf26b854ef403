/**
 * What `-Bridge ... -Verbose` logs of a session before its relay (and during SMTP's command relay):
 * the client's commands and the status of the bridge's answers, never a credential. Deny by
 * default: a command's arguments are shown only for an allow-list of safe commands per protocol;
 * a known command that carries secrets shows its name and `<hidden>` (POP3 `PASS <hidden>`, IMAP
 * `a1 LOGIN scanner <hidden>`, SMTP `AUTH PLAIN <hidden>`); every other line, and every line the
 * client sends after a continuation request (`+` in IMAP, `334` in SMTP) or as an IMAP literal,
 * only as `<hidden line>` (not even its size). The message after SMTP's `354` is not logged at all, only its
 * size at the final `.`. Shown text has its control characters escaped (`shown`).
 */
import { shown } from "../text.ts";
import type { BridgeProtocol } from "./config.ts";
// An RFC 3501 tag, as the IMAP front checks it.
import { TAG as IMAP_TAG } from "./imap_front.ts";

/** Longest argument shown; beyond it the text is cut (and says how long it was). */
const MAX_ARGUMENT = 100;

const encoder = new TextEncoder();

/**
 * A line not shown, without its size either: the size of a password literal or of a SASL answer
 * would give the password's length (exactly, or within 2 for base64).
 */
const HIDDEN_LINE = "<hidden line>";

/** POP3 commands shown with their arguments (message numbers, a user name). */
const POP3_SHOWN = new Set([
  "USER",
  "CAPA",
  "QUIT",
  "STLS",
  "NOOP",
  "LIST",
  "STAT",
  "UIDL",
  "RETR",
  "TOP",
  "DELE",
  "RSET",
  "LAST",
]);
/** POP3 commands shown by name only: their arguments may be or hold a secret. */
const POP3_NAME_ONLY = new Set(["PASS", "APOP", "AUTH"]);

/** IMAP commands shown with a tag and no arguments (any argument hidden). */
const IMAP_NAMES = new Set([
  "CAPABILITY",
  "NOOP",
  "LOGOUT",
  "STARTTLS",
  "ID",
  "ENABLE",
  "SELECT",
  "EXAMINE",
  "LIST",
  "LSUB",
  "STATUS",
  "NAMESPACE",
]);
/** An IMAP atom or quoted string at the start of the text (a user name). */
const IMAP_ASTRING = /^(?:[^\s"{}()\\]+|"(?:[^"\\]|\\["\\])*")/;

/** SMTP commands shown with their arguments. */
const SMTP_SHOWN = new Set([
  "EHLO",
  "HELO",
  "MAIL",
  "RCPT",
  "DATA",
  "RSET",
  "NOOP",
  "QUIT",
  "STARTTLS",
]);
/** SMTP commands shown by name only. */
const SMTP_NAME_ONLY = new Set(["VRFY", "EXPN", "HELP", "BDAT"]);

/** SASL mechanisms shown by name; any other word after AUTH may be a base64 answer. */
const MECHANISMS = new Set([
  "PLAIN",
  "LOGIN",
  "XOAUTH2",
  "OAUTHBEARER",
  "CRAM-MD5",
  "DIGEST-MD5",
  "SCRAM-SHA-1",
  "SCRAM-SHA-256",
  "NTLM",
  "GSSAPI",
  "EXTERNAL",
  "ANONYMOUS",
]);

/** `AUTH PLAIN` / `AUTH PLAIN <hidden>` / `AUTH <hidden>`: only a mechanism name is shown. */
function saslCommand(name: string, args: string): string {
  if (args === "") return name;
  const [mechanism, ...rest] = args.split(" ");
  const known = mechanism.toUpperCase();
  if (!MECHANISMS.has(known)) return `${name} <hidden>`;
  return `${name} ${known}${rest.length > 0 ? " <hidden>" : ""}`;
}

/** `verb` and the rest of a line; the verb upper case. */
function split(line: string): [string, string] {
  const space = line.indexOf(" ");
  return space < 0
    ? [line.toUpperCase(), ""]
    : [line.slice(0, space).toUpperCase(), line.slice(space + 1)];
}

/** A shown command: the verb, then its arguments as sent (escaped, cut when long). */
function withArguments(verb: string, args: string): string {
  return args === "" ? verb : `${verb} ${shown(args, MAX_ARGUMENT)}`;
}

/**
 * One command line of the client as the log shows it (stateless: a line the client sends after
 * a continuation request is never a command; `CommandLog` hides those).
 */
export function redactCommand(protocol: BridgeProtocol, line: string): string {
  switch (protocol) {
    case "POP3": {
      const [verb, args] = split(line);
      if (POP3_SHOWN.has(verb)) return withArguments(verb, args);
      if (POP3_NAME_ONLY.has(verb)) {
        return verb === "AUTH" ? saslCommand(verb, args) : args === "" ? verb : `${verb} <hidden>`;
      }
      return HIDDEN_LINE;
    }
    case "IMAP": {
      const [tag, rest = ""] = line.split(/ (.*)/s, 2);
      if (!IMAP_TAG.test(tag)) return HIDDEN_LINE;
      const [command, args] = split(rest);
      if (IMAP_NAMES.has(command)) return `${tag} ${command}${args === "" ? "" : " <hidden>"}`;
      if (command === "AUTHENTICATE") return `${tag} ${saslCommand(command, args)}`;
      if (command === "LOGIN") {
        const user = IMAP_ASTRING.exec(args)?.[0];
        return user === undefined || user.length === args.length
          ? `${tag} LOGIN <hidden>`
          : `${tag} LOGIN ${shown(user, MAX_ARGUMENT)} <hidden>`;
      }
      return HIDDEN_LINE;
    }
    case "SMTP": {
      const [verb, args] = split(line);
      if (SMTP_SHOWN.has(verb)) return withArguments(verb, args);
      if (verb === "AUTH") return saslCommand(verb, args);
      if (SMTP_NAME_ONLY.has(verb)) return args === "" ? verb : `${verb} <hidden>`;
      return HIDDEN_LINE;
    }
  }
}

/** The status of the bridge's answer (`+OK`, `-ERR`, `a1 NO`, `+`, `535 5.7.8`); no text. */
export function replyStatus(
  protocol: BridgeProtocol,
  lines: readonly string[],
): string | undefined {
  switch (protocol) {
    case "POP3":
      return /^[+-][A-Z]+/.exec(lines[0] ?? "")?.[0];
    case "IMAP": {
      const last = lines.at(-1) ?? "";
      if (last.startsWith("+")) return "+";
      const m = /^(\S+) (OK|NO|BAD|BYE|PREAUTH)\b/i.exec(last);
      return m ? `${shown(m[1], 20)} ${m[2].toUpperCase()}` : undefined;
    }
    case "SMTP":
      return /^\d{3}(?:[ -]\d\.\d{1,3}\.\d{1,3})?/.exec(lines.at(-1) ?? "")?.[0].replace("-", " ");
  }
}

/** An IMAP line ending with a literal's size: the next line starts with the literal's bytes. */
const LITERAL_AT_END = /\{(\d{1,10})(\+?)\}$/;

interface Literal {
  /** Its size in bytes. */
  bytes: number;
  /** Synchronizing (`{n}`): the client sends it only after `+`. */
  sync: boolean;
}

function literalAtEnd(line: string): Literal | undefined {
  const m = LITERAL_AT_END.exec(line);
  return m ? { bytes: Number(m[1]), sync: m[2] === "" } : undefined;
}

const decoder = new TextDecoder();

/**
 * A session's command log: `read` for each line the client sent, `wrote` for each answer; both
 * call `log` with the text to log (`C: ...`, `S: ...`). Keeps what it must know across lines:
 * a continuation request was sent (the next line is a SASL answer), a literal was announced (the
 * next line starts with it; a line that ends with another one announces that), the SMTP message
 * is being sent. A literal with a line end inside (the line is shorter than the literal) leaves
 * no way to tell where commands start again: every later line is hidden.
 */
export class CommandLog {
  readonly #protocol: BridgeProtocol;
  readonly #log: (text: string) => void;
  /** The next client line is a SASL answer (after `+` or `334`), not a command. */
  #answerNext = false;
  /** The next client line starts with this IMAP literal. */
  #literal: Literal | undefined;
  /** A literal did not fit in its line: nothing the client sends is shown any more. */
  #lost = false;
  /** Inside an SMTP message (after 354): its size so far, or undefined. */
  #messageBytes: number | undefined;

  constructor(protocol: BridgeProtocol, log: (text: string) => void) {
    this.#protocol = protocol;
    this.#log = log;
  }

  read(line: string): void {
    if (this.#messageBytes !== undefined) {
      if (line === ".") {
        this.#log(`C: (message: ${this.#messageBytes} bytes)`);
        this.#messageBytes = undefined;
      } else this.#messageBytes += encoder.encode(line).length + 2;
      return;
    }
    const literal = this.#literal;
    const hidden = this.#lost || this.#answerNext || literal !== undefined;
    this.#answerNext = false;
    this.#literal = undefined;
    if (literal !== undefined) {
      const bytes = encoder.encode(line);
      if (bytes.length < literal.bytes) this.#lost = true;
      else this.#literal = literalAtEnd(decoder.decode(bytes.subarray(literal.bytes)));
    } else if (!this.#lost && this.#protocol === "IMAP") {
      this.#literal = literalAtEnd(line);
    }
    this.#log(`C: ${hidden ? HIDDEN_LINE : redactCommand(this.#protocol, line)}`);
  }

  wrote(lines: readonly string[]): void {
    const status = replyStatus(this.#protocol, lines);
    if (status === undefined) return;
    if (this.#protocol === "IMAP") {
      if (status === "+") {
        if (this.#literal === undefined) this.#answerNext = true;
      } else if (this.#literal?.sync) {
        // Refused before it was sent: the client should not send it, but hide the next line.
        this.#literal = undefined;
        this.#answerNext = true;
      }
    }
    if (this.#protocol === "SMTP") {
      if (status.startsWith("334")) this.#answerNext = true;
      if (status.startsWith("354")) this.#messageBytes = 0;
    }
    this.#log(`S: ${status}`);
  }
}
