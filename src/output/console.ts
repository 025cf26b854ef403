/**
 * The only module that writes to the console. Reporters receive events while
 * the run goes on (progress must appear as it happens, as in the original)
 * and render the final report. Every text that may carry a secret passes
 * through `Redactor` first.
 */
import type { OutputFormat } from "../cli/options.ts";
import type { Direction, TranscriptLine } from "../mail/transport.ts";
import type { MailboxResult, Report } from "./report.ts";
import type { CheckResult } from "../diagnose/checklist.ts";
import { printable } from "../text.ts";
import { Redactor } from "../redact.ts";
import { type Lang, type MessageKey, MESSAGES } from "../diagnose/messages.ts";
import type { Step } from "../diagnose/advice.ts";
import { consoleSink, type Sink } from "./sink.ts";

export { printable };
export type { Sink };

export interface ReporterOptions {
  format: OutputFormat;
  verbose: boolean;
  /** Language of labels, advice and checklist (server lines are never translated). */
  lang?: Lang;
  /** Whether the terminal shows UTF-8 (checkmarks); default: detected from the locale. */
  utf8?: boolean;
  sink?: Sink;
  /** Whether stderr is a terminal (waiting indicator); default: detected for the real console. */
  terminal?: boolean;
}

/** Live events of a run, rendered per output format. */
export class Reporter {
  readonly format: OutputFormat;
  readonly verbose: boolean;
  readonly lang: Lang;
  readonly utf8: boolean;
  /** What was shown so far, for the report (copies: the report does not share the reporter's state). */
  readonly #transcript: TranscriptLine[] = [];
  readonly #warnings: string[] = [];
  /** Secrets that are never printed (client secret, certificate password). */
  readonly always = new Redactor();
  /** Secrets printed only by -Verbose and the Token/Sasl formats (token, SASL string). */
  readonly credentials = new Redactor();
  #sink: Sink;
  #terminal: boolean;
  #spinner: ReturnType<typeof setInterval> | undefined;

  constructor(options: ReporterOptions) {
    this.format = options.format;
    this.verbose = options.verbose;
    this.lang = options.lang ?? "en";
    this.utf8 = options.utf8 ?? localeIsUtf8((n) => Deno.env.get(n));
    this.#sink = options.sink ?? consoleSink;
    this.#terminal = options.terminal ?? (options.sink === undefined && Deno.stderr.isTerminal());
  }

  /** The transcript and warnings so far, redacted, as the report holds them. */
  recorded(): { transcript: TranscriptLine[]; warnings: string[] } {
    return { transcript: [...this.#transcript], warnings: [...this.#warnings] };
  }

  /** Registers the SASL string: transcript lines show a placeholder instead. */
  setSasl(sasl: string): void {
    this.credentials.add(sasl, "<XOAUTH2 string>");
  }

  #safe(text: string): string {
    return this.credentials.redact(this.always.redact(text));
  }

  /** A step starts ("Connect to ..."): stderr in Text format, like Write-Host. */
  progress(message: string): void {
    if (this.format === "Text") this.#sink.err(`${this.#safe(message)}\n`, "info");
  }

  /** -Verbose output on stderr in every format; may show the token and SASL string. */
  verboseLine(message: string): void {
    if (this.verbose) {
      this.#sink.err(`VERBOSE: ${printable(this.always.redact(message))}\n`, "verbose");
    }
  }

  #label(key: MessageKey): string {
    return MESSAGES[this.lang][key]({});
  }

