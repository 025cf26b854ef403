/**
 * A transport for fuzzing sessions: the "server" sends a fixed list of lines, whatever the
 * client writes, and then ends the connection the way the input says. Unlike the scripted
 * transport of the unit tests it never judges what the client sends, only the rules every
 * session must keep: no CR/LF inside a line, no endless reading after the end, a bounded
 * number of writes, STARTTLS only once and only on a plain connection. Broken rules are
 * collected in `violations` (a session may swallow errors, e.g. while logging out).
 */

import { ConnectionError } from "../../src/errors.ts";
import type { StartTlsOptions, StartTlsTransport } from "../../src/mail/tls_transport.ts";

/** How the server ends: it closes, a read times out, or the TLS handshake fails. */
export type FuzzEnd = "closed" | "timeout";

export interface FuzzTransportOptions {
  /** TLS is up from the start (implicit TLS). */
  secure?: boolean;
  /** `startTls()` fails as a bad certificate would. */
  startTlsFails?: boolean;
  end?: FuzzEnd;
  /** More writes than this is a session that talks without listening. */
  maxWrites?: number;
}

/** Reads allowed after the last line: the session may try once, a loop would try forever. */
const READS_AFTER_END = 3;

export class FuzzTransport implements StartTlsTransport {
  readonly sent: string[] = [];
  readonly sentInClear: string[] = [];
  readonly violations: string[] = [];
  reads = 0;
  closeCount = 0;
  #secure: boolean;
  readonly #lines: readonly string[];
  readonly #options: FuzzTransportOptions;

  constructor(lines: readonly string[], options: FuzzTransportOptions = {}) {
    this.#lines = lines;
    this.#options = options;
    this.#secure = options.secure ?? false;
  }

  get secure(): boolean {
    return this.#secure;
  }

  readLine(): Promise<string> {
    const index = this.reads++;
    if (index < this.#lines.length) return Promise.resolve(this.#lines[index]);
    if (index >= this.#lines.length + READS_AFTER_END) {
      this.#violate("kept reading after the connection ended");
    }
    return Promise.reject(this.#endError());
  }

  writeLine(line: string): Promise<void> {
    this.sent.push(line);
    if (!this.#secure) this.sentInClear.push(line);
    if (/[\r\n]/.test(line)) this.#violate(`sent a line with CR or LF: ${JSON.stringify(line)}`);
    if (this.sent.length > (this.#options.maxWrites ?? 1000)) {
      this.#violate(`sent more than ${this.#options.maxWrites ?? 1000} lines`);
      return Promise.reject(this.#endError());
    }
    if (this.reads > this.#lines.length) return Promise.reject(this.#endError());
    return Promise.resolve();
  }

  startTls(_options: StartTlsOptions): Promise<void> {
    if (this.#secure) this.#violate("started TLS on a connection that is already secure");
    if (this.#options.startTlsFails) {
      return Promise.reject(
        new ConnectionError("TLS handshake failed (fuzz)", { code: "TLS_UNTRUSTED" }),
      );
    }
    this.#secure = true;
    return Promise.resolve();
  }

  close(): void {
    this.closeCount++;
  }

  #endError(): ConnectionError {
    return this.#options.end === "timeout"
      ? new ConnectionError("no reply within 1 s (fuzz)", { code: "TIMEOUT" })
      : new ConnectionError("connection closed by the server (fuzz)", {
        code: "CONNECTION_CLOSED",
      });
  }

  #violate(problem: string): void {
    // One entry per kind of problem is enough; a loop would otherwise fill memory.
    if (!this.violations.includes(problem) && this.violations.length < 10) {
      this.violations.push(problem);
    }
  }
}
