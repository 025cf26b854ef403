/**
 * One run of the tool: token -> claims check -> XOAUTH2 -> mail session.
 * Every phase is a check of the -Diagnose checklist. Returns a Report (never
 * throws for expected failures); main.ts renders it and exits with its code.
 */
import { lazy } from "../lazy.ts";
import {
  connects,
  DEFAULT_PORTS,
  isUserSignIn,
  type MailTarget,
  type Options,
} from "../cli/options.ts";
import { ExitCode, toToolError, UsageError } from "../errors.ts";
import { acquireToken, type RunEnvironment } from "./token_flow.ts";
import { decodeClaims, servicePrincipalId, summarizeClaims } from "../diagnose/claims.ts";
import { APP_ROLE } from "../diagnose/claims_check.ts";
import { advise } from "../diagnose/advice.ts";
import { type CheckId, Checks } from "../diagnose/checklist.ts";
import { type Lang, MESSAGES } from "../diagnose/messages.ts";
import { clientIdIsTenant, type MixupCode, secretLooksLikeId } from "../diagnose/mixups.ts";
import { judgeToken, xoauth2User } from "./token_check.ts";
import type { FindingCode } from "../diagnose/claims_check.ts";
import { buildXoauth2 } from "../sasl/xoauth2.ts";
import type { EarlyConnection } from "./session.ts";
import { adviceContext, authorityPlace, errorReport, type Place } from "./error_report.ts";
import type { Reporter } from "../output/console.ts";
import type { Report } from "../output/report.ts";
import { VERSION } from "../version.ts";

export type { RunEnvironment } from "./token_flow.ts";

