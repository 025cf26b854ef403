/**
 * A scripted `LineTransport` (and `StartTlsTransport`) for session unit tests.
 * The script reads like a transcript: `"S: * OK ready"` is a line the server
 * sends, `"C: A01 LOGOUT"` a line the client must send next (`"C:"` alone is
 * an empty line; `{ C: /regexp/ }` a line the client sends that matches, for
 * dates and random IDs). Objects make the server close the connection
 * (`{ eof: true }`), fail a read (`{ error }`), or mark where the client must
 * call `startTls()` (`{ startTls: true }`; with `error` the handshake fails).
 * The transport starts plain unless `{ secure: true }` is given and records
 * the lines the client sent before TLS was up (`sentInClear`). Anything the
 * client does out of turn is recorded and the call rejects with a
 * `ScriptMismatch`; `assertDone()` throws the first mismatch even when the
 * session swallowed it (as during LOGOUT), and complains about unused steps.
 */

import { ConnectionError } from "../../src/errors.ts";
import type { StartTlsOptions, StartTlsTransport } from "../../src/mail/tls_transport.ts";
import type { TranscriptLine } from "../../src/mail/transport.ts";

export type ScriptStep =
  | string
  | { eof: true }
  | { error: Error }
  | { startTls: true; error?: Error }
  | { C: RegExp };

/** A client action the script did not expect; never a `ToolError`, so tests cannot mistake it. */
export class ScriptMismatch extends Error {
  override readonly name = "ScriptMismatch";
}

type Step =
  | { kind: "S" | "C"; line: string; pattern?: RegExp }
  | { kind: "eof" }
  | { kind: "error"; error: Error }
  | { kind: "startTls"; error?: Error };

function parseStep(step: ScriptStep, index: number): Step {
  if (typeof step !== "string") {
    if ("startTls" in step) return { kind: "startTls", error: step.error };
    if ("C" in step) return { kind: "C", line: "", pattern: step.C };
    return "eof" in step ? { kind: "eof" } : { kind: "error", error: step.error };
  }
  const match = /^([CS]):(?: (.*))?$/s.exec(step);
  if (!match) throw new Error(`script step ${index + 1} must start with "C: " or "S: ": ${step}`);
  return { kind: match[1] as "C" | "S", line: match[2] ?? "" };
}

function describe(step: Step | undefined): string {
  if (step === undefined) return "the end of the script";
  if (step.kind === "eof") return "the server closing the connection";
  if (step.kind === "error") return `a read error (${step.error.message})`;
  if (step.kind === "startTls") return "the client to start TLS";
  if (step.pattern) return `the client to send a line matching ${step.pattern}`;
  return step.kind === "C"
    ? `the client to send ${JSON.stringify(step.line)}`
    : `the client to read ${JSON.stringify(step.line)}`;
}

export class ScriptedTransport implements StartTlsTransport {
  /** Every line both sides sent, in order. */
  readonly transcript: TranscriptLine[] = [];
  /** Lines the client sent. */
  readonly sent: string[] = [];
  /** Lines the client sent while the transport was not secure. */
  readonly sentInClear: string[] = [];
  /** The options of every `startTls()` call. */
  readonly startTlsCalls: StartTlsOptions[] = [];
  closeCount = 0;
  /** Goodbye lines (see `goodbye`) the client sent after the script ended; not in `sent`. */
  readonly goodbyes: string[] = [];
  readonly #goodbye: RegExp | undefined;
  #secure: boolean;
  readonly #steps: Step[];
  #next = 0;
  readonly #mismatches: ScriptMismatch[] = [];

  /**
   * `goodbye`: a line the client may send once the script has ended (LOGOUT or
   * QUIT after a refused login); it is recorded in `goodbyes` and the server
   * then closes the connection.
   */
  constructor(script: ScriptStep[], options: { secure?: boolean; goodbye?: RegExp } = {}) {
    this.#steps = script.map(parseStep);
    this.#secure = options.secure ?? false;
    this.#goodbye = options.goodbye;
  }

  get secure(): boolean {
    return this.#secure;
  }

  startTls(options: StartTlsOptions): Promise<void> {
    this.startTlsCalls.push(options);
    const step = this.#steps[this.#next];
    if (step?.kind !== "startTls") return Promise.reject(this.#mismatch("started TLS"));
    this.#next++;
    if (step.error) return Promise.reject(step.error);
    this.#secure = true;
    return Promise.resolve();
  }

  readLine(): Promise<string> {
    const step = this.#steps[this.#next];
    if (step === undefined || step.kind === "eof") {
      if (step) this.#next++;
      return Promise.reject(
        new ConnectionError("connection to scripted server lost while waiting for a reply", {
          code: "CONNECTION_CLOSED",
        }),
      );
    }
    if (step.kind === "error") {
      this.#next++;
      return Promise.reject(step.error);
    }
    if (step.kind === "C" || step.kind === "startTls") {
      return Promise.reject(this.#mismatch("read a line"));
    }
    this.#next++;
    this.transcript.push({ dir: "S", line: step.line });
    return Promise.resolve(step.line);
  }

  writeLine(line: string): Promise<void> {
    if (this.#next >= this.#steps.length && this.#goodbye?.test(line)) {
      this.goodbyes.push(line);
      return Promise.resolve();
    }
    this.sent.push(line);
    if (!this.#secure) this.sentInClear.push(line);
    this.transcript.push({ dir: "C", line });
    if (/[\r\n]/.test(line)) {
      return Promise.reject(this.#mismatch(`sent a line with CR or LF ${JSON.stringify(line)}`));
    }
    const step = this.#steps[this.#next];
    if (step?.kind !== "C" || !(step.pattern?.test(line) ?? step.line === line)) {
      return Promise.reject(this.#mismatch(`sent ${JSON.stringify(line)}`));
    }
    this.#next++;
    return Promise.resolve();
  }

  close(): void {
    this.closeCount++;
  }

  /** Throws the first mismatch, or complains if steps are left over. */
  assertDone(): void {
    if (this.#mismatches.length > 0) throw this.#mismatches[0];
    if (this.#next < this.#steps.length) {
      throw new ScriptMismatch(
        `script not finished: step ${this.#next + 1} expects ${describe(this.#steps[this.#next])}`,
      );
    }
  }

  #mismatch(action: string): ScriptMismatch {
    const error = new ScriptMismatch(
      `script step ${this.#next + 1}: the client ${action}, but the script expects ${
        describe(this.#steps[this.#next])
      }`,
    );
    this.#mismatches.push(error);
    return error;
  }
}
