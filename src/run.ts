/**
 * One run of the tool: token -> XOAUTH2 -> mail session. Returns a Report
 * (never throws for expected failures); main.ts renders it and exits with
 * its code.
 */
import type { Options } from "./cli/options.ts";
import { ExitCode, type ToolError, toToolError } from "./errors.ts";
import { acquireToken, type RunEnvironment } from "./token_flow.ts";
import { decodeClaims, summarizeClaims } from "./diagnose/claims.ts";
import { hintFor } from "./diagnose/hints.ts";
import { buildXoauth2 } from "./sasl/xoauth2.ts";
import { connectTls } from "./mail/tls_transport.ts";
import { runImap } from "./mail/imap.ts";
import { runPop3 } from "./mail/pop3.ts";
import type { Reporter } from "./output/console.ts";
import type { Report } from "./output/report.ts";
import { VERSION } from "./version.ts";

export type { RunEnvironment } from "./token_flow.ts";

/** The XOAUTH2 user: target or shared mailbox, else the signed-in user (as the original). */
function mailboxFor(options: Options, username: string | undefined): string | undefined {
  return options.mailbox ?? (username || undefined);
}

async function session(options: Options, reporter: Reporter, sasl: string, report: Report) {
  reporter.progress(`Connect to ${options.server}:${options.port} (${options.protocol}).`);
  const transport = await connectTls({
    host: options.server,
    port: options.port,
    caCerts: options.caCerts,
    timeoutMs: options.timeoutSeconds * 1000,
  });
  try {
    const callbacks = {
      sasl,
      onLine: (dir: "C" | "S", line: string) => reporter.line(dir, line),
      onProgress: (_step: string, message: string) => reporter.progress(message),
    };
    if (options.protocol === "IMAP") {
      report.folders = (await runImap(transport, callbacks)).folders;
    } else {
      const stat = await runPop3(transport, callbacks);
      report.messages = { count: stat.count, octets: stat.octets };
    }
  } finally {
    transport.close();
  }
}

export async function run(
  options: Options,
  reporter: Reporter,
  env: RunEnvironment,
): Promise<{ report: Report; token?: string; sasl?: string }> {
  const connects = !options.noConnect &&
    (options.outputFormat === "Text" || options.outputFormat === "Json");
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
    transcript: reporter.transcript,
    warnings: reporter.warnings,
    error: null,
  };
  let token: string | undefined;
  let sasl: string | undefined;
  try {
    const acquired = await acquireToken(options, reporter, env);
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
    if (connects) await session(options, reporter, sasl, report);
    report.ok = true;
    report.exitCode = ExitCode.ok;
  } catch (thrown) {
    const error: ToolError = toToolError(thrown);
    report.exitCode = error.exitCode;
    report.error = {
      kind: error.kind,
      message: error.message,
      code: error.code ?? null,
      // The advice table knows the user's own values; an error's own hint is the fallback.
      hint: hintFor(error.code, {
        mailbox: report.mailbox ?? undefined,
        clientId: options.clientId,
        tenantId: options.tenantId,
        protocol: options.protocol,
        server: options.server,
      }) ?? error.hint ?? null,
    };
    if (error.kind === "internal") {
      reporter.verboseLine(
        thrown instanceof Error ? thrown.stack ?? thrown.message : String(thrown),
      );
    }
  }
  return { report, token, sasl };
}
