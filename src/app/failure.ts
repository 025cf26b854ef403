/**
 * A failure outside a run (bad parameters, a closed standard output, the bridge's start-up),
 * reported as a run reports its own: message, code and advice, in the chosen format. Loaded
 * only when there is one: the reporter and the texts are not needed to print a cached token.
 */
import type { OutputFormat } from "../cli/options.ts";
import type { ToolError } from "../errors.ts";
import type { Lang } from "../diagnose/language.ts";
import { Reporter } from "../output/console.ts";
import { failedReport } from "../output/report.ts";
import type { Sink } from "../output/sink.ts";
import { errorReport } from "./error_report.ts";

export function reportFailure(
  error: ToolError,
  how: { format: OutputFormat; lang: Lang; sink?: Sink },
): void {
  const reporter = new Reporter({
    format: how.format,
    verbose: false,
    lang: how.lang,
    sink: how.sink,
  });
  reporter.finish(failedReport(errorReport(error, {}, how.lang), error.exitCode), {});
}
