/**
 * IMAP client session: greeting, CAPABILITY, AUTHENTICATE XOAUTH2, LIST, LOGOUT.
 * A small state machine over a `LineTransport`; it knows nothing about sockets,
 * tokens or output. Success of AUTHENTICATE alone proves little on Exchange
 * (it accepts AUTHENTICATE for a principal that may not open the mailbox and only
 * refuses the next command), which is why LIST must succeed too.
 */

import { AuthError, ConnectionError, InternalError, MailboxError } from "../errors.ts";
import { describeXoauth2Challenge, Wire } from "./lines.ts";
import type { LineTransport } from "./transport.ts";
import type { ImapResult, SessionOptions } from "./types.ts";

export type { ImapResult, SessionOptions } from "./types.ts";

/** Exchange's answer to the first command after a login that is not allowed to use the mailbox. */
const NOT_CONNECTED = /User is authenticated but not connected/i;
/** Exchange's BYE when the token expires mid-session. */
const TOKEN_EXPIRED = /AccessTokenExpired/i;
/** A literal announced at the end of a line; `+` (LITERAL+) only comes from clients, accepted anyway. */
const LITERAL = /\{(\d+)\+?\}$/;
/** Folder names are short; anything bigger is a broken server, not a folder. */
const MAX_LITERAL = 1024 * 1024;
/** LOGOUT must not wait forever on a server that keeps talking. */
const MAX_LOGOUT_LINES = 50;
/** LIST replies nest one level; a deep nest is a hostile server that would blow the stack. */
const MAX_NESTING = 100;

type Status = "OK" | "NO" | "BAD";

type Response =
  | { kind: "continuation"; line: string; text: string }
  | { kind: "untagged"; line: string; name: string; text: string; literals: string[] }
  | { kind: "tagged"; line: string; tag: string; status: Status; text: string };

interface Handlers {
  /** A `+` line arrived; without a handler it is a protocol violation. */
  onContinuation?: (text: string, line: string) => Promise<void>;
  onUntagged?: (response: Extract<Response, { kind: "untagged" }>) => void;
}

/** Logs in with XOAUTH2, lists the folders and logs out. Does not close the transport. */
export function runImap(transport: LineTransport, options: SessionOptions): Promise<ImapResult> {
  return new ImapSession(transport, options).run();
}

/**
 * Reads the greeting (and CAPABILITY when the greeting has none) and logs in with XOAUTH2,
 * nothing else: the bridge's upstream login, after which the session is the caller's (the
 * transport is neither closed nor logged out, also not when the login was refused). Returns the
 * greeting.
 */
export function loginImap(transport: LineTransport, options: SessionOptions): Promise<string> {
  return new ImapSession(transport, options).login();
}

class ImapSession {
  readonly #wire: Wire;
  readonly #options: SessionOptions;
  #tagNumber = 0;
  #capabilities: string[] = [];
  #authenticated = false;
  #loggingOut = false;

  constructor(transport: LineTransport, options: SessionOptions) {
    this.#wire = new Wire(transport, options);
    this.#options = options;
  }

  async run(): Promise<ImapResult> {
    if (this.#options.sasl === "") {
      throw new InternalError("no XOAUTH2 string to log in with", { code: "NO_SASL" });
    }
    const greeting = await this.#greeting();
    if (this.#capabilities.length === 0) await this.#capability();
    const capabilities = [...this.#capabilities];

    let folders: string[];
    try {
      this.#progress("authenticate", "Authenticate using XOAuth2.");
      await this.#authenticate();
      this.#authenticated = true;

      this.#progress("list", "List folders.");
      folders = await this.#list();
    } catch (error) {
      // Refused login or mailbox, but the server still talks: say goodbye, so it frees the
      // session (Exchange limits sessions per mailbox).
      if (error instanceof AuthError || error instanceof MailboxError) await this.#logout();
      throw error;
    }

    this.#progress("logout", "Log out.");
    await this.#logout();
    return { greeting, capabilities, folders };
  }

  async login(): Promise<string> {
    if (this.#options.sasl === "") {
      throw new InternalError("no XOAUTH2 string to log in with", { code: "NO_SASL" });
    }
    const greeting = await this.#greeting();
    if (this.#capabilities.length === 0) await this.#capability();
    this.#progress("authenticate", "Authenticate using XOAuth2.");
    await this.#authenticate();
    this.#authenticated = true;
    return greeting;
  }

  #progress(step: "authenticate" | "list" | "logout", message: string): void {
    this.#options.onProgress?.(step, message);
  }

  #nextTag(): string {
    this.#tagNumber++;
    return `A${String(this.#tagNumber).padStart(2, "0")}`;
  }

  async #greeting(): Promise<string> {
    const line = await this.#wire.receive();
    if (/^\* BYE( |$)/i.test(line)) throw this.#byeError(line);
    if (!/^\* OK( |$)/i.test(line)) {
      throw new ConnectionError(
        `IMAP server sent an unexpected greeting: ${this.#wire.quote(line)}`,
        { code: "IMAP_BAD_GREETING" },
      );
    }
    this.#captureCapabilityCode(line.slice(5));
    return line;
  }

