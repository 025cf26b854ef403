/**
 * The production `LineTransport`: implicit TLS (IMAP 993, POP3 995), or plain
 * TCP upgraded with STARTTLS (SMTP submission 587), with every step bounded by
 * a timeout, and every failure turned into a `ConnectionError` whose `code`
 * says what went wrong (the original error stays as `cause`).
 *
 * Against hostile servers: a step's reply has one deadline however it
 * trickles in, lines and replies have size limits (memory stays bounded), and
 * server lines never carry our own XOAUTH2 string or token back up.
 */

import { ConnectionError, InternalError, messageOf, ToolError } from "../errors.ts";
import { LineBuffer, LineTooLongError } from "./lines.ts";
import { Redactor } from "../redact.ts";
import { classifyNetworkError } from "../net/classify.ts";
import type { LineTransport } from "./transport.ts";

export interface TlsOptions {
  host: string;
  port: number;
  /** Extra trusted CA certificates (PEM), added to the system roots. */
  caCerts?: string[];
  /**
   * Bound for connect + handshake, for each `writeLine()`, and for each step's
   * reply: all `readLine()` calls between two `writeLine()` calls share one
   * deadline, so a server that keeps talking (or trickles bytes) cannot
   * stretch a step.
   */
  timeoutMs: number;
  /**
   * Bound for connect + handshake alone, when it must differ from `timeoutMs` (a connection
   * opened early, while this process is busy with other work); default `timeoutMs`.
   */
  connectTimeoutMs?: number;
  /** Longest line accepted, in bytes without CRLF; default 64 KiB. */
  maxLineLength?: number;
  /**
   * Most text accepted in one step's reply (all its lines); default 2 MiB,
   * room for a LIST of some 20,000 folders with long names. Bounds memory against a
   * server that never ends its reply.
   */
  maxReplyBytes?: number;
  /**
   * Opens the TCP connection instead of a direct connect (e.g. a tunnel
   * through an HTTP proxy); bounded by the same timeout.
   */
  dial?: (signal: AbortSignal) => Promise<Deno.TcpConn>;
  /** Our own credentials: removed from every server line (a server may echo them). */
  secrets?: Redactor;
}

/** Where `connectPlain` connects; TLS comes later with `startTls`. */
export interface PlainOptions {
  host: string;
  port: number;
  /**
   * Bound for the TCP connect, the STARTTLS handshake, each `writeLine()` and
   * each step's reply (as for `TlsOptions.timeoutMs`).
   */
  timeoutMs: number;
  /** Bound for the TCP connect alone (as for `TlsOptions.connectTimeoutMs`). */
  connectTimeoutMs?: number;
  /** Longest line accepted, in bytes without CRLF; default 64 KiB. */
  maxLineLength?: number;
  /**
   * Most text accepted in one step's reply (all its lines); default 2 MiB,
   * room for a LIST of some 20,000 folders with long names. Bounds memory against a
   * server that never ends its reply.
   */
  maxReplyBytes?: number;
  /**
   * Opens the TCP connection instead of a direct connect (e.g. a tunnel
   * through an HTTP proxy); bounded by the same timeout.
   */
  dial?: (signal: AbortSignal) => Promise<Deno.TcpConn>;
  /** Our own credentials: removed from every server line (a server may echo them). */
  secrets?: Redactor;
}

/** How `startTls` verifies the server. */
export interface StartTlsOptions {
  /** The name the certificate must be valid for (usually the host connected to). */
  hostname: string;
  /** Extra trusted CA certificates (PEM), added to the system roots. */
  caCerts?: string[];
}

/** A line transport that starts in plain text and can switch to TLS on the same connection. */
export interface StartTlsTransport extends LineTransport {
  /** True once TLS is up (at once for `connectTls`, after `startTls` for `connectPlain`). */
  readonly secure: boolean;
  /**
   * Runs the TLS handshake on the open connection, bounded by the transport's
   * timeout, verifying the certificate for `hostname`. Lines received before
   * the handshake and not yet read are discarded. Rejects with the same codes
   * as `connectTls` (TLS_UNTRUSTED, TLS_HOSTNAME, TLS_FAILED, TIMEOUT); the
   * connection is closed then.
   */
  startTls(options: StartTlsOptions): Promise<void>;
}

