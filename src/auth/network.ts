/**
 * msal-node's HTTP client, replaced so that we control TLS trust (-CaFile via
 * Deno.createHttpClient), timeouts (-TimeoutSeconds), retries and error
 * reporting: msal turns every transport failure into a vague `network_error`,
 * so the real cause is kept here and surfaced by token.ts.
 *
 * Retry policy (msal-node 7 itself never retries a token request: it only
 * remembers a 429/5xx with Retry-After to refuse the same request locally for
 * a while, which cannot happen within one run):
 * - HTTP 429 and transient 5xx (all but 501 and 505) are retried at most
 *   `MAX_RETRIES` times, waiting as the Retry-After header says (seconds or an
 *   HTTP date), else 0.3 s, 0.6 s, 1.2 s;
 * - everything stays within one deadline per request: -TimeoutSeconds from
 *   the first attempt. A retry whose wait plus the time the last attempt took
 *   would end after it is not started: the last answer is reported at once;
 * - everything else (refused, TLS, timeout, 4xx, redirects) fails at once;
 * - when the retries run out, msal gets an OAuth error answer with the code
 *   `HTTP_<status>`, so the run ends with exit 3 and that code.
 */
import type { INetworkModule, NetworkRequestOptions, NetworkResponse } from "@azure/msal-node";
import { redactorOf } from "../redact.ts";
import type { ProxyRoute } from "../net/proxy_choice.ts";

export interface NetworkOptions {
  caCerts: string[];
  /** Bound for each request, its retries included. */
  timeoutMs: number;
  /** -Proxy (credentials allowed). Without it Deno honours HTTPS_PROXY / NO_PROXY itself. */
  proxy?: URL;
  /**
   * The proxy Deno will use for these requests (net/proxy_choice.ts mirrors its choice),
   * named in failures; undefined when they go direct.
   */
  route?: ProxyRoute;
  /** Called once per attempt (retries included) with method and URL (for -Verbose). */
  onRequest?: (method: string, url: string) => void;
}

/** Why the last request failed at the transport level (not an HTTP error status). */
export interface TransportFailure {
  url: string;
  error: unknown;
  timedOut: boolean;
  /** The proxy the request went through, if any. */
  proxy?: ProxyRoute;
}

/** Retries after the first attempt, for 429 and transient 5xx answers. */
export const MAX_RETRIES = 3;
/** Wait before the first retry when the server gives no Retry-After; doubles each time. */
const FIRST_BACKOFF_MS = 300;
/** Token answers are a few KB; a server sending more is not an identity provider. */
export const MAX_BODY_BYTES = 1024 * 1024;

/** Statuses worth another try: throttling and a server that is (maybe briefly) unwell. */
export function isTransient(status: number): boolean {
  return status === 429 || (status >= 500 && status <= 599 && status !== 501 && status !== 505);
}

/**
 * Milliseconds a Retry-After header asks for (RFC 9110: delay-seconds or an
 * HTTP date), or undefined when absent or unreadable.
 */
export function retryAfterMs(value: string | null, now = Date.now()): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  // An HTTP date names its weekday and month; Date.parse alone would take "-1" as a year.
  const date = /[A-Za-z]{3}/.test(text) ? Date.parse(text) : NaN;
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** The wait before retry number `retry` (1-based). */
export function retryDelayMs(retryAfter: string | null, retry: number, now = Date.now()): number {
  return retryAfterMs(retryAfter, now) ?? FIRST_BACKOFF_MS * 2 ** (retry - 1);
}

/** One HTTP answer, body already read (bounded). */
interface Answer {
  response: Response;
  text: string;
}

/** A failure this module explains itself (message says what happened, cause keeps Deno's error). */
class RequestFailure extends Error {
  override readonly name = "RequestFailure";
}