  async #capability(): Promise<void> {
    const tag = this.#nextTag();
    await this.#wire.send(`${tag} CAPABILITY`);
    const done = await this.#complete(tag);
    // Capabilities only steer SASL-IR; a server that refuses to list them still gets a login attempt.
    if (done.status === "OK") this.#captureCapabilityCode(done.text);
  }

  async #authenticate(): Promise<void> {
    const sasl = this.#options.sasl;
    const saslIr = this.#has("SASL-IR");
    const tag = this.#nextTag();
    let credentialsSent = saslIr;
    let challengeAnswered = false;
    let detail: string | undefined;

    await this.#wire.send(`${tag} AUTHENTICATE XOAUTH2${saslIr ? ` ${sasl}` : ""}`);
    const done = await this.#complete(tag, {
      onContinuation: async (text, line) => {
        if (!credentialsSent) {
          credentialsSent = true;
          await this.#wire.send(sasl);
          return;
        }
        // A challenge after the credentials means failure (Dovecot sends one, Exchange
        // never does). It must be answered with an empty line or the server waits forever.
        if (challengeAnswered) {
          throw this.#violation("a second challenge after the credentials", line);
        }
        challengeAnswered = true;
        detail = describeXoauth2Challenge(text);
        await this.#wire.send("");
      },
    });
    if (done.status === "OK") return;

    const advertised = this.#capabilities.length === 0 || this.#has("AUTH=XOAUTH2")
      ? ""
      : " (the server does not advertise AUTH=XOAUTH2)";
    if (!credentialsSent) {
      throw new AuthError(
        `IMAP server refused XOAUTH2 authentication: ${this.#wire.quote(done.line)}${advertised}`,
        { code: "IMAP_XOAUTH2_UNSUPPORTED" },
      );
    }
    throw new AuthError(
      `IMAP server rejected the login: ${this.#wire.quote(done.line)}` +
        (detail ? ` (server detail: ${detail})` : "") + advertised,
      {
        code: "IMAP_AUTH_FAILED",
      },
    );
  }

  async #list(): Promise<string[]> {
    const folders: string[] = [];
    const tag = this.#nextTag();
    await this.#wire.send(`${tag} LIST "" *`);
    const done = await this.#complete(tag, {
      onUntagged: (response) => {
        if (response.name === "LIST") folders.push(this.#folderName(response));
      },
    });
    if (done.status === "OK") return folders;
    if (NOT_CONNECTED.test(done.text)) {
      throw new MailboxError(
        `IMAP login succeeded, but the mailbox cannot be used: ${this.#wire.quote(done.line)}`,
        {
          code: "IMAP_NOT_CONNECTED",
        },
      );
    }
    throw new MailboxError(
      `IMAP server refused to list the folders after login: ${this.#wire.quote(done.line)}`,
      { code: "IMAP_LIST_FAILED" },
    );
  }

  /** The check already succeeded, so nothing that goes wrong here is reported. */
  async #logout(): Promise<void> {
    this.#loggingOut = true;
    try {
      const tag = this.#nextTag();
      await this.#wire.send(`${tag} LOGOUT`);
      await this.#complete(tag, {}, MAX_LOGOUT_LINES);
    } catch {
      // Closed connection, timeout or odd reply after BYE: the result stands.
    }
  }

  /** Reads responses until the tagged one for `tag`, handling everything untagged on the way. */
  async #complete(
    tag: string,
    handlers: Handlers = {},
    maxResponses = Infinity,
  ): Promise<Extract<Response, { kind: "tagged" }>> {
    for (let count = 0; count < maxResponses; count++) {
      const response = await this.#readResponse();
      switch (response.kind) {
        case "continuation":
          if (!handlers.onContinuation) {
            throw this.#violation("unexpected continuation request", response.line);
          }
          await handlers.onContinuation(response.text, response.line);
          break;
        case "untagged":
          this.#untagged(response);
          handlers.onUntagged?.(response);
          break;
        case "tagged":
          if (response.tag !== tag) {
            throw this.#violation(
              // The tag is server text too: a server echoing our command may put the SASL string in it.
              `reply tagged ${this.#wire.quote(response.tag)} while waiting for ${tag}`,
              response.line,
            );
          }
          return response;
      }
    }
    throw this.#violation(`no reply to ${tag} after ${maxResponses} lines`, "");
  }

  #untagged(response: Extract<Response, { kind: "untagged" }>): void {
    if (response.name === "BYE" && !this.#loggingOut) throw this.#byeError(response.line);
    // Capabilities after login (Dovecot sends them with OK) are not what decided the login.
    if (this.#authenticated) return;
    if (response.name === "CAPABILITY") {
      this.#capabilities = response.text.split(" ").slice(1).filter((word) => word !== "");
    } else if (response.name === "OK") {
      this.#captureCapabilityCode(response.text.slice(3));
    }
  }

  /** Reads one response; untagged data responses may continue over literal lines. */
  async #readResponse(): Promise<Response> {
    const line = await this.#wire.receive();
    if (/^\+( |$)/.test(line)) return { kind: "continuation", line, text: line.slice(2) };

    if (line.startsWith("* ")) {
      const text = line.slice(2);
      const name = (text.split(" ", 1)[0] ?? "").toUpperCase();
      const literals: string[] = [];
      // Status responses (OK/NO/BAD/BYE/PREAUTH) end in free text, never in a literal.
      let full = text;
      if (!["OK", "NO", "BAD", "BYE", "PREAUTH"].includes(name)) {
        full = await this.#readLiterals(text, literals, line);
      }
      return { kind: "untagged", line, name, text: full, literals };
    }

    const tagged = /^([^ ]+) (OK|NO|BAD)(?: (.*))?$/i.exec(line);
    if (!tagged || tagged[1] === "*") throw this.#violation("malformed reply", line);
    const status = tagged[2].toUpperCase() as Status;
    return { kind: "tagged", line, tag: tagged[1], status, text: tagged[3] ?? "" };
  }

  /**
   * A line ending in `{n}` is followed by n octets of literal data, then the
   * rest of the response. The transport splits at CRLF, so the literal is
   * rebuilt from whole lines; `{n}` stays in the text as a placeholder that
   * `parseValues` replaces with the next entry of `literals`.
   */
  async #readLiterals(text: string, literals: string[], firstLine: string): Promise<string> {
    const encoder = new TextEncoder();
    const decoder = new TextDecoder();
    let full = text;
    let tail = text;
    let match: RegExpExecArray | null;
    while ((match = LITERAL.exec(tail)) !== null) {
      const size = Number(match[1]);
      if (size > MAX_LITERAL) throw this.#violation(`literal of ${size} octets`, firstLine);
      let data = await this.#wire.receive();
      // Count bytes as lines arrive: re-encoding all data per line is quadratic, and a server
      // sending a 1 MB literal as tiny lines would keep the CPU busy for a minute.
      let length = encoder.encode(data).length;
      while (length < size) {
        const line = await this.#wire.receive();
        data += "\r\n" + line;
        length += 2 + encoder.encode(line).length;
      }
      const bytes = encoder.encode(data);
      literals.push(decoder.decode(bytes.subarray(0, size)));
      tail = decoder.decode(bytes.subarray(size));
      full += tail;
    }
    return full;
  }

  #folderName(response: Extract<Response, { kind: "untagged" }>): string {
    // `LIST (flags) delimiter name`; the delimiter may be NIL.
    const values = parseValues(response.text.slice(4), response.literals);
    const name = values?.[2];
    if (!values || values.length !== 3 || !Array.isArray(values[0]) || typeof name !== "string") {
      throw this.#violation("malformed LIST reply", response.line);
    }
    return decodeModifiedUtf7(name);
  }

  #captureCapabilityCode(text: string): void {
    const match = /^\[CAPABILITY ([^\]]*)\]/i.exec(text);
    if (match) this.#capabilities = match[1].split(" ").filter((word) => word !== "");
  }

  #has(capability: string): boolean {
    return this.#capabilities.some((c) => c.toUpperCase() === capability);
  }

  #byeError(line: string): Error {
    if (TOKEN_EXPIRED.test(line)) {
      return new AuthError(
        `IMAP server ended the session because the access token expired: ${this.#wire.quote(line)}`,
        { code: "TOKEN_EXPIRED" },
      );
    }
    return new ConnectionError(`IMAP server closed the session: ${this.#wire.quote(line)}`, {
      code: "IMAP_BYE",
    });
  }

  #violation(what: string, line: string): ConnectionError {
    const quoted = line === "" ? "" : `: ${this.#wire.quote(line)}`;
    return new ConnectionError(`IMAP protocol violation (${what})${quoted}`, {
      code: "IMAP_PROTOCOL_ERROR",
    });
  }
}

