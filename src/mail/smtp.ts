/**
 * SMTP submission client session (RFC 6409, smtp.office365.com:587): greeting,
 * EHLO, STARTTLS, EHLO again, AUTH XOAUTH2, optionally one test message, QUIT.
 * A small state machine over a `StartTlsTransport`; it knows nothing about
 * sockets, tokens or output.
 *
 * The token is never sent before TLS is up: a server that does not offer
 * STARTTLS is an error, never a reason to log in over plain text.
 */

import { AuthError, ConnectionError, InternalError, MailboxError, UsageError } from "../errors.ts";
import { mailboxProblem } from "../sasl/xoauth2.ts";
import { describeXoauth2Challenge, Wire } from "./lines.ts";
import type { StartTlsTransport } from "./tls_transport.ts";
import type { SmtpOptions, SmtpResult } from "./types.ts";

export type { SmtpOptions, SmtpResult } from "./types.ts";

export const TEST_MESSAGE_SUBJECT = "Get-IMAPAccessToken test message";

/** A multi-line reply longer than this is a broken server, not a capability list. */
const MAX_REPLY_LINES = 100;
/** One reply line: three digits, then `-` (more lines follow), a space, or nothing. */
const REPLY_LINE = /^(\d{3})(?:([ -])(.*))?$/s;
/** RFC 3463 enhanced status code at the start of the reply text, e.g. `5.7.139`. */
const ENHANCED = /^([245]\.\d{1,3}\.\d{1,3})(?: |$)/;

/** One complete server reply (all lines of a multi-line reply). */
interface Reply {
  code: number;
  /** The lines as sent. */
  lines: string[];
  /** The text after the code of each line. */
  texts: string[];
}

/**
 * Logs in with XOAUTH2 after STARTTLS, optionally sends one test message and
 * quits. Does not close the transport. If the transport is already secure
 * (implicit TLS), STARTTLS is skipped.
 */
export function runSmtp(transport: StartTlsTransport, options: SmtpOptions): Promise<SmtpResult> {
  return new SmtpSession(transport, options).run();
}

/**
 * Greeting, EHLO, STARTTLS, EHLO and AUTH XOAUTH2, nothing else: the bridge's upstream login,
 * after which the session is the caller's (no QUIT, also not when the login was refused).
 * Returns the EHLO keywords after STARTTLS.
 */
export function loginSmtp(transport: StartTlsTransport, options: SmtpOptions): Promise<string[]> {
  return new SmtpSession(transport, options).login();
}

class SmtpSession {
  readonly #transport: StartTlsTransport;
  readonly #options: SmtpOptions;
  readonly #wire: Wire;
  readonly #clientName: string;

  constructor(transport: StartTlsTransport, options: SmtpOptions) {
    this.#transport = transport;
    this.#options = options;
    this.#wire = new Wire(transport, options);
    this.#clientName = options.clientName ?? defaultClientName();
  }

  async run(): Promise<SmtpResult> {
    this.#checkOptions();
    const { greeting, capabilities } = await this.#secure();
    const result: SmtpResult = { greeting, capabilities, authenticated: true };
    try {
      this.#progress("authenticate", "Authenticate using XOAuth2.");
      await this.#authenticate(capabilities);

      const to = this.#options.sendTestMessageTo;
      if (to !== undefined) {
        this.#progress("send", `Send a test message to ${to}.`);
        result.queued = await this.#send(to);
      }
    } catch (error) {
      // Refused login or message, but the server still talks: QUIT frees the session.
      if (error instanceof AuthError || error instanceof MailboxError) await this.#quit();
      throw error;
    }

    this.#progress("logout", "Quit.");
    await this.#quit();
    return result;
  }

  async login(): Promise<string[]> {
    this.#checkOptions();
    const { capabilities } = await this.#secure();
    this.#progress("authenticate", "Authenticate using XOAuth2.");
    await this.#authenticate(capabilities);
    return capabilities;
  }

