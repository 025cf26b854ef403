/**
 * The one path from an error to what the user sees about it: message, code,
 * and the advice (setup step, cause, fix) filled with the run's own values.
 * Used for the single run, each mailbox of a many-mailbox run, and usage
 * errors in main.ts.
 */
import type { Options } from "../cli/options.ts";
import type { ToolError } from "../errors.ts";
import { type AdviceContext, advise } from "../diagnose/advice.ts";
import type { Lang } from "../diagnose/messages.ts";
import type { ReportError } from "../output/report.ts";
import { proxyLabel } from "../net/proxy_choice.ts";

/** Where the failing step talked to, when that is not the mail server. */
export interface Place {
  server: string;
  port: number;
  /** The proxy of that step (host:port) and its setting, or undefined: direct. */
  proxy: string | undefined;
  proxySource: string | undefined;
}

/** The values advice is filled with, from the options (and the mailbox, once known). */
export function adviceContext(options: Options, mailbox = options.mailbox): AdviceContext {
  return {
    mailbox,
    clientId: options.clientId,
    tenantId: options.tenantId,
    protocol: options.mail.protocol,
    server: options.mail.server,
    port: options.mail.port,
    authorityHost: options.authorityHost,
    proxy: options.mail.proxy && proxyLabel(options.mail.proxy.url),
    proxySource: options.mail.proxy?.source,
  };
}

/** The authority as a place: before the mail session, network trouble is with Entra ID. */
export function authorityPlace(options: Options): Place {
  const url = new URL(options.authorityHost);
  return {
    server: url.hostname,
    port: Number(url.port || 443),
    proxy: options.tokenProxy && proxyLabel(options.tokenProxy.url),
    proxySource: options.tokenProxy?.source,
  };
}

/** The report's error for `error`, with advice when the advice table knows its code. */
export function errorReport(
  error: ToolError,
  context: AdviceContext,
  lang: Lang,
  place?: Place,
): ReportError {
  const advice = advise(error.code, { ...context, ...place, detail: error.message }, lang);
  return {
    kind: error.kind,
    message: error.message,
    code: error.code ?? null,
    hint: advice ? `${advice.cause} ${advice.fix}` : null,
    advice: advice ? { step: advice.step, cause: advice.cause, fix: advice.fix } : null,
  };
}