export class FetchNetworkClient implements INetworkModule {
  #client: Deno.HttpClient | undefined;
  #options: NetworkOptions;
  lastFailure: TransportFailure | undefined;
  /**
   * The last error answer from the authority (HTTP 4xx/5xx with JSON). Some
   * msal flows (device code) drop Entra's AADSTS code and description; this
   * keeps them for the error message.
   */
  lastErrorBody: { error?: string; error_description?: string } | undefined;
  /** Set when the last request used up its retries on 429/5xx answers. */
  gaveUp: GaveUp | undefined;

  constructor(options: NetworkOptions) {
    this.#options = options;
    // A dedicated client only when extra CAs are given: it adds them to the
    // system roots instead of replacing them.
    this.#client = options.caCerts.length > 0 || options.proxy
      ? Deno.createHttpClient({
        caCerts: options.caCerts,
        proxy: options.proxy ? proxyConfig(options.proxy) : undefined,
      })
      : undefined;
  }

  sendGetRequestAsync<T>(
    url: string,
    options?: NetworkRequestOptions,
  ): Promise<NetworkResponse<T>> {
    return this.#send<T>("GET", url, options);
  }

  sendPostRequestAsync<T>(
    url: string,
    options?: NetworkRequestOptions,
  ): Promise<NetworkResponse<T>> {
    return this.#send<T>("POST", url, options);
  }

  async #send<T>(
    method: string,
    url: string,
    options?: NetworkRequestOptions,
  ): Promise<NetworkResponse<T>> {
    const started = Date.now();
    this.gaveUp = undefined;
    const deadline = started + this.#options.timeoutMs;
    let answer: Answer;
    let attempts = 0;
    for (let retry = 0;; retry++) {
      attempts++;
      const attemptStarted = Date.now();
      answer = await this.#attempt(method, url, options, deadline);
      const took = Date.now() - attemptStarted;
      const status = answer.response.status;
      if (!isTransient(status) || retry === MAX_RETRIES) break;
      const wait = retryDelayMs(answer.response.headers.get("retry-after"), retry + 1);
      // A retry that cannot get its answer before the deadline (the wait plus as long as this
      // attempt took) would only turn a clear answer (429, 503) into a vague timeout.
      if (Date.now() + wait + took >= deadline) break;
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
    const { response } = answer;
    // An error answer is printed: it must not carry back what we sent (an echo of the request).
    const text = response.status >= 400 ? scrubEchoes(answer.text, options?.body) : answer.text;
    let body: unknown;
    if (isTransient(response.status)) {
      this.gaveUp = gaveUpReport({
        url,
        status: response.status,
        statusText: response.statusText,
        text,
        headers: response.headers,
        requestHeaders: options?.headers,
        attempts,
        elapsedMs: Date.now() - started,
      });
      // msal needs an OAuth error answer; toTokenError() reports `gaveUp` itself.
      body = { error: this.gaveUp.code, error_description: this.gaveUp.message };
    } else {
      try {
        body = text === "" ? {} : JSON.parse(text);
      } catch (error) {
        throw this.#fail(
          url,
          new RequestFailure(`HTTP ${response.status} with a body that is not JSON`, {
            cause: error,
          }),
        );
      }
    }
    if (response.status >= 400 && body && typeof body === "object") {
      this.lastErrorBody = body as { error?: string; error_description?: string };
    }
    const headers: Record<string, string> = {};
    response.headers.forEach((value, key) => headers[key] = value);
    return { headers, body: body as T, status: response.status };
  }

  /** One request and its whole (bounded) body, within what is left of the deadline. */
  async #attempt(
    method: string,
    url: string,
    options: NetworkRequestOptions | undefined,
    deadline: number,
  ): Promise<Answer> {
    this.#options.onRequest?.(method, url);
    const signal = AbortSignal.timeout(Math.max(1, deadline - Date.now()));
    try {
      const response = await fetch(url, {
        method,
        headers: options?.headers,
        body: method === "POST" ? options?.body ?? "" : undefined,
        signal,
        client: this.#client,
        // A redirected POST would carry the client secret or assertion to
        // another address; Entra's endpoints never redirect.
        redirect: "manual",
      });
      if (response.status >= 300 && response.status < 400) {
        await response.body?.cancel();
        const location = response.headers.get("location");
        throw new RequestFailure(
          `redirected (HTTP ${response.status})` +
            (location ? ` to ${location.split("?")[0]}` : "") +
            "; token requests are never redirected: check -AuthorityHost",
        );
      }
      return { response, text: await readBounded(response) };
    } catch (error) {
      this.lastFailure = {
        url,
        error: explain(error),
        timedOut: signal.aborted,
        proxy: this.#options.route,
      };
      throw this.lastFailure.error;
    }
  }

  #fail(url: string, error: Error): Error {
    this.lastFailure = { url, error, timedOut: false, proxy: this.#options.route };
    return error;
  }

  close(): void {
    this.#client?.close();
  }
}

