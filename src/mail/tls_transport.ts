/**
 * The production `LineTransport`: implicit TLS (IMAP 993, POP3 995) with every
 * step bounded by a timeout, and every failure turned into a `ConnectionError`
 * whose `code` says what went wrong (the original error stays as `cause`).
 */

import { ConnectionError, InternalError, ToolError } from "../errors.ts";
import { LineBuffer, LineTooLongError } from "./lines.ts";
import type { LineTransport } from "./transport.ts";

export interface TlsOptions {
  host: string;
  port: number;
  /** Extra trusted CA certificates (PEM), added to the system roots. */
  caCerts?: string[];
  /** Bound for connect + handshake, and for each `readLine()` / `writeLine()`. */
  timeoutMs: number;
  /** Longest line accepted, in bytes without CRLF; default 64 KiB. */
  maxLineLength?: number;
}

/** The `code` of every error this module throws. */
export const TlsCode = {
  refused: "CONNECTION_REFUSED",
  dns: "DNS_FAILED",
  failed: "CONNECTION_FAILED",
  timeout: "TIMEOUT",
  untrusted: "TLS_UNTRUSTED",
  hostname: "TLS_HOSTNAME",
  tls: "TLS_FAILED",
  closed: "CONNECTION_CLOSED",
  tooLong: "LINE_TOO_LONG",
  badLine: "INVALID_LINE",
  badOptions: "INVALID_OPTIONS",
  busy: "TRANSPORT_BUSY",
} as const;

const DEFAULT_MAX_LINE_LENGTH = 64 * 1024;
const READ_CHUNK = 16 * 1024;

/** Connects and completes the TLS handshake, so certificate problems surface here. */
export async function connectTls(options: TlsOptions): Promise<LineTransport> {
  if (!(options.timeoutMs > 0) || !Number.isInteger(options.port)) {
    throw new InternalError(
      `invalid TLS options: port ${options.port}, timeout ${options.timeoutMs}`,
      { code: TlsCode.badOptions },
    );
  }
  const target = formatTarget(options.host, options.port);
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
  }, options.timeoutMs);

  try {
    tcp = await Deno.connect({ hostname: options.host, port: options.port, signal: abort.signal });
    step = "TLS handshake";
    tls = await Deno.startTls(tcp, { hostname: options.host, caCerts: options.caCerts });
    await tls.handshake();
    if (timedOut) throw new Error("timed out");
  } catch (error) {
    closeQuietly(tls ?? tcp);
    if (timedOut) throw timeoutError(step, target, options.timeoutMs, error);
    throw connectError(error, step, options.host, target);
  } finally {
    clearTimeout(timer);
  }
  return new TlsLineTransport(
    tls,
    target,
    options.timeoutMs,
    options.maxLineLength ?? DEFAULT_MAX_LINE_LENGTH,
  );
}

class TlsLineTransport implements LineTransport {
  readonly #conn: Deno.TlsConn;
  readonly #target: string;
  readonly #timeoutMs: number;
  readonly #lines: LineBuffer;
  readonly #chunk = new Uint8Array(READ_CHUNK);
  readonly #encoder = new TextEncoder();
  #closed = false;
  /** Why the connection ended, for the error of any later call. */
  #endReason = "the connection was closed";
  #busy = false;

  constructor(conn: Deno.TlsConn, target: string, timeoutMs: number, maxLineLength: number) {
    this.#conn = conn;
    this.#target = target;
    this.#timeoutMs = timeoutMs;
    this.#lines = new LineBuffer(maxLineLength);
  }