/** An IMAP value: atom or string, NIL (null), or a parenthesized list. */
export type ImapValue = string | null | ImapValue[];

/**
 * Parses a sequence of IMAP values separated by spaces: atoms, "quoted"
 * strings with backslash escapes, NIL, (lists) and `{n}` literal placeholders
 * (taken in order from `literals`). Returns undefined on a syntax error, and on lists
 * nested deeper than `MAX_NESTING`.
 */
export function parseValues(text: string, literals: string[] = []): ImapValue[] | undefined {
  let i = 0;
  let literal = 0;
  let depth = 0;
  const fail = Symbol("fail");

  const skipSpaces = () => {
    while (text[i] === " ") i++;
  };

  const value = (): ImapValue | typeof fail => {
    const c = text[i];
    if (c === "(") {
      if (++depth > MAX_NESTING) return fail;
      i++;
      const items: ImapValue[] = [];
      while (true) {
        skipSpaces();
        if (i >= text.length) return fail;
        if (text[i] === ")") {
          i++;
          depth--;
          return items;
        }
        const item = value();
        if (item === fail) return fail;
        items.push(item);
      }
    }
    if (c === '"') {
      let out = "";
      for (i++; i < text.length; i++) {
        if (text[i] === "\\") {
          i++;
          if (i >= text.length) return fail;
          out += text[i];
        } else if (text[i] === '"') {
          i++;
          return out;
        } else {
          out += text[i];
        }
      }
      return fail;
    }
    if (c === "{") {
      const match = /^\{\d+\+?\}/.exec(text.slice(i));
      if (!match || literal >= literals.length) return fail;
      i += match[0].length;
      return literals[literal++];
    }
    const start = i;
    while (i < text.length && !' ()"'.includes(text[i])) i++;
    if (i === start) return fail;
    const atom = text.slice(start, i);
    return atom.toUpperCase() === "NIL" ? null : atom;
  };

  const values: ImapValue[] = [];
  while (true) {
    skipSpaces();
    if (i >= text.length) return values;
    const item = value();
    if (item === fail) return undefined;
    values.push(item);
  }
}

/**
 * Decodes IMAP's modified UTF-7 (RFC 3501 5.1.3), in which Exchange sends
 * non-ASCII folder names (`Gel&APY-schte Elemente`). Invalid sequences are
 * left as they are rather than failing the whole check.
 */
export function decodeModifiedUtf7(name: string): string {
  return name.replace(/&([A-Za-z0-9+,]*)-/g, (whole, encoded: string) => {
    if (encoded === "") return "&";
    let binary: string;
    try {
      const base64 = encoded.replace(/,/g, "/");
      binary = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
    } catch {
      return whole;
    }
    if (binary.length % 2 !== 0) return whole;
    let out = "";
    for (let k = 0; k < binary.length; k += 2) {
      out += String.fromCharCode((binary.charCodeAt(k) << 8) | binary.charCodeAt(k + 1));
    }
    return out;
  });
}
