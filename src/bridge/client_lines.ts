/**
 * The client's side of a bridge session before it becomes a byte relay: CRLF lines (a bare LF
 * is accepted too, as many small clients send it), a limit on line length, and an idle limit.
 * `readLine()` never throws: it returns null when the client went away, stayed silent too long,
 * or sent an overlong line, and `ended` says which.
 */
import { LineBuffer, LineTooLongError } from "../mail/lines.ts";
import type { BridgeConn } from "./conn.ts";

/** Sees each line read and each answer written (`-Verbose`'s command log, `command_log.ts`). */
export interface LineObserver {
  read(line: string): void;
  wrote(lines: readonly string[]): void;
}

export type ClientEnd = "closed" | "idle" | "line too long" | "error" | "TLS handshake failed";

export class ClientLines {
  #conn: BridgeConn;
  readonly #idleMs: number;
  readonly #lines: LineBuffer;
  readonly #chunk = new Uint8Array(4096);
  readonly #encoder = new TextEncoder();
  /** Bytes received and sent, for the session's log line. */
  bytesIn = 0;
  bytesOut = 0;
  ended: ClientEnd | undefined;
  /** Told of every line read and written (none by default). */
  observer: LineObserver | undefined;
  /** The last byte of the previous chunk (a CR there and an LF here are one line end). */
  #lastByte = 0;

  constructor(conn: BridgeConn, idleMs: number, maxLineLength = 1024) {
    this.#conn = conn;
    this.#idleMs = idleMs;
    this.#lines = new LineBuffer(maxLineLength);
  }

  async readLine(): Promise<string | null> {
    while (true) {
      let line: string | null;
      try {
        line = this.#lines.shift();
      } catch (error) {
        if (!(error instanceof LineTooLongError)) throw error;
        this.ended = "line too long";
        return null;
      }
      if (line !== null) {
        this.observer?.read(line);
        return line;
      }
      if (this.ended) return null;
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        this.#close();
      }, this.#idleMs);
      try {
        const n = await this.#conn.read(this.#chunk);
        if (n === null) {
          this.ended = "closed";
          return null;
        }
        this.bytesIn += n;
        // A bare LF ends a line too: make it CRLF for the buffer.
        const chunk = this.#chunk.subarray(0, n);
        this.#lines.push(lfToCrlf(chunk, this.#lastByte));
        this.#lastByte = chunk[n - 1];
      } catch {
        this.ended = timedOut ? "idle" : "error";
        return null;
      } finally {
        clearTimeout(timer);
      }
    }
  }

  /** Sends lines, each with CRLF; false when the client is gone. */
  async write(...lines: string[]): Promise<boolean> {
    const bytes = this.#encoder.encode(lines.map((l) => `${l}\r\n`).join(""));
    try {
      for (let sent = 0; sent < bytes.length;) sent += await this.#conn.write(bytes.subarray(sent));
      this.bytesOut += bytes.length;
      this.observer?.wrote(lines);
      return true;
    } catch {
      this.ended ??= "error";
      return false;
    }
  }

  /**
   * Goes on over `conn`: the same client after STLS/STARTTLS. Drops whatever was read but not
   * yet handled: commands pipelined after STARTTLS came in plain text, and must never be taken
   * as sent over TLS (STARTTLS command injection, CVE-2011-0411). Returns how many bytes.
   */
  switchTo(conn: BridgeConn): number {
    this.#conn = conn;
    this.#lastByte = 0;
    return this.#lines.takeRest().length;
  }

  /** What the client sent after its last complete line (pipelined commands for the relay). */
  takeRest(): Uint8Array {
    return this.#lines.takeRest();
  }

  #close(): void {
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
  }
}

/** Inserts CR before every LF that has none (CR LF stays as it is). */
export function lfToCrlf(bytes: Uint8Array, before = 0): Uint8Array {
  const bareAt = (i: number) => bytes[i] === 10 && (i === 0 ? before : bytes[i - 1]) !== 13;
  let bare = 0;
  for (let i = 0; i < bytes.length; i++) if (bareAt(i)) bare++;
  if (bare === 0) return bytes;
  const out = new Uint8Array(bytes.length + bare);
  let j = 0;
  for (let i = 0; i < bytes.length; i++) {
    if (bareAt(i)) out[j++] = 13;
    out[j++] = bytes[i];
  }
  return out;
}
