/**
 * One run of the tool: credentials -> token -> XOAUTH2 -> mail session.
 * Returns a Report (never throws for expected failures); the caller renders
 * it and exits with its code.
 */
import { type Options } from "./cli/options.ts";
import { ExitCode, type ToolError, toToolError, UsageError } from "./errors.ts";
import { acquireAppToken, type AppCredential, EXCHANGE_SCOPE } from "./auth/token.ts";
import { decodeClaims, summarizeClaims } from "./diagnose/claims.ts";
import { hintFor } from "./diagnose/hints.ts";
import { buildXoauth2 } from "./sasl/xoauth2.ts";
import { connectTls } from "./mail/tls_transport.ts";
import { runImap } from "./mail/imap.ts";
import { runPop3 } from "./mail/pop3.ts";
import type { Reporter } from "./output/console.ts";
import type { Report } from "./output/report.ts";
import { VERSION } from "./version.ts";

export interface RunEnvironment {
  /** Reads all of standard input (for `-clientsecret -`). */
  readStdin(): Promise<string>;
}

async function credentialFor(options: Options, env: RunEnvironment, reporter: Reporter) {
  if (options.parameterSet === "clientcredentialsSecret") {
    let secret = options.clientSecret;
    if (options.clientSecretFromStdin) {
      secret = (await env.readStdin()).replace(/\r?\n$/, "");
      if (secret === "") {
        throw new UsageError("-clientsecret: '-' was given but standard input was empty.", {
          code: "EMPTY_VALUE",
        });
      }
    }
    reporter.always.add(secret, "<client secret>");
    return { kind: "secret", secret: secret! } satisfies AppCredential;
  }
  reporter.always.add(options.certificatePassword, "<certificate password>");
  // Loaded only for this set: it pulls in node:crypto (~40 ms of start-up).
  const { loadCertificate } = await import("./auth/certificate.ts");
  const certificate = await loadCertificate({
    value: options.clientCertificate!,
    password: options.certificatePassword,
    keyFile: options.certificateKeyFile,
  });
  reporter.always.add(certificate.privateKeyPem, "<private key>");
  for (const w of certificate.warnings) reporter.warning(w);
  reporter.verboseLine(
    `Certificate ${certificate.subject} from ${certificate.path}, SHA-1 ${certificate.thumbprintSha1}`,
  );
  return { kind: "certificate", certificate } satisfies AppCredential;
}

export async function run(
  options: Options,
  reporter: Reporter,
  env: RunEnvironment,
): Promise<{ report: Report; token?: string; sasl?: string }> {
  const connects = !options.noConnect && (options.outputFormat === "Text" ||
    options.outputFormat === "Json");
  const report: Report = {
    ok: false,
    exitCode: ExitCode.internal,
    version: VERSION,
    parameterSet: options.parameterSet,
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
    if (options.parameterSet === "authorizationcode") {
      throw new UsageError(
        "-redirectUri/-LoginHint: interactive sign-in is not available in this version yet; " +
          "use -clientsecret or -clientcertificate with -targetMailbox.",
        { code: "NOT_IMPLEMENTED" },
      );
    }
    const credential = await credentialFor(options, env, reporter);
    reporter.progress(
      `Get access token from ${options.authorityHost}/${options.tenantId} ` +
        `(client credentials, ${credential.kind}).`,
    );
    const result = await acquireAppToken({
      authorityHost: options.authorityHost,
      tenantId: options.tenantId,
      clientId: options.clientId,
      credential,
      scopes: [EXCHANGE_SCOPE],
      caCerts: options.caCerts,
      timeoutMs: options.timeoutSeconds * 1000,
      onVerbose: (m) => reporter.verboseLine(m),
    });
    token = result.accessToken;
    reporter.credentials.add(token, "<access token>");
    reporter.verboseLine(`Access Token -- ${token}`);
    const claims = decodeClaims(token);
    report.token = {
      expiresOn: result.expiresOn?.toISOString() ?? null,
      fromCache: result.fromCache,
      claims: claims ? summarizeClaims(claims) : null,
    };
    sasl = buildXoauth2(options.mailbox!, token);
    reporter.setSasl(sasl);
    reporter.verboseLine(`SASL XOAUTH2 login string ${sasl}`);

    if (connects) {
      reporter.progress(`Connect to ${options.server}:${options.port} (${options.protocol}).`);
      const transport = await connectTls({
        host: options.server,
        port: options.port,
        caCerts: options.caCerts,
        timeoutMs: options.timeoutSeconds * 1000,
      });
      try {
        const session = {
          sasl,
          onLine: (dir: "C" | "S", line: string) => reporter.line(dir, line),
          onProgress: (_step: string, message: string) => reporter.progress(message),
        };
        if (options.protocol === "IMAP") {
          report.folders = (await runImap(transport, session)).folders;
        } else {
          const stat = await runPop3(transport, session);
          report.messages = { count: stat.count, octets: stat.octets };
        }
      } finally {
        transport.close();
      }
    }
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
        mailbox: options.mailbox,
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