/** A transport whose connection can be handed over (the bridge relays bytes after the login). */
export interface DetachableTransport extends StartTlsTransport {
  /**
   * Stops using the connection and hands it over with the bytes received but not yet read as
   * lines. The transport is closed afterwards (later calls fail) but the connection is not.
   */
  detach(): { conn: Deno.Conn; rest: Uint8Array };
}

const DEFAULT_MAX_LINE_LENGTH = 64 * 1024;
const DEFAULT_MAX_REPLY_BYTES = 2 * 1024 * 1024;
const READ_CHUNK = 16 * 1024;

/** Connects and completes the TLS handshake, so certificate problems surface here. */
export async function connectTls(options: TlsOptions): Promise<DetachableTransport> {
  const target = checkedTarget(options, "TLS");
  // Deno.connect (not connectTls) because only it takes a signal: the TCP
  // connect and the name lookup can then really be abandoned on timeout.
  const abort = new AbortController();
  let tcp: Deno.TcpConn | undefined;
  let tls: Deno.TlsConn | undefined;
  let step = "TCP connect";
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    if (tcp === undefined) abort.abort();
    else closeQuietly(tls ?? tcp); // ends a pending handshake
  }, options.connectTimeoutMs ?? options.timeoutMs);

  try {
    tcp = options.dial
      ? await options.dial(abort.signal)
      : await Deno.connect({ hostname: options.host, port: options.port, signal: abort.signal });
    step = "TLS handshake";
    tls = await Deno.startTls(tcp, { hostname: options.host, caCerts: options.caCerts });
    await tls.handshake();
    if (timedOut) throw new Error("timed out");
  } catch (error) {
    closeQuietly(tls ?? tcp);
    if (error instanceof ConnectionError) throw error; // from dial: already explained
    if (timedOut) {
      throw timeoutError(step, target, options.connectTimeoutMs ?? options.timeoutMs, error);
    }
    throw connectError(error, step, options.host, target);
  } finally {
    clearTimeout(timer);
  }
  return new SocketLineTransport(
    tls,
    true,
    target,
    options.timeoutMs,
    options.maxLineLength ?? DEFAULT_MAX_LINE_LENGTH,
    options.maxReplyBytes ?? DEFAULT_MAX_REPLY_BYTES,
    options.secrets ?? new Redactor(),
  );
}

/**
 * Connects over plain TCP (for protocols that upgrade with STARTTLS). Nothing
 * secret may be sent before `startTls()` has resolved.
 */
export async function connectPlain(options: PlainOptions): Promise<DetachableTransport> {
  const target = checkedTarget(options, "connection");
  const abort = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    abort.abort();
  }, options.connectTimeoutMs ?? options.timeoutMs);
  let tcp: Deno.TcpConn;
  try {
    tcp = options.dial
      ? await options.dial(abort.signal)
      : await Deno.connect({ hostname: options.host, port: options.port, signal: abort.signal });
  } catch (error) {
    if (error instanceof ConnectionError) throw error; // from dial: already explained
    if (timedOut) {
      throw timeoutError(
        "TCP connect",
        target,
        options.connectTimeoutMs ?? options.timeoutMs,
        error,
      );
    }
    throw connectError(error, "TCP connect", options.host, target);
  } finally {
    clearTimeout(timer);
  }
  try {
    // After STARTTLS the client sends its TLS Finished and then EHLO, two small
    // writes in a row: with Nagle's algorithm the second waits for the server's
    // delayed ACK (measured ~40 ms on loopback). Lines are whole commands anyway.
    tcp.setNoDelay(true);
  } catch {
    // only a latency optimisation
  }
  return new SocketLineTransport(
    tcp,
    false,
    target,
    options.timeoutMs,
    options.maxLineLength ?? DEFAULT_MAX_LINE_LENGTH,
    options.maxReplyBytes ?? DEFAULT_MAX_REPLY_BYTES,
    options.secrets ?? new Redactor(),
  );
}