  /** Greeting, EHLO, and STARTTLS with a second EHLO unless the transport is already TLS. */
  async #secure(): Promise<{ greeting: string; capabilities: string[] }> {
    const greeting = await this.#greeting();
    let capabilities = await this.#ehlo();
    if (!this.#transport.secure) {
      if (!capabilities.some((c) => keyword(c) === "STARTTLS")) {
        throw new ConnectionError(
          "SMTP server does not offer STARTTLS; the token was not sent over the unencrypted " +
            "connection",
          { code: "SMTP_NO_STARTTLS" },
        );
      }
      this.#progress("starttls", "Start TLS (STARTTLS).");
      await this.#startTls();
      capabilities = await this.#ehlo();
    }
    return { greeting, capabilities };
  }

  /** Everything that would break the protocol is refused before the first byte is sent. */
  #checkOptions(): void {
    if (this.#options.sasl === "") {
      throw new InternalError("no XOAUTH2 string to log in with", { code: "NO_SASL" });
    }
    const addresses: [string, string | undefined][] = [
      ["mailbox", this.#options.mailbox],
      ["test message recipient", this.#options.sendTestMessageTo],
    ];
    for (const [what, address] of addresses) {
      if (address === undefined) continue;
      // `<` and `>` would end the path in `MAIL FROM:<...>` early.
      const problem = mailboxProblem(address) ?? (/[<>]/.test(address) ? "contains < or >" : null);
      if (problem) {
        throw new UsageError(`SMTP ${what} ${JSON.stringify(address)} ${problem}`, {
          code: "SMTP_BAD_ADDRESS",
        });
      }
    }
    if (!isClientName(this.#clientName)) {
      throw new UsageError(
        `SMTP client name ${JSON.stringify(this.#clientName)} is not a host name`,
        { code: "SMTP_BAD_ADDRESS" },
      );
    }
  }

  #progress(step: "starttls" | "authenticate" | "send" | "logout", message: string): void {
    this.#options.onProgress?.(step, message);
  }

  async #greeting(): Promise<string> {
    const reply = await this.#reply();
    if (reply.code !== 220) {
      throw new ConnectionError(
        `SMTP server sent an unexpected greeting: ${this.#quote(reply)}`,
        {
          code: "SMTP_BAD_GREETING",
        },
      );
    }
    return reply.lines[0];
  }

  /** Sends EHLO and returns the extension lines (not the first, which names the server), upper-cased. */
  async #ehlo(): Promise<string[]> {
    await this.#wire.send(`EHLO ${this.#clientName}`);
    const reply = await this.#reply();
    if (reply.code !== 250) {
      throw new ConnectionError(`SMTP server refused EHLO: ${this.#quote(reply)}`, {
        code: "SMTP_EHLO_FAILED",
      });
    }
    return reply.texts.slice(1).map((text) => text.trim().toUpperCase()).filter((t) => t !== "");
  }

  async #startTls(): Promise<void> {
    await this.#wire.send("STARTTLS");
    const reply = await this.#reply();
    if (reply.code !== 220) {
      if (reply.code >= 400) {
        throw new ConnectionError(`SMTP server refused STARTTLS: ${this.#quote(reply)}`, {
          code: "SMTP_STARTTLS_FAILED",
        });
      }
      throw this.#violation("unexpected reply to STARTTLS", reply);
    }
    await this.#transport.startTls(this.#options.tls);
    // The transport promises this; the token depends on it, so check anyway.
    if (!this.#transport.secure) {
      throw new InternalError("transport is not secure after STARTTLS", {
        code: "SMTP_STARTTLS_FAILED",
      });
    }
  }

  async #authenticate(capabilities: string[]): Promise<void> {
    // `AUTH LOGIN XOAUTH2`, or the pre-standard `AUTH=LOGIN XOAUTH2` some servers add.
    const auth = capabilities.filter((c) => /^AUTH[ =]/.test(c));
    const mechanisms = auth.flatMap((c) => c.slice(5).split(" "));
    if (!mechanisms.includes("XOAUTH2")) {
      throw new AuthError(
        `SMTP server does not offer AUTH XOAUTH2 after STARTTLS (${
          auth.length > 0 ? `it offers ${this.#wire.quote(auth.join(", "))}` : "it offers no AUTH"
        }); the token was not sent`,
        {
          code: "SMTP_XOAUTH2_UNSUPPORTED",
        },
      );
    }

    // Two-step form, as Exchange documents it: the credentials follow the 334.
    await this.#wire.send("AUTH XOAUTH2");
    const ready = await this.#reply();
    if (ready.code !== 334) {
      if (ready.code === 504) {
        throw new AuthError(`SMTP server refused XOAUTH2 authentication: ${this.#quote(ready)}`, {
          code: "SMTP_XOAUTH2_UNSUPPORTED",
        });
      }
      throw this.#authFailure(ready);
    }

    await this.#wire.send(this.#options.sasl);
    let reply = await this.#reply();
    let detail: string | undefined;
    if (reply.code === 334) {
      // A challenge after the credentials means failure (Dovecot sends one,
      // Exchange never does). It must be answered with an empty line or the
      // server waits forever; the final reply follows.
      detail = describeXoauth2Challenge(reply.texts[0] ?? "");
      await this.#wire.send("");
      reply = await this.#reply();
      if (reply.code < 400) throw this.#violation("unexpected reply after the challenge", reply);
    }
    if (reply.code === 235) return;
    throw this.#authFailure(reply, detail);
  }

  /**
   * Exit code choice for 5.7.139 (SMTP AUTH switched off for the tenant or
   * mailbox, or basic authentication off): AuthError, exit 5. The server
   * refused the AUTH command, so nothing is logged in, and exit 6 promises
   * "logged in, but the mailbox cannot be used". The code and hint still say
   * that the fix is a tenant or mailbox setting, not the token.
   * 530 5.7.57 ("Client not authenticated to send mail") is exit 6 wherever it
   * comes: the token was accepted or never judged, and what is left to fix is
   * the mailbox (its SMTP AUTH setting or the principal's permissions on it).
   */
  #authFailure(reply: Reply, detail?: string): Error {
    if (reply.code < 400) return this.#violation("unexpected reply to AUTH XOAUTH2", reply);
    const text = reply.texts.join(" ");
    const status = enhancedStatus(reply);
    const suffix = detail ? ` (server detail: ${detail})` : "";
    const message = `SMTP server rejected the login: ${this.#quote(reply)}${suffix}`;
    if (status === "5.7.57") return this.#notAuthenticated(reply);
    if (/SmtpClientAuthentication is disabled for the Mailbox/i.test(text)) {
      return new AuthError(message, {
        code: "SMTP_AUTH_DISABLED_MAILBOX",
      });
    }
    if (/SmtpClientAuthentication is disabled/i.test(text)) {
      return new AuthError(message, {
        code: "SMTP_AUTH_DISABLED_TENANT",
      });
    }
    if (/basic authentication is disabled/i.test(text)) {
      return new AuthError(message, {
        code: "SMTP_BASIC_AUTH_DISABLED",
      });
    }
    // Basic authentication for Client Submission retired (Exchange Online, from 2026).
    if (status === "5.7.30" || /basic authentication is not supported/i.test(text)) {
      return new AuthError(message, {
        code: "SMTP_BASIC_AUTH_RETIRED",
      });
    }
    return new AuthError(message, {
      code: "SMTP_AUTH_FAILED",
    });
  }

  #notAuthenticated(reply: Reply): MailboxError {
    return new MailboxError(
      `SMTP server does not treat the session as logged in: ${this.#quote(reply)}`,
      {
        code: "SMTP_NOT_AUTHENTICATED",
      },
    );
  }

  /** Sends the test message; returns the server's final reply line (with its queue ID). */
  async #send(to: string): Promise<string> {
    const from = this.#options.mailbox;
    await this.#command(`MAIL FROM:<${from}>`, "MAIL FROM", [250]);
    await this.#command(`RCPT TO:<${to}>`, "RCPT TO", [250, 251]);
    await this.#command("DATA", "DATA", [354]);
    for (const line of dotStuff(buildTestMessage({ from, to }))) await this.#wire.send(line);
    const done = await this.#command(".", "the message", [250]);
    return done.lines.at(-1) ?? "";
  }

  /** Sends one command of the mail transaction and checks its reply code. */
  async #command(line: string, what: string, expected: number[]): Promise<Reply> {
    await this.#wire.send(line);
    const reply = await this.#reply();
    if (expected.includes(reply.code)) return reply;
    if (reply.code < 400) throw this.#violation(`unexpected reply to ${what}`, reply);
    const status = enhancedStatus(reply);
    if (status === "5.7.57") throw this.#notAuthenticated(reply);
    // Not allowed to send as the mailbox: Exchange says so at MAIL FROM (5.7.60) or, after
    // DATA, with 554 5.2.252 SendAsDenied (older: 5.2.0 ...SendAsDeniedException).
    const sendAs = status === "5.7.60" || status === "5.2.252" ||
      /SendAsDenied/i.test(reply.texts.join(" "));
    throw new MailboxError(
      `SMTP server refused ${what} of the test message: ${this.#quote(reply)}`,
      {
        code: sendAs ? "SMTP_SEND_AS_DENIED" : "SMTP_SEND_FAILED",
      },
    );
  }

  /** The check already succeeded, so nothing that goes wrong here is reported. */
  async #quit(): Promise<void> {
    try {
      await this.#wire.send("QUIT");
      await this.#reply();
    } catch {
      // Closed connection, timeout or 421: the result stands.
    }
  }

  /** Reads one complete reply; a 421 ends the session wherever it comes. */
  async #reply(): Promise<Reply> {
    const reply: Reply = { code: 0, lines: [], texts: [] };
    while (true) {
      const line = await this.#wire.receive();
      const match = REPLY_LINE.exec(line);
      if (!match) throw this.#violation("malformed reply", { ...reply, lines: [line] });
      const code = Number(match[1]);
      if (reply.lines.length > 0 && code !== reply.code) {
        throw this.#violation("reply code changed within a multi-line reply", {
          ...reply,
          lines: [...reply.lines, line],
        });
      }
      reply.code = code;
      reply.lines.push(line);
      reply.texts.push(match[3] ?? "");
      if (match[2] !== "-") break;
      if (reply.lines.length >= MAX_REPLY_LINES) {
        throw this.#violation(`reply longer than ${MAX_REPLY_LINES} lines`, reply);
      }
    }
    if (reply.code === 421) {
      throw new ConnectionError(`SMTP server closed the session: ${this.#quote(reply)}`, {
        code: "SMTP_SERVICE_UNAVAILABLE",
      });
    }
    return reply;
  }

  /** A reply as it may appear in an error message: lines joined, without the secret. */
  #quote(reply: Pick<Reply, "lines">): string {
    return this.#wire.quote(reply.lines.join(" / "));
  }

  #violation(what: string, reply: Pick<Reply, "lines">): ConnectionError {
    return new ConnectionError(`SMTP protocol violation (${what}): ${this.#quote(reply)}`, {
      code: "SMTP_PROTOCOL_ERROR",
    });
  }
}

