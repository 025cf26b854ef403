/**
 * One run of the tool: token -> claims check -> XOAUTH2 -> mail session.
 * Every phase is a check of the -Diagnose checklist. Returns a Report (never
 * throws for expected failures); main.ts renders it and exits with its code.
 */
import type { Options } from "./cli/options.ts";
import { ExitCode, TokenError, type ToolError, toToolError } from "./errors.ts";
import { acquireToken, type RunEnvironment, scopesFor } from "./token_flow.ts";
import { probeAuthority } from "./auth/probe.ts";
import { decodeClaims, summarizeClaims } from "./diagnose/claims.ts";
import { checkClaims } from "./diagnose/claims_check.ts";
import { type AdviceContext, advise } from "./diagnose/advice.ts";
import { Checklist } from "./diagnose/checklist.ts";
import type { Lang } from "./diagnose/messages.ts";
import { buildXoauth2 } from "./sasl/xoauth2.ts";
import { mailSession } from "./session.ts";
import { checkMailboxes } from "./many.ts";
import type { Reporter } from "./output/console.ts";
import type { Report } from "./output/report.ts";
import { VERSION } from "./version.ts";

export type { RunEnvironment } from "./token_flow.ts";

/** The XOAUTH2 user: target or shared mailbox, else the signed-in user (as the original). */
function mailboxFor(options: Options, username: string | undefined): string | undefined {
  return options.mailbox ?? (username || undefined);
}

export async function run(
  options: Options,
  reporter: Reporter,
  env: RunEnvironment,
  lang: Lang,
): Promise<{ report: Report; token?: string; sasl?: string }> {
  const connects = !options.noConnect &&
    (options.outputFormat === "Text" || options.outputFormat === "Json");
  const checks = new Checklist();
  checks.pass("parameters");
  const report: Report = {
    ok: false,
    exitCode: ExitCode.internal,
    version: VERSION,
    parameterSet: options.parameterSet,
    signIn: null,
    user: null,
    protocol: options.protocol,
    server: connects ? `${options.server}:${options.port}` : null,
    mailbox: options.mailbox ?? null,
    token: null,
    diagnostics: [],
    transcript: reporter.transcript,
    warnings: reporter.warnings,
    error: null,
  };
  const context: AdviceContext = {
    mailbox: options.mailbox,
    clientId: options.clientId,
    tenantId: options.tenantId,
    protocol: options.protocol,
    server: options.server,
    port: options.port,
    authorityHost: options.authorityHost,
  };
  let token: string | undefined;
  let sasl: string | undefined;
  try {
    if (options.diagnose) {
      checks.start("authority");
      await probeAuthority({
        authorityHost: options.authorityHost,
        tenantId: options.tenantId,
        caCerts: options.caCerts,
        timeoutMs: options.timeoutSeconds * 1000,
        proxy: options.proxy,
      });
      checks.pass("authority");
    }
    checks.start("token");
    const acquired = await acquireToken(options, reporter, env);
    checks.pass("token");
    token = acquired.accessToken;
    reporter.credentials.add(token, "<access token>");
    reporter.verboseLine(`Access Token -- ${token}`);
    report.signIn = acquired.signIn;
    report.user = acquired.username ?? null;
    if (reporter.deviceCodeInfo) report.deviceCode = reporter.deviceCodeInfo;
    const claims = decodeClaims(token);
    report.token = {
      expiresOn: acquired.expiresOn?.toISOString() ?? null,
      fromCache: acquired.fromCache,
      claims: claims ? summarizeClaims(claims) : null,
    };
    const mailbox = mailboxFor(options, acquired.username);
    report.mailbox = mailbox ?? null;
    context.mailbox = mailbox;

    checks.start("claims");
    const userSet = options.parameterSet === "authorizationcode" ||
      options.parameterSet === "devicecode";
    const claimsCheck = checkClaims(claims, {
      protocol: options.protocol,
      kind: userSet ? "user" : "app",
      tenantId: options.tenantId,
      requestedDefault: scopesFor(options).some((s) => s.endsWith("/.default")),
    });
    context.permissionOk = claimsCheck.permissionOk;
    for (const finding of claimsCheck.findings) {
      const advice = advise(finding.code, { ...context, detail: finding.detail }, lang)!;
      report.diagnostics.push({ code: finding.code, detail: finding.detail ?? null, ...advice });
      reporter.advisoryWarning(advice);
    }
    if (claimsCheck.findings.length > 0) {
      checks.fail("claims", claimsCheck.findings.map((f) => f.code).join(", "));
      if (options.diagnose) {
        const first = claimsCheck.findings[0];
        throw new TokenError(`the token cannot be used for ${options.protocol} (${first.code})`, {
          code: first.code,
        });
      }
    } else {
      checks.pass("claims");
    }

    if (!mailbox) {
      throw new Error("no mailbox: the token names no user and no -SharedMailbox was given");
    }
    sasl = buildXoauth2(mailbox, token);
    reporter.setSasl(sasl);
    if (options.sharedMailbox) {
      reporter.progress(
        `Accessing shared mailbox ${options.sharedMailbox} with the access token of user ` +
          `${acquired.username ?? options.loginHint}.`,
      );
    }
    reporter.verboseLine(`SASL XOAUTH2 login string ${sasl}`);
    if (connects && options.mailboxes.length > 1) {
      const many = await checkMailboxes(options, token, reporter, lang);
      report.results = many.results;
      report.summary = many.summary;
      report.exitCode = many.summary.worstExitCode;
      report.ok = report.exitCode === ExitCode.ok;
      if (options.diagnose) report.checklist = checks.results(lang, context);
      return { report, token, sasl };
    }
    if (connects) Object.assign(report, await mailSession(options, reporter, sasl, checks));
    report.ok = true;
    report.exitCode = ExitCode.ok;
  } catch (thrown) {
    const error: ToolError = toToolError(thrown);
    // Before the mail session, network trouble is with the authority, not the mail server.
    const authority = new URL(options.authorityHost);
    const where = ["authority", "token"].includes(checks.current)
      ? { server: authority.hostname, port: Number(authority.port || 443) }
      : {};
    const advice = advise(error.code, { ...context, ...where, detail: error.message }, lang);
    if (checks.current !== "claims") checks.fail(checks.current, error.code ?? error.message);
    report.exitCode = error.exitCode;
    report.error = {
      kind: error.kind,
      message: error.message,
      code: error.code ?? null,
      hint: advice ? `${advice.cause} ${advice.fix}` : error.hint ?? null,
      advice: advice ? { step: advice.step, cause: advice.cause, fix: advice.fix } : null,
    };
    if (error.kind === "internal") {
      reporter.verboseLine(
        thrown instanceof Error ? thrown.stack ?? thrown.message : String(thrown),
      );
    }
  }
  if (options.diagnose) report.checklist = checks.results(lang, context);
  return { report, token, sasl };
}