class SocketLineTransport implements DetachableTransport {
  /** The TCP connection until `startTls`, the TLS connection on top of it afterwards. */
  #conn: Deno.Conn;
  #secure: boolean;
  readonly #target: string;
  readonly #timeoutMs: number;
  #lines: LineBuffer;
  readonly #chunk = new Uint8Array(READ_CHUNK);
  readonly #encoder = new TextEncoder();
  #closed = false;
  /** Why the connection ended, for the error of any later call. */
  #endReason = "the connection was closed";
  #busy = false;
  /**
   * When the reply of the current step must be complete (performance.now()).
   * A step starts at connect (the greeting), with each `writeLine()` (the
   * command's reply) and after STARTTLS. A per-read or per-line timeout would
   * let a server that sends one byte a second, or an endless reply, hold the
   * run forever.
   */
  #replyDeadline: number;
  /** Lines read in the current step, for the timeout message. */
  #stepLines = 0;
  /** Text read in the current step (characters plus CRLF), against `#maxReplyBytes`. */
  #stepBytes = 0;
  readonly #maxReplyBytes: number;
  /** Our own credentials, removed from server lines (see `#deliver`). */
  readonly #secrets: Redactor;

  constructor(
    conn: Deno.Conn,
    secure: boolean,
    target: string,
    timeoutMs: number,
    maxLineLength: number,
    maxReplyBytes: number,
    secrets: Redactor,
  ) {
    this.#secrets = secrets;
    this.#conn = conn;
    this.#secure = secure;
    this.#target = target;
    this.#timeoutMs = timeoutMs;
    this.#lines = new LineBuffer(maxLineLength);
    this.#maxReplyBytes = maxReplyBytes;
    this.#replyDeadline = performance.now() + timeoutMs;
  }

