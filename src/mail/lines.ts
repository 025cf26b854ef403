/**
 * Everything about lines, on both sides of the `LineTransport` contract:
 * - `LineBuffer` frames the bytes a socket delivers into CRLF-terminated lines
 *   (used by the TLS transport);
 * - `Wire` is how a session sends and receives lines: it reports each one to
 *   `onLine` and quotes server lines for error messages without the secret.
 */

import type { LineTransport } from "./transport.ts";
import type { SessionOptions } from "./types.ts";
import { type Redactor, redactorOf } from "../redact.ts";
import { fromBase64 } from "../base64.ts";

/** Thrown by `LineBuffer.shift()` when a line is longer than the limit. */
export class LineTooLongError extends Error {
  override readonly name = "LineTooLongError";
  constructor(readonly limit: number) {
    super(`line longer than ${limit} bytes`);
  }
}

const CR = 13;
const LF = 10;

/**
 * Collects bytes and hands out complete lines. Only CRLF ends a line: Exchange
 * treats a bare LF as data, and so must we, or a server line could be split
 * in two and confuse the session. Lines are decoded as UTF-8 with invalid
 * bytes replaced (U+FFFD); NUL and other control characters are kept, because
 * sanitizing is the output layer's job and the transcript should be faithful.
 */
export class LineBuffer {
  // ignoreBOM: a leading EF BB BF is data here, not a byte-order mark to drop.
  static readonly #decoder = new TextDecoder("utf-8", { ignoreBOM: true });
  #data = new Uint8Array(4096);
  #start = 0;
  #end = 0;
  /** Where the CR search resumes, so a long line is not rescanned on every push. */
  #scan = 0;

  /** @param maxLineLength longest line accepted, in bytes, without its CRLF. */
  constructor(readonly maxLineLength: number) {}

  /** Number of bytes received but not yet returned as a line. */
  get pending(): number {
    return this.#end - this.#start;
  }

  /**
   * Removes and returns every byte not yet returned as a line (a copy): what a
   * relay must pass on when it stops reading lines and starts copying bytes.
   */
  takeRest(): Uint8Array {
    const rest = this.#data.slice(this.#start, this.#end);
    this.#start = this.#end = this.#scan = 0;
    return rest;
  }

  /** Appends bytes (copied, so the caller may reuse its read buffer). */
  push(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    const needed = this.pending + bytes.length;
    if (this.#end + bytes.length > this.#data.length) {
      // Compact first; grow only if the unread data itself no longer fits.
      if (needed > this.#data.length) {
        const grown = new Uint8Array(Math.max(needed, this.#data.length * 2));
        grown.set(this.#data.subarray(this.#start, this.#end), 0);
        this.#data = grown;
      } else {
        this.#data.copyWithin(0, this.#start, this.#end);
      }
      this.#scan -= this.#start;
      this.#end -= this.#start;
      this.#start = 0;
    }
    this.#data.set(bytes, this.#end);
    this.#end += bytes.length;
  }

  /**
   * Returns the next complete line without its CRLF, or null when no complete
   * line is buffered yet. Throws `LineTooLongError` as soon as the buffered
   * part of a line exceeds the limit, so memory stays bounded even if the
   * server never sends CRLF.
   */
  shift(): string | null {
    let i = this.#scan;
    while (true) {
      const cr = this.#data.subarray(0, this.#end).indexOf(CR, i);
      if (cr === -1 || cr + 1 >= this.#end) {
        // A trailing CR may still be followed by LF in the next chunk.
        this.#scan = cr === -1 ? this.#end : cr;
        const partial = (cr === -1 ? this.#end : cr) - this.#start;
        if (partial > this.maxLineLength) throw new LineTooLongError(this.maxLineLength);
        return null;
      }
      if (this.#data[cr + 1] === LF) {
        if (cr - this.#start > this.maxLineLength) {
          throw new LineTooLongError(this.maxLineLength);
        }
        const line = LineBuffer.#decoder.decode(this.#data.subarray(this.#start, cr));
        this.#start = cr + 2;
        this.#scan = this.#start;
        if (this.#start === this.#end) this.#start = this.#end = this.#scan = 0;
        return line;
      }
      i = cr + 1; // a CR not followed by LF is data
    }
  }
}

/** A session's view of the transport: sends and receives lines and reports each to `onLine`. */
export class Wire {
  readonly #sasl: Redactor;

  constructor(
    private readonly transport: LineTransport,
    private readonly options: SessionOptions,
  ) {
    this.#sasl = redactorOf([options.sasl]);
  }

  async send(line: string): Promise<void> {
    this.options.onLine?.("C", line);
    await this.transport.writeLine(line);
  }

  async receive(): Promise<string> {
    const line = await this.transport.readLine();
    this.options.onLine?.("S", line);
    return line;
  }

  /**
   * A server line as it may appear in an error message: without the SASL
   * string (a broken server could echo our command) and cut to a sane length.
   */
  quote(line: string): string {
    const clean = this.#sasl.redact(line);
    return clean.length > 500 ? `${clean.slice(0, 500)}...` : clean;
  }
}

/**
 * Turns the base64 JSON challenge a server sends after failed XOAUTH2
 * credentials (Dovecot: `{"status":"401","schemes":"bearer","scope":"..."}`)
 * into readable text. Returns undefined when it is not such a document. The
 * challenge comes from the server and never contains the token.
 */
export function describeXoauth2Challenge(challenge: string): string | undefined {
  const text = challenge.trim();
  if (text === "") return undefined;
  let json: unknown;
  try {
    const bytes = fromBase64(text);
    json = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return undefined;
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) return undefined;
  const fields = json as Record<string, unknown>;
  const parts: string[] = [];
  for (const key of ["status", "schemes", "scope"]) {
    const value = fields[key];
    if (typeof value === "string" || typeof value === "number") {
      parts.push(`${key} ${String(value).slice(0, 200)}`);
    }
  }
  return parts.length > 0 ? parts.join(", ") : undefined;
}