/** The first word of an EHLO line (`AUTH LOGIN XOAUTH2` -> `AUTH`). */
function keyword(capability: string): string {
  return capability.split(" ", 1)[0];
}

function enhancedStatus(reply: Reply): string | undefined {
  return ENHANCED.exec(reply.texts[0] ?? "")?.[1];
}

/** A domain name (letters, digits, hyphens, dots) or an address literal such as `[127.0.0.1]`. */
function isClientName(name: string): boolean {
  const label = "[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?";
  const domain = new RegExp(`^${label}(?:\\.${label})*$`);
  return (name.length <= 255 && domain.test(name)) || /^\[[0-9A-Fa-f:.]+\]$/.test(name);
}

/**
 * The EHLO name when none is given: this machine's host name, as SMTP clients
 * do (RFC 5321 4.1.1.1). Falls back to `localhost` when the name is not a
 * valid domain (e.g. contains `_`) or cannot be read (no `--allow-sys`).
 */
export function defaultClientName(): string {
  try {
    const name = Deno.hostname();
    if (isClientName(name)) return name;
  } catch {
    // no permission to read the host name
  }
  return "localhost";
}

export interface TestMessageOptions {
  from: string;
  to: string;
  /** Default: now. */
  date?: Date;
  /** The part before `@` in Message-ID; default: 32 random hex digits. */
  id?: string;
}