  #startStep(): void {
    this.#replyDeadline = performance.now() + this.#timeoutMs;
    this.#stepLines = 0;
    this.#stepBytes = 0;
  }

  get secure(): boolean {
    return this.#secure;
  }

  async startTls(options: StartTlsOptions): Promise<void> {
    if (this.#secure) {
      throw new InternalError("startTls() called on a connection that is already TLS", {
        code: "TLS_ALREADY_ACTIVE",
      });
    }
    const step = "STARTTLS handshake";
    if (this.#closed) throw this.#closedError(step);
    if (this.#busy) {
      throw new InternalError("startTls() called while readLine/writeLine is pending", {
        code: "TRANSPORT_BUSY",
      });
    }
    // STARTTLS injection (CVE-2011-0411 and relatives): whatever arrived after
    // the server's reply to STARTTLS came in plain text, so a man in the middle
    // could have put it there to be read later as if it came over TLS.
    this.#lines = new LineBuffer(this.#lines.maxLineLength);
    this.#busy = true;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      this.#end(`no TLS handshake within ${seconds(this.#timeoutMs)}`);
    }, this.#timeoutMs);
    try {
      const tls = await Deno.startTls(this.#conn as Deno.TcpConn, {
        hostname: options.hostname,
        caCerts: options.caCerts,
      });
      // The TCP resource now belongs to `tls`: closing means closing `tls`.
      this.#conn = tls;
      if (timedOut) throw new Error("timed out");
      await tls.handshake();
      if (timedOut) throw new Error("timed out");
    } catch (error) {
      this.#end("the TLS handshake failed");
      closeQuietly(this.#conn);
      if (timedOut) throw timeoutError(step, this.#target, this.#timeoutMs, error);
      throw connectError(error, step, options.hostname, this.#target);
    } finally {
      clearTimeout(timer);
      this.#busy = false;
    }
    this.#secure = true;
    this.#startStep();
  }

  async readLine(): Promise<string> {
    // Lines that arrived before the server closed are still delivered.
    const ready = this.#nextBufferedLine();
    if (ready !== null) return this.#deliver(ready);
    const what = "waiting for a reply";
    const left = this.#replyDeadline - performance.now();
    if (left <= 0 && !this.#closed) {
      this.#end(`no complete reply within ${seconds(this.#timeoutMs)}`);
      throw this.#stepTimeout(what, undefined);
    }
    const line = await this.#bounded(what, async () => {
      while (true) {
        const n = await this.#conn.read(this.#chunk);
        if (n === null) {
          const partial = this.#lines.pending > 0
            ? ` (after ${this.#lines.pending} bytes of an unfinished line)`
            : "";
          this.#end(`the server closed the connection${partial}`);
          throw this.#closedError(what);
        }
        this.#lines.push(this.#chunk.subarray(0, n));
        const line = this.#nextBufferedLine();
        if (line !== null) return line;
      }
    }, Math.max(1, left));
    return this.#deliver(line);
  }

  /**
   * Hands a server line up, without our own credentials in it: a broken or
   * hostile server may echo the XOAUTH2 string or the token (whole, or cut
   * short) in an error reply, and sessions quote such replies in error
   * messages, cut to a length where the console's redaction no longer
   * recognises a token.
   */
  #deliver(line: string): string {
    this.#stepLines++;
    this.#stepBytes += line.length + 2;
    if (this.#stepBytes > this.#maxReplyBytes) {
      // Everything a session keeps of a reply (transcript, folder names) grows with it.
      this.#end("a reply was too long");
      throw new ConnectionError(
        `${this.#target} sent more than ${this.#maxReplyBytes} bytes in one reply ` +
          `(${this.#stepLines} lines) without finishing it`,
        { code: "REPLY_TOO_LONG" },
      );
    }
    return this.#secrets.redact(line);
  }

  async writeLine(line: string): Promise<void> {
    if (/[\r\n]/.test(line)) {
      // A CR or LF would let one "line" smuggle in a second command.
      throw new InternalError("refusing to send a line that contains CR or LF", {
        code: "INVALID_LINE",
      });
    }
    const bytes = this.#encoder.encode(`${line}\r\n`);
    // A command starts a step: its reply gets the full time.
    this.#startStep();
    await this.#bounded("sending", async () => {
      for (let sent = 0; sent < bytes.length;) {
        sent += await this.#conn.write(bytes.subarray(sent));
      }
    });
  }

  close(): void {
    this.#end("the connection was closed");
  }

  detach(): { conn: Deno.Conn; rest: Uint8Array } {
    if (this.#closed || this.#busy) {
      throw new InternalError("detach() called on a closed or busy transport", {
        code: "TRANSPORT_BUSY",
      });
    }
    this.#closed = true;
    this.#endReason = "the connection was handed over";
    return { conn: this.#conn, rest: this.#lines.takeRest() };
  }

  #end(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#endReason = reason;
    closeQuietly(this.#conn);
  }

  #nextBufferedLine(): string | null {
    try {
      return this.#lines.shift();
    } catch (error) {
      if (!(error instanceof LineTooLongError)) throw error;
      this.#end("a line was too long");
      throw new ConnectionError(
        `${this.#target} sent a line longer than ${error.limit} bytes`,
        { code: "LINE_TOO_LONG", cause: error },
      );
    }
  }

  /**
   * Runs one read or write under the timeout (`limitMs`, default the whole
   * timeout). On timeout the connection is closed, which ends the pending
   * operation (Deno rejects it as Interrupted).
   */
  async #bounded<T>(
    what: string,
    work: () => Promise<T>,
    limitMs = this.#timeoutMs,
  ): Promise<T> {
    if (this.#closed) throw this.#closedError(what);
    if (this.#busy) {
      throw new InternalError("readLine/writeLine called while another is pending", {
        code: "TRANSPORT_BUSY",
      });
    }
    this.#busy = true;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      this.#end(`no answer within ${seconds(this.#timeoutMs)}`);
    }, limitMs);
    try {
      const result = await work();
      if (timedOut) throw new Error("timed out");
      return result;
    } catch (error) {
      if (timedOut) throw this.#stepTimeout(what, error);
      if (error instanceof ToolError) throw error;
      if (error instanceof Deno.errors.InvalidData) {
        this.#end("TLS error");
        throw new ConnectionError(
          `TLS error from ${this.#target} while ${what}: ${messageOf(error)}`,
          {
            code: "TLS_FAILED",
            cause: error,
          },
        );
      }
      this.#end(`the connection failed: ${messageOf(error)}`);
      throw this.#closedError(what, error);
    } finally {
      clearTimeout(timer);
      this.#busy = false;
    }
  }

  /**
   * The timeout of a step. A server that said nothing gets the usual "no
   * answer"; one that kept sending without finishing its reply is named as such.
   */
  #stepTimeout(what: string, cause: unknown): ConnectionError {
    if (this.#stepLines === 0) return timeoutError(what, this.#target, this.#timeoutMs, cause);
    return new ConnectionError(
      `${this.#target} did not finish its reply within ${seconds(this.#timeoutMs)} ` +
        `(${this.#stepLines} lines received; ${what})`,
      { code: "TIMEOUT", cause },
    );
  }

  #closedError(what: string, cause?: unknown): ConnectionError {
    return new ConnectionError(
      `connection to ${this.#target} lost while ${what}: ${this.#endReason}`,
      {
        code: "CONNECTION_CLOSED",
        cause,
      },
    );
  }
}