/** The body as text, refusing more than MAX_BODY_BYTES (memory stays bounded). */
async function readBounded(response: Response): Promise<string> {
  if (!response.body) return "";
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      size += value.length;
      if (size > MAX_BODY_BYTES) {
        throw new RequestFailure(
          `HTTP ${response.status} with a body larger than ${MAX_BODY_BYTES / 1024 / 1024} MiB`,
        );
      }
      chunks.push(value);
    }
  } catch (error) {
    await reader.cancel().catch(() => {});
    throw error;
  } finally {
    reader.releaseLock();
  }
  const all = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    all.set(chunk, offset);
    offset += chunk.length;
  }
  return new TextDecoder().decode(all);
}

/** Request parameters that are credentials (client credentials, code, device code, refresh). */
const SECRET_PARAMETERS = [
  "client_secret",
  "client_assertion",
  "assertion",
  "refresh_token",
  "code",
  "code_verifier",
  "device_code",
  "password",
];

/**
 * Removes from a server's error answer every credential of the request, in
 * each spelling it may come back in (as sent, form-encoded, decoded, JSON
 * escaped). A broken or hostile server that echoes the request must not make
 * the tool print the client secret or an assertion; the console's redaction
 * only knows the decoded value.
 */
export function scrubEchoes(text: string, requestBody: string | undefined): string {
  if (!requestBody) return text;
  const spellings = new Set<string>();
  const params = new URLSearchParams(requestBody);
  for (const name of SECRET_PARAMETERS) {
    for (const value of params.getAll(name)) {
      if (value.length < 8) continue;
      spellings.add(value);
      spellings.add(encodeURIComponent(value));
      spellings.add(new URLSearchParams({ v: value }).toString().slice(2));
      spellings.add(JSON.stringify(value).slice(1, -1));
    }
  }
  // The raw pieces of the body too, whatever encoding the client used.
  for (const pair of requestBody.split("&")) {
    const [name, raw] = pair.split("=", 2);
    if (raw && raw.length >= 8 && SECRET_PARAMETERS.includes(name)) {
      spellings.add(raw);
    }
  }
  return redactorOf(spellings).redact(text);
}

/**
 * Deno's fetch says only "fetch failed"; the reason (refused, TLS alert,
 * certificate) is in its cause. The explanation carries both, and keeps the
 * inner error as cause (msal_common reads `cause.message` for proxy errors).
 */
function explain(error: unknown): unknown {
  if (error instanceof RequestFailure || !(error instanceof Error)) return error;
  const inner = error.cause instanceof Error ? error.cause : undefined;
  if (!inner || error.message !== "fetch failed") return error;
  const reason = inner.message
    .replace(/^error sending request for url \([^)]*\): /, "")
    .replace(/^client error \(Connect\): /, "");
  const tls = /corrupt message|InvalidContentType|alert|handshake|tls/i.test(reason) &&
      !/certificate/i.test(reason)
    ? "TLS handshake failed: "
    : "";
  return new RequestFailure(`${tls}${reason}`, { cause: inner });
}

/** Entra's words in a gave-up message are cut after this many characters (a hostile answer). */
export const MAX_SAID_CHARS = 600;

