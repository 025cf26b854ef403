/**
 * Many mailboxes with one token: each mailbox gets its own session, at most
 * -ThrottleLimit at once. A mailbox that fails does not stop the others; the
 * run's exit code is the worst (highest) of the results.
 */
import type { Options } from "./cli/options.ts";
import { ExitCode, toToolError } from "./errors.ts";
import { advise } from "./diagnose/advice.ts";
import type { Lang } from "./diagnose/messages.ts";
import { buildXoauth2 } from "./sasl/xoauth2.ts";
import { mailSession } from "./session.ts";
import { Reporter } from "./output/console.ts";
import type { MailboxResult, Report } from "./output/report.ts";

const quiet = { out() {}, err() {} };

async function checkOne(
  options: Options,
  mailbox: string,
  token: string,
  lang: Lang,
): Promise<MailboxResult> {
  const started = performance.now();
  // A private, silent reporter: its transcript (SASL redacted) becomes this mailbox's.
  const collector = new Reporter({ format: "Json", verbose: false, sink: quiet, lang });
  const sasl = buildXoauth2(mailbox, token);
  collector.credentials.add(token, "<access token>");
  collector.setSasl(sasl);
  const result: MailboxResult = {
    mailbox,
    ok: false,
    exitCode: ExitCode.internal,
    ms: 0,
    transcript: collector.transcript,
    error: null,
  };
  try {
    Object.assign(result, await mailSession({ ...options, mailbox }, collector, sasl));
    result.ok = true;
    result.exitCode = ExitCode.ok;
  } catch (thrown) {
    const error = toToolError(thrown);
    const advice = advise(error.code, {
      mailbox,
      clientId: options.clientId,
      tenantId: options.tenantId,
      protocol: options.protocol,
      server: options.server,
      port: options.port,
    }, lang);
    result.exitCode = error.exitCode;
    result.error = {
      kind: error.kind,
      message: collector.credentials.redact(error.message),
      code: error.code ?? null,
      hint: advice ? `${advice.cause} ${advice.fix}` : error.hint ?? null,
      advice: advice ? { step: advice.step, cause: advice.cause, fix: advice.fix } : null,
    };
  }
  result.ms = Math.round(performance.now() - started);
  return result;
}

export async function checkMailboxes(
  options: Options,
  token: string,
  reporter: Reporter,
  lang: Lang,
): Promise<{ results: MailboxResult[]; summary: NonNullable<Report["summary"]> }> {
  reporter.progress(
    `Check ${options.mailboxes.length} mailboxes over ${options.protocol} at ` +
      `${options.server}:${options.port}, ${options.throttleLimit} at a time.`,
  );
  const results: MailboxResult[] = new Array(options.mailboxes.length);
  let next = 0;
  const worker = async () => {
    while (next < options.mailboxes.length) {
      const index = next++;
      results[index] = await checkOne(options, options.mailboxes[index], token, lang);
    }
  };
  const workers = Math.min(options.throttleLimit, options.mailboxes.length);
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
