/**
 * Fault-injection servers for the test bed: a token endpoint and an IMAP/POP3
 * server that misbehave in one chosen way each, on 127.0.0.1 with an
 * ephemeral port. Every server records what it received and is closed by the
 * test (listener, connections, timers and child processes), so Deno's
 * sanitizers stay quiet.
 *
 * The token endpoint speaks raw HTTP/1.1 over TLS (one request per
 * connection, `connection: close`): that gives exact control over status
 * lines, headers and bodies that stall halfway. "TLS 1.0 only" runs the
 * system's `openssl s_server -tls1`: rustls cannot serve TLS 1.0, and a real
 * TLS 1.0 server is the faithful version of that fault.
 */
import type { ServerPki } from "./pki.ts";
import { makeServerPki } from "./pki.ts";
import { makeCertForName } from "../mail/tls_server.ts";

export type TlsIdentity = { certPem: string; keyPem: string };

// ---------------------------------------------------------------------------------------------
// Shared plumbing: a listener whose connections run one handler each.
// ---------------------------------------------------------------------------------------------

interface Served {
  port: number;
  /** Resolves when `close()` is called: handlers that wait on purpose stop then. */
  closing: AbortSignal;
  close(): Promise<void>;
}

function serve<C extends Deno.Conn>(
  listener: Deno.Listener<C>,
  handler: (conn: C, closing: AbortSignal) => Promise<void>,
): Served {
  const conns = new Set<C>();
  const handlers = new Set<Promise<void>>();
  const closing = new AbortController();
  const loop = (async () => {
    try {
      for await (const conn of listener) {
        conns.add(conn);
        const running = handler(conn, closing.signal)
          .catch(() => {
            // The client went away or rejected the handshake: that is the point of a fault.
          })
          .finally(() => {
            conns.delete(conn);
            closeQuietly(conn);
            handlers.delete(running);
          });
        handlers.add(running);
      }
    } catch {
      // listener closed
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    closing: closing.signal,
    async close() {
      closing.abort();
      listener.close();
      await loop;
      for (const conn of conns) closeQuietly(conn);
      await Promise.all([...handlers]);
    },
  };
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}

/** Waits `ms`, or less if the server is closing. */
function sleep(ms: number, closing: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (closing.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      closing.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    closing.addEventListener("abort", done);
  });
}

const encoder = new TextEncoder();

async function writeAll(conn: Deno.Conn, data: Uint8Array | string): Promise<void> {
  const bytes = typeof data === "string" ? encoder.encode(data) : data;
  for (let sent = 0; sent < bytes.length;) sent += await conn.write(bytes.subarray(sent));
}

/** Reads CRLF lines (and raw bytes) from a connection. */
class Reader {
  #buffer = new Uint8Array(0);
  #chunk = new Uint8Array(16 * 1024);
  constructor(private readonly conn: Deno.Conn) {}

  async #fill(): Promise<boolean> {
    const n = await this.conn.read(this.#chunk);
    if (n === null) return false;
    const next = new Uint8Array(this.#buffer.length + n);
    next.set(this.#buffer);
    next.set(this.#chunk.subarray(0, n), this.#buffer.length);
    this.#buffer = next;
    return true;
  }

  /** The next line without CRLF, or null when the peer closed. */
  async line(): Promise<string | null> {
    while (true) {
      for (let i = 0; i + 1 < this.#buffer.length; i++) {
        if (this.#buffer[i] === 13 && this.#buffer[i + 1] === 10) {
          const line = new TextDecoder().decode(this.#buffer.subarray(0, i));
          this.#buffer = this.#buffer.slice(i + 2);
          return line;
        }
      }
      if (!(await this.#fill())) return null;
    }
  }

  /** Exactly `n` bytes (fewer if the peer closed). */
  async bytes(n: number): Promise<Uint8Array> {
    while (this.#buffer.length < n && (await this.#fill()));
    const out = this.#buffer.slice(0, n);
    this.#buffer = this.#buffer.slice(n);
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// Certificates for the TLS faults.
// ---------------------------------------------------------------------------------------------

export interface FaultCertificates {
  /** Trusted by the client (its CA is given with -CaFile). */
  trusted: TlsIdentity;
  /** Signed by a CA the client does not know. */
  untrusted: TlsIdentity;
  /** Signed by the trusted CA, but for `wrong.example` only (the client connects to 127.0.0.1). */
  wrongName: TlsIdentity;
}

/** Makes the certificates for the TLS faults from the test bed's PKI (plus an unknown CA). */
export async function faultCertificates(pki: ServerPki, dir: string): Promise<FaultCertificates> {
  const stranger = await makeServerPki(`${dir}/stranger-pki`, "stranger");
  return {
    trusted: { certPem: pki.certPem, keyPem: pki.keyPem },
    untrusted: { certPem: stranger.certPem, keyPem: stranger.keyPem },
    wrongName: await makeCertForName(pki, "wrong.example"),
  };
}

// ---------------------------------------------------------------------------------------------
// Token endpoint faults.
// ---------------------------------------------------------------------------------------------

export type TokenFault =
  /** A working token endpoint (for TLS faults, where only the certificate is wrong). */
  | "ok"
  /** Answers the ClientHello with a fatal TLS `handshake_failure` alert (no common cipher). */
  | "tls-handshake-failure"
  | "http-500"
  /**
   * HTTP 500 as Entra ID sends it in an outage: a long AADSTS50000 description with a
   * parenthesis, then Trace ID, Correlation ID and Timestamp on their own CRLF lines, and the
   * IDs again as JSON fields and headers (see ENTRA_5XX_IDS).
   */
  | "http-500-entra"
  | "http-502"
  | "http-503"
  | "http-503-retry-after"
  /** 503 with Retry-After: 1 once, then a token: proves retries work. */
  | "http-503-once"
  | "http-429-retry-after"
  /** 429 asking for a wait longer than any test's -TimeoutSeconds. */
  | "http-429-retry-after-long"
  | "http-429-retry-after-date"
  /** HTTP 200 with an HTML page. */
  | "not-json"
  | "no-access-token"
  /** Status, headers and half of the JSON, then nothing (connection kept open). */
  | "stall-mid-body"
  /** 302 to itself, forever. */
  | "redirect-loop"
  /** 400 whose error description quotes the request body (client secret or assertion). */
  | "echo-request";

export interface TokenRequestSeen {
  method: string;
  path: string;
  /** The form body as sent. */
  body: string;
}

export interface FaultyTokenEndpoint {
  /** `https://127.0.0.1:PORT`: the -AuthorityHost to give the CLI. */
  url: string;
  port: number;
  requests: TokenRequestSeen[];
  /** The access token of the "ok" and "http-503-once" answers. */
  accessToken: string;
  close(): Promise<void>;
}

/** A fatal `handshake_failure` alert in a TLS 1.2 record: what a server without a common cipher sends. */
const HANDSHAKE_FAILURE_ALERT = new Uint8Array([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]);

/** An unsigned JWT-shaped token with Exchange's audience: enough for -NoConnect runs. */
function fakeAccessToken(): string {
  const b64 = (value: unknown) =>
    btoa(JSON.stringify(value)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  const now = Math.floor(Date.now() / 1000);
  return `${b64({ typ: "JWT", alg: "none" })}.${
    b64({
      aud: "https://outlook.office365.com",
      exp: now + 3600,
      roles: ["IMAP.AccessAsApp", "POP.AccessAsApp"],
      jti: crypto.randomUUID(),
    })
  }.c2lnbmF0dXJl`;
}

interface HttpAnswer {
  status: number;
  reason: string;
  headers?: Record<string, string>;
  body?: string;
  /** Send only this many bytes of the body, then stall until the client gives up. */
  stallAfter?: number;
}

/** The IDs of the "http-500-entra" answer: what Microsoft support asks for. */
export const ENTRA_5XX_IDS = {
  trace: "7e3f1c2a-9b4d-4e8f-a1c6-5d2b8e9f0a13",
  correlation: "c41d8a7e-2f6b-4c93-8e15-0b7a9d3f6e24",
};

/** Entra's outage text (AADSTS50000), longer than 200 characters, with a parenthesis. */
export const ENTRA_5XX_TEXT = "There was an error issuing a token or an issue with our sign-in " +
  "service. (The service is temporarily unavailable because the backend token store did not " +
  "answer in time; the request was not processed and may be repeated.) Please try again later.";

function json(status: number, reason: string, body: unknown, headers = {}): HttpAnswer {
  return {
    status,
    reason,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
    body: JSON.stringify(body),
  };
}

function tokenAnswer(token: string): HttpAnswer {
  return json(200, "OK", {
    token_type: "Bearer",
    expires_in: 3599,
    ext_expires_in: 3599,
    access_token: token,
  });
}

function answerFor(
  fault: TokenFault,
  request: TokenRequestSeen,
  count: number,
  token: string,
  url: string,
): HttpAnswer {
  const html = (status: number, reason: string, headers = {}): HttpAnswer => ({
    status,
    reason,
    headers: { "content-type": "text/html", ...headers },
    body: `<html><body><h1>${status} ${reason}</h1></body></html>`,
  });
  switch (fault) {
    case "ok":
      return tokenAnswer(token);
    case "tls-handshake-failure":
      throw new Error("not an HTTP fault");
    case "http-500":
      return json(500, "Internal Server Error", {
        error: "server_error",
        error_description: "AADSTS90033: A transient error has occurred. Please try again.",
        error_codes: [90033],
      });
    case "http-500-entra":
      return json(500, "Internal Server Error", {
        error: "server_error",
        error_description: `AADSTS50000: ${ENTRA_5XX_TEXT}\r\n` +
          `Trace ID: ${ENTRA_5XX_IDS.trace}\r\nCorrelation ID: ${ENTRA_5XX_IDS.correlation}\r\n` +
          "Timestamp: 2026-12-05 07:40:11Z",
        error_codes: [50000],
        timestamp: "2026-12-05 07:40:11Z",
        trace_id: ENTRA_5XX_IDS.trace,
        correlation_id: ENTRA_5XX_IDS.correlation,
      }, {
        "x-ms-request-id": ENTRA_5XX_IDS.trace,
        "client-request-id": ENTRA_5XX_IDS.correlation,
      });
    case "http-502":
      return html(502, "Bad Gateway");
    case "http-503":
      return html(503, "Service Unavailable");
    case "http-503-retry-after":
      return html(503, "Service Unavailable", { "retry-after": "1" });
    case "http-503-once":
      return count === 1
        ? html(503, "Service Unavailable", { "retry-after": "1" })
        : tokenAnswer(token);
    case "http-429-retry-after":
      return json(429, "Too Many Requests", {
        error: "temporarily_unavailable",
        error_description: "Too many requests, retry later.",
      }, { "retry-after": "1" });
    case "http-429-retry-after-long":
      return json(429, "Too Many Requests", { error: "temporarily_unavailable" }, {
        "retry-after": "120",
      });
    case "http-429-retry-after-date":
      return json(429, "Too Many Requests", { error: "temporarily_unavailable" }, {
        "retry-after": new Date(Date.now() + 1000).toUTCString(),
      });
    case "not-json":
      return html(200, "OK");
    case "no-access-token":
      return json(200, "OK", { token_type: "Bearer", expires_in: 3599, ext_expires_in: 3599 });
    case "stall-mid-body": {
      const answer = tokenAnswer(token);
      return { ...answer, stallAfter: Math.floor(answer.body!.length / 2) };
    }
    case "redirect-loop":
      return { status: 302, reason: "Found", headers: { location: `${url}${request.path}` } };
    case "echo-request":
      return json(400, "Bad Request", {
        error: "invalid_request",
        error_description: `AADSTS900144: The request body was: ${request.body}`,
        error_codes: [900144],
      });
  }
}

/** Reads one HTTP/1.1 request (head and Content-Length body). */
async function readRequest(reader: Reader): Promise<TokenRequestSeen | null> {
  const first = await reader.line();
  if (first === null) return null;
  const [method, target] = first.split(" ");
  let length = 0;
  while (true) {
    const header = await reader.line();
    if (header === null) return null;
    if (header === "") break;
    const match = /^content-length:\s*(\d+)$/i.exec(header);
    if (match) length = Number(match[1]);
  }
  const body = new TextDecoder().decode(await reader.bytes(length));
  return { method, path: target ?? "/", body };
}

export function startTokenFault(fault: TokenFault, tls: TlsIdentity): FaultyTokenEndpoint {
  const requests: TokenRequestSeen[] = [];
  const accessToken = fakeAccessToken();
  let url = "";

  const served = fault === "tls-handshake-failure"
    ? serve(Deno.listen({ hostname: "127.0.0.1", port: 0 }), async (conn) => {
      // Read (part of) the ClientHello, then refuse like a server with nothing in common.
      await conn.read(new Uint8Array(4096));
      await writeAll(conn, HANDSHAKE_FAILURE_ALERT);
    })
    : serve(
      Deno.listenTls({ hostname: "127.0.0.1", port: 0, cert: tls.certPem, key: tls.keyPem }),
      async (conn, closing) => {
        const request = await readRequest(new Reader(conn));
        if (!request) return;
        requests.push(request);
        const answer = answerFor(fault, request, requests.length, accessToken, url);
        const body = encoder.encode(answer.body ?? "");
        const head = [
          `HTTP/1.1 ${answer.status} ${answer.reason}`,
          `content-length: ${body.length}`,
          "connection: close",
          ...Object.entries(answer.headers ?? {}).map(([k, v]) => `${k}: ${v}`),
        ].join("\r\n") + "\r\n\r\n";
        await writeAll(conn, head);
        if (answer.stallAfter === undefined) {
          await writeAll(conn, body);
          return;
        }
        await writeAll(conn, body.subarray(0, answer.stallAfter));
        // Keep the connection open, silent, until the client gives up or the test ends.
        await Promise.race([
          conn.read(new Uint8Array(1)).catch(() => null),
          new Promise((resolve) => closing.addEventListener("abort", resolve)),
        ]);
      },
    );
  url = `https://127.0.0.1:${served.port}`;
  return { url, port: served.port, requests, accessToken, close: served.close };
}

// ---------------------------------------------------------------------------------------------
// Mail server faults (IMAP on implicit TLS, some also POP3).
// ---------------------------------------------------------------------------------------------

export type MailFault =
  /** A server that accepts any XOAUTH2 login and lists two folders (for certificate faults). */
  | "ok"
  /** TLS up, then never a greeting. */
  | "silent"
  | "close-after-greeting"
  /** Greeting, the AUTHENTICATE command (and, IMAP, the credentials after `+`), then close. */
  | "close-mid-authenticate"
  /** Greeting, then 1 MiB without CRLF, then silence. */
  | "long-line"
  /** Greeting and folder names with NUL, invalid UTF-8 and a terminal escape; otherwise fine. */
  | "nul-invalid-utf8"
  /** Answers AUTHENTICATE with a reply for another tag. */
  | "wrong-tag"
  /** The greeting, one byte per second. */
  | "slowloris"
  /** Answers LIST with folders forever, as fast as the client reads. */
  | "endless-list"
  /** Answers LIST with a folder every 100 ms, forever: each line complete, the reply never. */
  | "trickle-list"
  /** Refuses the login with a reply that quotes the XOAUTH2 string and the token in it. */
  | "echo-credentials";

export interface MailSessionSeen {
  /** Lines the client sent, in order. */
  received: string[];
}

export interface FaultyMailServer {
  port: number;
  sessions: MailSessionSeen[];
  close(): Promise<void>;
}

const IMAP_GREETING = "* OK [CAPABILITY IMAP4rev1 AUTH=XOAUTH2 SASL-IR] Fault server ready.";
/** No SASL-IR: the client must wait for `+` before it sends the credentials. */
const IMAP_GREETING_NO_SASL_IR = "* OK [CAPABILITY IMAP4rev1 AUTH=XOAUTH2] Fault server ready.";
const POP3_GREETING = "+OK Fault server ready.";

/** Bytes a hostile server puts in a line: NUL, invalid UTF-8, an ANSI "clear screen". */
export const HOSTILE_BYTES = new Uint8Array([0x00, 0xff, 0xfe, 0xc3, 0x28, 0x1b, 0x5b, 0x32, 0x4a]);

function concat(...parts: (string | Uint8Array)[]): Uint8Array {
  const bytes = parts.map((p) => typeof p === "string" ? encoder.encode(p) : p);
  const out = new Uint8Array(bytes.reduce((n, b) => n + b.length, 0));
  let offset = 0;
  for (const b of bytes) {
    out.set(b, offset);
    offset += b.length;
  }
  return out;
}

/** The token inside an XOAUTH2 string (`user=..^Aauth=Bearer TOKEN^A^A`). */
function tokenOf(sasl: string): string {
  try {
    const text = atob(sasl);
    const start = text.indexOf("auth=Bearer ");
    return start < 0 ? "" : text.slice(start + 12).split("\u0001")[0];
  } catch {
    return "";
  }
}

/** One IMAP or POP3 connection of a mail fault. */
async function mailSession(
  fault: MailFault,
  protocol: "IMAP" | "POP3",
  conn: Deno.Conn,
  closing: AbortSignal,
  seen: MailSessionSeen,
): Promise<void> {
  const reader = new Reader(conn);
  const send = (line: string | Uint8Array) => writeAll(conn, concat(line, "\r\n"));
  const receive = async () => {
    const line = await reader.line();
    if (line !== null) seen.received.push(line);
    return line;
  };
  const waitForClient = async () => {
    while ((await receive()) !== null);
  };
  const imap = protocol === "IMAP";

  switch (fault) {
    case "silent":
      return await Promise.race([
        waitForClient(),
        new Promise<void>((resolve) => closing.addEventListener("abort", () => resolve())),
      ]);
    case "slowloris": {
      const greeting = encoder.encode(`${imap ? IMAP_GREETING : POP3_GREETING}\r\n`);
      for (let i = 0; !closing.aborted; i = (i + 1) % greeting.length) {
        await writeAll(conn, greeting.subarray(i, i + 1));
        await sleep(1000, closing);
      }
      return;
    }
    case "long-line":
      await send(imap ? IMAP_GREETING : POP3_GREETING);
      await writeAll(conn, new Uint8Array(1024 * 1024).fill(0x41));
      return await Promise.race([
        waitForClient(),
        new Promise<void>((resolve) => closing.addEventListener("abort", () => resolve())),
      ]);
    case "close-after-greeting":
      await send(imap ? IMAP_GREETING : POP3_GREETING);
      return;
    case "nul-invalid-utf8":
      await send(concat(imap ? "* OK " : "+OK ", HOSTILE_BYTES, " ready"));
      break;
    case "close-mid-authenticate":
      await send(imap ? IMAP_GREETING_NO_SASL_IR : POP3_GREETING);
      break;
    default:
      await send(imap ? IMAP_GREETING : POP3_GREETING);
  }

  // A login dialog: AUTHENTICATE (IMAP, SASL-IR or `+`) or AUTH XOAUTH2 + credentials (POP3).
  let line = await receive();
  if (line === null) return;
  let tag = line.split(" ")[0];
  if (imap && /^\S+ CAPABILITY$/i.test(line)) {
    await send("* CAPABILITY IMAP4rev1 AUTH=XOAUTH2 SASL-IR");
    await send(`${tag} OK CAPABILITY completed.`);
    line = await receive();
    if (line === null) return;
    tag = line.split(" ")[0];
  }
  let sasl = imap ? line.split(" ")[3] ?? "" : "";
  if (sasl === "") {
    await send("+ ");
    sasl = (await receive()) ?? "";
  }
  switch (fault) {
    case "close-mid-authenticate":
      return;
    case "wrong-tag":
      await send("A99 OK AUTHENTICATE completed.");
      return await waitForClient();
    case "echo-credentials":
      await send(
        imap
          ? `${tag} NO AUTHENTICATE failed for ${sasl} (token ${tokenOf(sasl)})`
          : `-ERR Authentication failure for ${sasl} (token ${tokenOf(sasl)})`,
      );
      return await waitForClient();
  }
  await send(imap ? `${tag} OK AUTHENTICATE completed.` : "+OK User successfully authenticated.");

  // After the login: LIST (IMAP) or STAT (POP3), then LOGOUT/QUIT.
  while ((line = await receive()) !== null) {
    tag = line.split(" ")[0];
    if (!imap) {
      if (/^STAT$/i.test(line)) await send("+OK 2 2048");
      else if (/^QUIT$/i.test(line)) return await send("+OK Fault server signing off.");
      else await send("-ERR Unknown command.");
      continue;
    }
    const command = (line.split(" ")[1] ?? "").toUpperCase();
    if (command === "LIST") {
      if (fault === "endless-list" || fault === "trickle-list") {
        for (let n = 0; !closing.aborted; n++) {
          await send(`* LIST (\\HasNoChildren) "/" "Folder ${n} of a server that never stops"`);
          if (fault === "trickle-list") await sleep(100, closing);
        }
        return;
      }
      await send('* LIST (\\HasNoChildren) "/" INBOX');
      await send(
        fault === "nul-invalid-utf8"
          ? concat('* LIST (\\HasNoChildren) "/" "Odd ', HOSTILE_BYTES, '"')
          : '* LIST (\\HasNoChildren) "/" "Sent Items"',
      );
      await send(`${tag} OK LIST completed.`);
    } else if (command === "LOGOUT") {
      await send("* BYE Fault server signing off.");
      return await send(`${tag} OK LOGOUT completed.`);
    } else {
      await send(`${tag} BAD Command unknown.`);
    }
  }
}

export function startMailFault(
  fault: MailFault,
  tls: TlsIdentity,
  protocol: "IMAP" | "POP3" = "IMAP",
): FaultyMailServer {
  if (protocol === "POP3" && /wrong-tag|list/.test(fault)) {
    throw new Error(`${fault} is an IMAP fault`);
  }
  const sessions: MailSessionSeen[] = [];
  const served = serve(
    Deno.listenTls({ hostname: "127.0.0.1", port: 0, cert: tls.certPem, key: tls.keyPem }),
    async (conn, closing) => {
      await conn.handshake();
      const seen: MailSessionSeen = { received: [] };
      sessions.push(seen);
      await mailSession(fault, protocol, conn, closing, seen);
    },
  );
  return { port: served.port, sessions, close: served.close };
}

// ---------------------------------------------------------------------------------------------
// TLS 1.0 only: a real OpenSSL server.
// ---------------------------------------------------------------------------------------------

export interface Tls10Server {
  port: number;
  close(): Promise<void>;
}

/**
 * `openssl s_server -tls1` with the certificate files of `pki`: a server that
 * speaks TLS 1.0 and nothing newer (security level 0, as OpenSSL 3 refuses
 * TLS 1.0 otherwise). Its standard input stays open: s_server quits on EOF.
 */
export async function startTls10Server(pki: ServerPki): Promise<Tls10Server> {
  const child = new Deno.Command("openssl", {
    args: [
      "s_server",
      "-tls1",
      "-cipher",
      "DEFAULT:@SECLEVEL=0",
      "-accept",
      "127.0.0.1:0",
      "-cert",
      pki.certFile,
      "-key",
      pki.keyFile,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  // s_server prints `ACCEPT 127.0.0.1:PORT` once it listens; the rest of stdout is drained
  // so that it never blocks writing.
  const listening = Promise.withResolvers<number>();
  const drained = (async () => {
    let text = "";
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      if (text.length < 4096) text += chunk;
      const port = Number(/ACCEPT\s+\S*:(\d+)/.exec(text)?.[1] ?? 0);
      if (port) listening.resolve(port);
    }
    listening.resolve(0);
  })();
  const stop = async () => {
    await child.stdin.close().catch(() => {});
    try {
      child.kill("SIGTERM");
    } catch {
      // already gone
    }
    await child.status;
    await drained;
    return await stderr;
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  const port = await Promise.race([
    listening.promise,
    new Promise<number>((resolve) => timer = setTimeout(() => resolve(0), 10_000)),
  ]);
  clearTimeout(timer);
  if (port === 0) throw new Error(`openssl s_server -tls1 did not start: ${await stop()}`);
  return {
    port,
    async close() {
      await stop();
    },
  };
}