  async readLine(): Promise<string> {
    // Lines that arrived before the server closed are still delivered.
    const ready = this.#nextBufferedLine();
    if (ready !== null) return ready;
    return await this.#bounded("waiting for a reply", async () => {
      while (true) {
        const n = await this.#conn.read(this.#chunk);
        if (n === null) {
          const partial = this.#lines.pending > 0
            ? ` (after ${this.#lines.pending} bytes of an unfinished line)`
            : "";
          this.#end(`the server closed the connection${partial}`);
          throw this.#closedError("waiting for a reply");
        }
        this.#lines.push(this.#chunk.subarray(0, n));
        const line = this.#nextBufferedLine();
        if (line !== null) return line;
      }
    });
  }

  async writeLine(line: string): Promise<void> {
    if (/[\r\n]/.test(line)) {
      // A CR or LF would let one "line" smuggle in a second command.
      throw new InternalError("refusing to send a line that contains CR or LF", {
        code: TlsCode.badLine,
      });
    }
    const bytes = this.#encoder.encode(`${line}\r\n`);
    await this.#bounded("sending", async () => {
      for (let sent = 0; sent < bytes.length;) {
        sent += await this.#conn.write(bytes.subarray(sent));
      }
    });
  }

  close(): void {
    this.#end("the connection was closed");
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
        { code: TlsCode.tooLong, cause: error },
      );
    }
  }

  /**
   * Runs one read or write under the timeout. On timeout the connection is
   * closed, which ends the pending operation (Deno rejects it as Interrupted).
   */
  async #bounded<T>(what: string, work: () => Promise<T>): Promise<T> {
    if (this.#closed) throw this.#closedError(what);
    if (this.#busy) {
      throw new InternalError("readLine/writeLine called while another is pending", {
        code: TlsCode.busy,
      });
    }
    this.#busy = true;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      this.#end(`no answer within ${seconds(this.#timeoutMs)}`);
    }, this.#timeoutMs);
    try {
      const result = await work();
      if (timedOut) throw new Error("timed out");
      return result;
    } catch (error) {
      if (timedOut) throw timeoutError(what, this.#target, this.#timeoutMs, error);
      if (error instanceof ToolError) throw error;
      if (error instanceof Deno.errors.InvalidData) {
        this.#end("TLS error");
        throw new ConnectionError(
          `TLS error from ${this.#target} while ${what}: ${messageOf(error)}`,
          {
            code: TlsCode.tls,
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

  #closedError(what: string, cause?: unknown): ConnectionError {
    return new ConnectionError(
      `connection to ${this.#target} lost while ${what}: ${this.#endReason}`,
      {
        code: TlsCode.closed,
        cause,
      },
    );
  }
}

function timeoutError(step: string, target: string, timeoutMs: number, cause: unknown) {
  return new ConnectionError(`no answer from ${target} within ${seconds(timeoutMs)} (${step})`, {
    code: TlsCode.timeout,
    cause,
  });
}

/**
 * Maps what Deno 2.9 throws while connecting. Deno has no error class for TLS
 * certificate problems: rustls' reason is only in the message of an
 * `InvalidData` error ("invalid peer certificate: UnknownIssuer", "...:
 * certificate not valid for name ...", "...: Other(OtherError(CaUsedAsEndEntity))").
 */
export function connectError(
  error: unknown,
  step: string,
  host: string,
  target: string,
): ConnectionError {
  const message = messageOf(error);
  if (error instanceof Deno.errors.ConnectionRefused) {
    return new ConnectionError(`connection to ${target} refused: nothing listens there`, {
      code: TlsCode.refused,
      cause: error,
      hint: "Check host and port (IMAP 993, POP3 995) and any firewall in between.",
    });
  }
  if (
    /lookup address information|name or service not known|name resolution|nodename nor servname|no such host/i
      .test(message)
  ) {
    return new ConnectionError(`cannot resolve host name ${host}: ${message}`, {
      code: TlsCode.dns,
      cause: error,
      hint: "Check the host name and the DNS settings of this machine.",
    });
  }
  if (/NotValidForName|not valid for name/i.test(message)) {
    return new ConnectionError(
      `TLS certificate of ${target} is not valid for the name ${host}: ${message}`,
      { code: TlsCode.hostname, cause: error, hint: "Connect using a name the certificate lists." },
    );
  }
  if (/UnknownIssuer|CaUsedAsEndEntity|self[- ]signed/i.test(message)) {
    return new ConnectionError(`TLS certificate of ${target} is not trusted: ${message}`, {
      code: TlsCode.untrusted,
      cause: error,
      hint: "If this server is yours, trust its CA certificate; otherwise something intercepts " +
        "the connection.",
    });
  }
  if (step === "TLS handshake") {
    return new ConnectionError(`TLS handshake with ${target} failed: ${message}`, {
      code: TlsCode.tls,
      cause: error,
      hint: "Check that the port speaks TLS from the start (IMAP 993, POP3 995).",
    });
  }
  return new ConnectionError(`cannot connect to ${target}: ${message}`, {
    code: TlsCode.failed,
    cause: error,
  });
}

function formatTarget(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))} s`;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function closeQuietly(conn: Deno.Conn | undefined): void {
  try {
    conn?.close();
  } catch {
    // already closed
  }
}