/**
 * The test message as lines (CRLF is added by the transport), before dot
 * stuffing: RFC 5322 headers, then a short plain-text body. Auto-Submitted
 * keeps auto-replies and out-of-office notices from answering it (RFC 3834).
 */
export function buildTestMessage(options: TestMessageOptions): string[] {
  const domain = options.from.slice(options.from.lastIndexOf("@") + 1);
  const id = options.id ?? randomHex(16);
  const body = [
    "This is a test message from Get-IMAPAccessToken.",
    "",
    `It was sent by SMTP submission, logged in as ${options.from} with OAuth 2.0`,
    "(SASL XOAUTH2), to check that this mailbox can send mail. No action is needed.",
  ];
  // Only an address with non-ASCII characters makes the message 8bit.
  const ascii = /^[\x20-\x7e]*$/;
  const eightBit = ![options.from, options.to, ...body].every((text) => ascii.test(text));
  return [
    `Date: ${formatDate(options.date ?? new Date())}`,
    `From: ${options.from}`,
    `To: ${options.to}`,
    `Subject: ${TEST_MESSAGE_SUBJECT}`,
    `Message-ID: <${id}@${domain}>`,
    "MIME-Version: 1.0",
    "Content-Type: text/plain; charset=utf-8",
    `Content-Transfer-Encoding: ${eightBit ? "8bit" : "7bit"}`,
    "Auto-Submitted: auto-generated",
    "",
    ...body,
  ];
}

/** SMTP's transparency rule (RFC 5321 4.5.2): a line that starts with `.` gets one more. */
export function dotStuff(lines: string[]): string[] {
  return lines.map((line) => line.startsWith(".") ? `.${line}` : line);
}

const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** RFC 5322 date-time in UTC, e.g. `Tue, 01 Aug 2023 10:00:00 +0000` (not `GMT`, which is obsolete). */
export function formatDate(date: Date): string {
  const two = (n: number) => String(n).padStart(2, "0");
  return `${DAYS[date.getUTCDay()]}, ${two(date.getUTCDate())} ${MONTHS[date.getUTCMonth()]} ` +
    `${date.getUTCFullYear()} ${two(date.getUTCHours())}:${two(date.getUTCMinutes())}:` +
    `${two(date.getUTCSeconds())} +0000`;
}

function randomHex(bytes: number): string {
  return Array.from(
    crypto.getRandomValues(new Uint8Array(bytes)),
    (b) => b.toString(16).padStart(2, "0"),
  )
    .join("");
}
