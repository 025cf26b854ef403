/**
 * Many mailboxes with one token: each mailbox gets its own session, at most
 * -ThrottleLimit at once. A mailbox that fails does not stop the others; the
 * run's exit code is the worst (highest) of the results.
 */
import type { AppOptions } from "../cli/options.ts";
import { ExitCode, toToolError } from "../errors.ts";
import type { Lang } from "../diagnose/messages.ts";
import { buildXoauth2 } from "../sasl/xoauth2.ts";
import { mailSession } from "./session.ts";
import { adviceContext, errorReport } from "./error_report.ts";
import type { AdviceContext } from "../diagnose/advice.ts";
import { Reporter } from "../output/console.ts";
import type { MailboxResult, Report } from "../output/report.ts";

const quiet = { out() {}, err() {} };

async function checkOne(
  options: AppOptions,
  mailbox: string,
  token: string,
  lang: Lang,
  shared: AdviceContext,
): Promise<MailboxResult> {
  const started = performance.now();
  // A private, silent reporter: its transcript (SASL redacted) becomes this mailbox's.
  const collector = new Reporter({ format: "Json", verbose: false, sink: quiet, lang });
  const result: MailboxResult = {
    mailbox,
    ok: false,
    exitCode: ExitCode.internal,
    ms: 0,
    transcript: [],
    error: null,
  };
  try {
    const sasl = buildXoauth2(mailbox, token);
    collector.credentials.add(token, "<access token>");
    collector.setSasl(sasl);
    Object.assign(result, await mailSession(options.mail, { mailbox, sasl, token }, collector));
    result.ok = true;
    result.exitCode = ExitCode.ok;
  } catch (thrown) {
    const error = toToolError(thrown);
    result.exitCode = error.exitCode;
    const context = {
      ...adviceContext(options, mailbox),
      servicePrincipalId: shared.servicePrincipalId,
    };
    const reported = errorReport(error, context, lang);
    result.error = { ...reported, message: collector.credentials.redact(reported.message) };
  }
  result.transcript = collector.recorded().transcript;
  result.ms = Math.round(performance.now() - started);
  return result;
}

export async function checkMailboxes(
  options: AppOptions,
  token: string,
  reporter: Reporter,
  lang: Lang,
  /** What the token told (the service principal's object ID) for each mailbox's advice. */
  shared: AdviceContext = {},
): Promise<{ results: MailboxResult[]; summary: NonNullable<Report["summary"]> }> {
  const { mailboxes, mail, throttleLimit } = options;
  reporter.progress(
    `Check ${mailboxes.length} mailboxes over ${mail.protocol} at ` +
      `${mail.server}:${mail.port}, ${throttleLimit} at a time.`,
  );
  const results: MailboxResult[] = new Array(mailboxes.length);
  let next = 0;
  const worker = async () => {
    while (next < mailboxes.length) {
      const index = next++;
      results[index] = await checkOne(options, mailboxes[index], token, lang, shared);
    }
  };
  const workers = Math.min(throttleLimit, mailboxes.length);
  await Promise.all(Array.from({ length: workers }, worker));
  const failed = results.filter((r) => !r.ok).length;
  return {
    results,
    summary: {
      total: results.length,
      ok: results.length - failed,
      failed,
      worstExitCode: Math.max(...results.map((r) => r.exitCode)),
    },
  };
}