/** What the last request that ran out of retries (429, 5xx) ended with, for the error message. */
export interface GaveUp {
  /** `AADSTS<n>` when the answer named one, else `HTTP_<status>`. */
  code: string;
  /** `<host> answered HTTP 500 ... (AADSTS...: ...); gave up after N attempts in T s; Trace ID: ...` */
  message: string;
}

/** The IDs Microsoft support asks for: a GUID-like token, never arbitrary server text. */
function supportId(value: unknown): string | undefined {
  return typeof value === "string" && /^[0-9A-Za-z-]{8,64}$/.test(value.trim())
    ? value.trim()
    : undefined;
}

/**
 * The message once the retries are used up: the whole of what the server said (Entra's AADSTS
 * text without its trailing ID lines, bounded by MAX_SAID_CHARS), the attempt count and time,
 * Retry-After, and the Trace and Correlation IDs (from the answer's JSON, its description or
 * its headers; the Correlation ID else from the request's client-request-id).
 */
export function gaveUpReport(answer: {
  url: string;
  status: number;
  statusText: string;
  text: string;
  headers: Headers;
  requestHeaders?: Record<string, string>;
  attempts: number;
  elapsedMs: number;
}): GaveUp {
  const { status, statusText, text, headers, attempts } = answer;
  let said = "";
  let json: Record<string, unknown> | undefined;
  try {
    const parsed = JSON.parse(text);
    if (parsed && typeof parsed === "object") json = parsed;
  } catch { /* not JSON */ }
  if (json) {
    said = typeof json.error_description === "string"
      ? json.error_description
      : typeof json.error === "string"
      ? json.error
      : "";
  } else {
    said = text.replace(/<[^>]*>/g, " ");
  }
  const fromText = (label: string) =>
    supportId(new RegExp(`${label}:\\s*([0-9A-Za-z-]{8,64})`, "i").exec(said)?.[1]);
  const requestId = Object.entries(answer.requestHeaders ?? {})
    .find(([name]) => name.toLowerCase() === "client-request-id")?.[1];
  const trace = supportId(json?.trace_id) ?? fromText("Trace ID") ??
    supportId(headers.get("x-ms-request-id"));
  const correlation = supportId(json?.correlation_id) ?? fromText("Correlation ID") ??
    supportId(headers.get("client-request-id")) ?? supportId(requestId);
  const statusLine = `${status}${statusText ? ` ${statusText}` : ""}`;
  said = said.split(/\s*\b(?:Trace ID|Correlation ID|Timestamp):/)[0].replace(/\s+/g, " ").trim();
  if (said.length > MAX_SAID_CHARS) {
    const cut = said.slice(0, MAX_SAID_CHARS);
    said = `${cut.slice(0, Math.max(cut.lastIndexOf(" "), MAX_SAID_CHARS / 2))} …`;
  }
  // A gateway's error page usually says no more than its status line.
  if (said === statusLine || said === statusText) said = "";
  const retryAfter = headers.get("retry-after");
  const message = `${new URL(answer.url).host} answered HTTP ${statusLine}` +
    (said ? ` (${said})` : "") +
    `; gave up after ${attempts} attempt${attempts === 1 ? "" : "s"} in ` +
    `${(answer.elapsedMs / 1000).toFixed(1)} s` +
    (retryAfter ? ` (Retry-After: ${retryAfter.slice(0, 40)})` : "") +
    (trace ? `; Trace ID: ${trace}` : "") +
    (correlation ? `; Correlation ID: ${correlation}` : "");
  const named = /\bAADSTS(\d{1,9})\b/.exec(said);
  return { code: named ? `AADSTS${Number(named[1])}` : `HTTP_${status}`, message };
}

/** Deno's proxy settings from a -Proxy URL: the credentials go to basicAuth, not the URL. */
function proxyConfig(proxy: URL): Deno.Proxy {
  const url = `${proxy.protocol}//${proxy.host}`;
  return proxy.username
    ? {
      url,
      basicAuth: {
        username: decodeURIComponent(proxy.username),
        password: decodeURIComponent(proxy.password),
      },
    }
    : { url };
}