function timeoutError(step: string, target: string, timeoutMs: number, cause: unknown) {
  return new ConnectionError(`no answer from ${target} within ${seconds(timeoutMs)} (${step})`, {
    code: "TIMEOUT",
    cause,
  });
}

/**
 * Maps what Deno 2.9 throws while connecting (net/classify.ts reads the causes
 * Deno only states in messages); TLS failures it cannot name are TLS_FAILED.
 */
export function connectError(
  error: unknown,
  step: string,
  host: string,
  target: string,
): ConnectionError {
  const message = messageOf(error);
  const kind = error instanceof Deno.errors.ConnectionRefused
    ? "CONNECTION_REFUSED"
    : classifyNetworkError(message);
  switch (kind) {
    case "CONNECTION_REFUSED":
      return new ConnectionError(`connection to ${target} refused: nothing listens there`, {
        code: kind,
        cause: error,
      });
    case "DNS_FAILED":
      return new ConnectionError(`cannot resolve host name ${host}: ${message}`, {
        code: kind,
        cause: error,
      });
    case "TLS_HOSTNAME":
      return new ConnectionError(
        `TLS certificate of ${target} is not valid for the name ${host}: ${message}`,
        { code: kind, cause: error },
      );
    case "TLS_UNTRUSTED":
      return new ConnectionError(`TLS certificate of ${target} is not trusted: ${message}`, {
        code: kind,
        cause: error,
      });
  }
  if (step === "TLS handshake") {
    return new ConnectionError(`TLS handshake with ${target} failed: ${message}`, {
      code: "TLS_FAILED",
      cause: error,
    });
  }
  if (step === "STARTTLS handshake") {
    return new ConnectionError(`TLS handshake after STARTTLS with ${target} failed: ${message}`, {
      code: "TLS_FAILED",
      cause: error,
    });
  }
  return new ConnectionError(`cannot connect to ${target}: ${message}`, {
    code: "CONNECTION_FAILED",
    cause: error,
  });
}

/** `host:port` for messages, after refusing options no connection could honour (a caller's bug). */
function checkedTarget(options: PlainOptions, what: string): string {
  if (!(options.timeoutMs > 0) || !Number.isInteger(options.port)) {
    throw new InternalError(
      `invalid ${what} options: port ${options.port}, timeout ${options.timeoutMs}`,
      { code: "INVALID_OPTIONS" },
    );
  }
  return formatTarget(options.host, options.port);
}

function formatTarget(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))} s`;
}

function closeQuietly(conn: Deno.Conn | undefined): void {
  // Also swallows BadResource for a TCP connection whose resource startTls took over.
  try {
    conn?.close();
  } catch {
    // already closed
  }
}