  #stepName(step: Step): string {
    return MESSAGES[this.lang][`step.${step}`]({});
  }

  /** A problem found before connecting, with its setup step and fix (Text: stderr). */
  advisoryWarning(advice: { step: Step; cause: string; fix: string }): void {
    this.#warnings.push(advice.cause);
    if (this.format !== "Text") return;
    this.#sink.err(
      `${this.#label("label.warning")} (${this.#stepName(advice.step)}): ${advice.cause}\n` +
        `${this.#label("label.fix")}: ${advice.fix}\n`,
      "warning",
    );
  }

  warning(message: string): void {
    const safe = this.#safe(message);
    this.#warnings.push(safe);
    if (this.format !== "Json") this.#sink.err(`WARNING: ${safe}\n`, "warning");
  }

  /** A question to the person at the keyboard: stderr in every format. */
  prompt(message: string): void {
    this.#stopSpinner();
    this.#sink.err(`${message}\n`, "info");
  }

  /** Device-code instructions: stderr in every format (the user must see them). */
  deviceCode(info: { verificationUri: string; userCode: string; message: string }): void {
    this.prompt(
      info.message || `Open ${info.verificationUri} and enter the code ${info.userCode}.`,
    );
  }

  /** A waiting indicator while a person signs in; drawn only when stderr is a terminal. */
  waiting(active: boolean): void {
    if (!active) return this.#stopSpinner();
    if (this.#spinner !== undefined || !this.#terminal) return;
    let n = 0;
    this.#spinner = setInterval(() => {
      this.#sink.err(`\r${"|/-\\"[n++ % 4]} waiting for the sign-in ...`, "control");
    }, 250);
  }

  #stopSpinner(): void {
    if (this.#spinner === undefined) return;
    clearInterval(this.#spinner);
    this.#spinner = undefined;
    this.#sink.err("\r\x1b[K", "control");
  }

  /** The many-mailbox table: mailbox, protocol, result, time, hint. */
  #resultsTable(report: Report, results: MailboxResult[]): string {
    const rows = results.map((r) => [
      r.mailbox,
      report.protocol ?? "",
      r.ok ? "OK" : `EXIT ${r.exitCode} ${r.error?.code ?? ""}`.trim(),
      `${r.ms} ms`,
      r.error?.advice
        ? `(${this.#stepName(r.error.advice.step)}) ${r.error.advice.cause}`
        : printable(r.error?.message ?? ""),
    ]);
    const header = ["MAILBOX", "PROTOCOL", "RESULT", "TIME", "HINT"];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
    return [header, ...rows].map((cells) =>
      cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join("  ").trimEnd()
    ).join("\n") + "\n";
  }

  #checklistText(checklist: CheckResult[]): string {
    const mark = (ok: boolean | null) =>
      this.utf8
        ? (ok === null ? "-" : ok ? "\u2713" : "\u2717")
        : (ok === null ? "[--]" : ok ? "[OK]" : "[FAIL]");
    // Findings under their check, each with its setup step: `!` warns, `i` informs.
    const note = (n: CheckResult["notes"][number]) =>
      `\n  ${n.warning ? "!" : "i"} ${this.#stepName(n.step)}: ${printable(n.text)}` +
      (n.code ? ` [${n.code}]` : "");
    return checklist.map((c) =>
      `${mark(c.ok)} ${c.title}${c.ok === null ? ` (${this.#label("check.skipped")})` : ""}` +
      (c.ok === false && c.detail ? `: ${printable(c.detail)}` : "") +
      (c.notes ?? []).map(note).join("")
    ).join("\n") + "\n";
  }

  /** A protocol line; server lines go to stdout in Text format, as in the original. */
  line(dir: Direction, raw: string): void {
    const line = this.#safe(raw);
    this.#transcript.push({ dir, line });
    if (dir === "C") this.verboseLine(`Executing command -- ${raw}`);
    else if (this.format === "Text") this.#sink.out(`${printable(line)}\n`);
  }

  /** Renders the final result. */
  finish(report: Report, payload: { token?: string; sasl?: string }): void {
    const error = report.error
      ? { ...report.error, message: this.#safe(report.error.message) }
      : null;
    const safeReport: Report = { ...report, error };
    switch (this.format) {
      case "Json":
        this.#sink.out(`${JSON.stringify(safeReport, null, 2)}\n`);
        return;
      case "Token":
      case "Sasl": {
        const value = this.format === "Token" ? payload.token : payload.sasl;
        if (report.ok && value) this.#sink.out(`${value}\n`);
        break;
      }
      case "Text":
        if (report.results && report.summary) {
          this.#sink.out(this.#resultsTable(report, report.results));
          const sum = report.summary;
          this.#sink.err(
            `${sum.failed === 0 ? "OK" : "FAILED"}: ${sum.ok} of ${sum.total} mailboxes work` +
              (sum.failed ? `; worst exit code ${sum.worstExitCode}.` : ".") + "\n",
            sum.failed === 0 ? "info" : "error",
          );
        } else if (report.checklist) this.#sink.out(this.#checklistText(report.checklist));
        else if (report.ok) this.#sink.err(`${summary(report)}\n`, "info");
        break;
    }
    if (error) {
      this.#sink.err(
        `ERROR: ${printable(error.message)}${error.code ? ` [${error.code}]` : ""}\n`,
        "error",
      );
      // Advice is built by us from the user's own non-secret values: printed as it is.
      if (error.advice) {
        this.#sink.err(
          `${this.#label("label.hint")} (${this.#stepName(error.advice.step)}): ` +
            `${error.advice.cause}\n${this.#label("label.fix")}: ${error.advice.fix}\n`,
          "error",
        );
      } else if (error.hint) {
        this.#sink.err(`${this.#label("label.hint")}: ${error.hint}\n`, "error");
      }
    }
  }
}

/** True when the locale says UTF-8 (Windows consoles are taken to be UTF-8 capable). */
export function localeIsUtf8(env: (name: string) => string | undefined): boolean {
  if (Deno.build.os === "windows") return true;
  const locale = env("LC_ALL") || env("LC_CTYPE") || env("LANG") || "";
  return /utf-?8/i.test(locale);
}

function summary(report: Report): string {
  if (!report.server) return `OK: access token obtained for ${report.mailbox ?? "the app"}.`;
  const what = report.folders
    ? `${report.folders.length} folder${report.folders.length === 1 ? "" : "s"}`
    : report.messages
    ? `${report.messages.count} message${report.messages.count === 1 ? "" : "s"}, ` +
      `${report.messages.octets} octets`
    : "";
  return `OK: ${report.protocol} login to ${report.server} as ${report.mailbox} works` +
    (what ? ` (${what}).` : ".");
}
