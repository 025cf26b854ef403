/**
 * A scripted `LineTransport` for session unit tests. The script reads like a
 * transcript: `"S: * OK ready"` is a line the server sends, `"C: A01 LOGOUT"`
 * a line the client must send next (`"C:"` alone is an empty line). Objects
 * make the server close the connection (`{ eof: true }`) or fail a read
 * (`{ error }`). Anything the client does out of turn is recorded and the
 * call rejects with a `ScriptMismatch`; `assertDone()` throws the first
 * mismatch even when the session swallowed it (as during LOGOUT), and
 * complains about unused steps.
 */

import { ConnectionError } from "../../src/errors.ts";
import type { LineTransport, TranscriptLine } from "../../src/mail/transport.ts";

export type ScriptStep = string | { eof: true } | { error: Error };

/** A client action the script did not expect; never a `ToolError`, so tests cannot mistake it. */
export class ScriptMismatch extends Error {
  override readonly name = "ScriptMismatch";
}

type Step =
  | { kind: "S" | "C"; line: string }
  | { kind: "eof" }
  | { kind: "error"; error: Error };

function parseStep(step: ScriptStep, index: number): Step {
  if (typeof step !== "string") return "eof" in step ? { kind: "eof" } : { kind: "error", ...step };
  const match = /^([CS]):(?: (.*))?$/s.exec(step);
  if (!match) throw new Error(`script step ${index + 1} must start with "C: " or "S: ": ${step}`);
  return { kind: match[1] as "C" | "S", line: match[2] ?? "" };
}

function describe(step: Step | undefined): string {
  if (step === undefined) return "the end of the script";
  if (step.kind === "eof") return "the server closing the connection";
  if (step.kind === "error") return `a read error (${step.error.message})`;
  return step.kind === "C"
    ? `the client to send ${JSON.stringify(step.line)}`
    : `the client to read ${JSON.stringify(step.line)}`;
}

export class ScriptedTransport implements LineTransport {
  /** Every line both sides sent, in order. */
  readonly transcript: TranscriptLine[] = [];
  /** Lines the client sent. */
  readonly sent: string[] = [];
  closeCount = 0;
  readonly #steps: Step[];
  #next = 0;
  readonly #mismatches: ScriptMismatch[] = [];

  constructor(script: ScriptStep[]) {
    this.#steps = script.map(parseStep);
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
    if (step.kind === "C") return Promise.reject(this.#mismatch("read a line"));
    this.#next++;
    this.transcript.push({ dir: "S", line: step.line });
    return Promise.resolve(step.line);
  }

  writeLine(line: string): Promise<void> {
    this.sent.push(line);
    this.transcript.push({ dir: "C", line });
    if (/[\r\n]/.test(line)) {
      return Promise.reject(this.#mismatch(`sent a line with CR or LF ${JSON.stringify(line)}`));
    }
    const step = this.#steps[this.#next];
    if (step?.kind !== "C" || step.line !== line) {
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