export async function run(
  options: Options,
  reporter: Reporter,
  env: RunEnvironment,
  lang: Lang,
): Promise<{ report: Report; token?: string; sasl?: string }> {
  const connecting = connects(options);
  // Without -Protocol the token may choose IMAP or POP3 (and its default port): see below.
  let mail: MailTarget = options.mail;
  const protocolGiven = options.explicit?.protocol ?? true;
  const checks = new Checks();
  checks.record("parameters", true);
  const report: Report = {
    ok: false,
    exitCode: ExitCode.internal,
    version: VERSION,
    parameterSet: options.parameterSet,
    signIn: null,
    user: null,
    protocol: mail.protocol,
    protocolChoice: protocolGiven ? { source: "parameter", reason: null } : null,
    server: connecting ? `${mail.server}:${mail.port}` : null,
    mailbox: options.mailbox ?? null,
    token: null,
    diagnostics: [],
    transcript: [],
    warnings: [],
    error: null,
  };
  let context = adviceContext(options);
  let token: string | undefined;
  let sasl: string | undefined;
  // Until the token is there, network trouble is with the authority, not the mail server.
  let place: Place | undefined = authorityPlace(options);
  /** A finding before or after the token: a warning with advice, listed under its check. */
  const finding = (check: CheckId, code: MixupCode | FindingCode, detail?: string) => {
    const advice = advise(code, { ...context, detail }, lang);
    if (!advice) return;
    report.diagnostics.push({ code, detail: detail ?? null, ...advice });
    reporter.advisoryWarning(advice);
    checks.note(check, { code, step: advice.step, text: advice.cause, warning: true });
  };
  let forget: (() => Promise<void>) | undefined;
  let early: Promise<EarlyConnection> | undefined;
  // The mail modules load only when the run connects (Token/Sasl output never does), and
  // then while the token is being fetched.
  const sessions = connecting ? lazy<typeof import("./session.ts")>("app/session.ts") : undefined;
  try {
    if (clientIdIsTenant(options.clientId, options.tenantId)) {
      context.clientIdIsTenant = true;
      finding("parameters", "CLIENT_ID_IS_TENANT");
    }
    if (options.diagnose) {
      // Only -Diagnose probes the authority: its HTTP client is not loaded otherwise.
      const { probeAuthority } = await lazy<typeof import("../auth/probe.ts")>("auth/probe.ts");
      await checks.run("authority", () =>
        probeAuthority({
          authorityHost: options.authorityHost,
          tenantId: options.tenantId,
          caCerts: options.caCerts,
          timeoutMs: options.timeoutSeconds * 1000,
          proxy: options.proxy,
          proxyRoute: options.tokenProxy,
        }));
    }
    const acquired = await checks.run("token", () =>
      acquireToken(options, reporter, env, {
        beforeSecretSent: (secret) => {
          if (!secretLooksLikeId(secret)) return;
          context.secretIsId = true;
          finding("parameters", "CLIENT_SECRET_IS_ID");
        },
        secretTrimmed: () => {
          context.secretTrimmed = true;
        },
        certificateLoaded: (certificate) => {
          context.certificate = certificate;
        },
        // TCP, TLS and the server's greeting do not depend on the token: they overlap the token
        // request. Only when the protocol is known before the token (-Protocol given; otherwise
        // the token's roles choose it), for one mailbox, and not under -Diagnose, whose checks
        // run one after the other.
        beforeTokenRequest: () => {
          const many = "mailboxes" in options && options.mailboxes.length > 1;
          if (connecting && protocolGiven && !many && !options.diagnose) {
            early = sessions?.then((m) => m.connectEarly(mail));
          }
        },
      }));
    place = undefined;
    token = acquired.accessToken;
    reporter.credentials.add(token, "<access token>");
    reporter.verboseLine(`Access Token -- ${token}`);
    report.signIn = acquired.signIn;
    report.user = acquired.username ?? null;
    if (acquired.deviceCode) report.deviceCode = acquired.deviceCode;
    const claims = decodeClaims(token);
    report.token = {
      expiresOn: acquired.expiresOn?.toISOString() ?? null,
      fromCache: acquired.fromCache,
      claims: claims ? summarizeClaims(claims) : null,
    };
    const mailbox = xoauth2User(options, acquired.username);
    report.mailbox = mailbox ?? null;

    const { kind, choice, check: claimsCheck } = judgeToken(options, claims);
    report.protocolChoice = { source: choice.source, reason: choice.reason };
    if (choice.protocol !== mail.protocol) {
      const portGiven = options.explicit?.port ?? true;
      mail = {
        ...mail,
        protocol: choice.protocol,
        port: portGiven ? mail.port : DEFAULT_PORTS[choice.protocol],
      };
      report.protocol = mail.protocol;
      report.server = connecting ? `${mail.server}:${mail.port}` : null;
    }
    const spId = kind === "app" ? servicePrincipalId(claims) : undefined;
    // IMAP by default because the app may do neither: POP3 software needs the other role.
    const neither = kind === "app" && choice.source === "default" && choice.allowed.length === 0;
    context = {
      ...context,
      ...adviceContext({ ...options, mail }, mailbox),
      servicePrincipalId: spId,
      otherRole: neither ? APP_ROLE.POP3 : undefined,
    };
    if (choice.source === "token") {
      const line = MESSAGES[lang]["protocol.fromToken"]({
        ...context,
        detail: choice.reason ?? "",
      });
      reporter.progress(line);
      checks.note("claims", { code: null, step: 2, text: line, warning: false });
    }
    if (spId) {
      checks.note("claims", {
        code: null,
        step: 3,
        text: MESSAGES[lang]["note.servicePrincipal"](context),
        warning: false,
      });
    }

    context.permissionOk = claimsCheck.permissionOk;
    for (const found of claimsCheck.findings) finding("claims", found.code, found.detail);
    const findings = claimsCheck.findings.map((f) => f.code);
    checks.record("claims", findings.length === 0, findings.join(", ") || null);
    // A token that lacks what the protocol needs is not served again: once the admin has
    // fixed the setup (consent, role), the next run must get a fresh token.
    if (findings.length > 0) await acquired.forget?.();
    forget = acquired.forget;

    if (!mailbox) {
      throw new UsageError(
        "no mailbox: the token names no user; give -SharedMailbox or -LoginHint",
        { code: "NO_MAILBOX" },
      );
    }
    sasl = buildXoauth2(mailbox, token);
    reporter.setSasl(sasl);
    if (isUserSignIn(options) && options.sharedMailbox) {
      reporter.progress(
        `Accessing shared mailbox ${options.sharedMailbox} with the access token of user ` +
          `${acquired.username ?? options.loginHint}.`,
      );
    }
    reporter.verboseLine(`SASL XOAUTH2 login string ${sasl}`);
    if (connecting && !isUserSignIn(options) && options.mailboxes.length > 1) {
      const { checkMailboxes } = await lazy<typeof import("./many.ts")>("app/many.ts");
      const many = await checkMailboxes({ ...options, mail }, token, reporter, lang, context);
      report.results = many.results;
      report.summary = many.summary;
      report.exitCode = many.summary.worstExitCode;
      report.ok = report.exitCode === ExitCode.ok;
      if (many.results.some((r) => r.exitCode === ExitCode.auth)) await forget?.();
    } else {
      if (connecting) {
        const { mailSession } = await lazy<typeof import("./session.ts")>("app/session.ts");
        const pending = early;
        early = undefined;
        const session = mailSession(
          mail,
          { mailbox, sasl, token },
          reporter,
          checks,
          await pending,
        );
        Object.assign(report, await session);
      }
      report.ok = true;
      report.exitCode = ExitCode.ok;
    }
  } catch (thrown) {
    // A connection opened ahead of a login that never came.
    early?.then((connection) => connection.abandon());
    const error = toToolError(thrown);
    report.exitCode = error.exitCode;
    report.error = errorReport(error, context, lang, place);
    // The mail server refused the token: not served again (the next run asks Entra ID).
    if (error.kind === "auth") await forget?.();
    if (error.kind === "internal") {
      reporter.verboseLine(
        thrown instanceof Error ? thrown.stack ?? thrown.message : String(thrown),
      );
    }
  }
  const recorded = reporter.recorded();
  report.transcript = recorded.transcript;
  report.warnings = recorded.warnings;
  if (options.diagnose) report.checklist = checks.results(lang, context);
  return { report, token, sasl };
}
