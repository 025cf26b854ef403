/**
 * One mail session: connect, log in with XOAUTH2, prove the mailbox works,
 * log out. Shared by the single-mailbox run and the many-mailbox run. It gets
 * only the mail target, the mailbox and the SASL string: nothing about how
 * the token was obtained.
 */
import type { MailTarget } from "../cli/options.ts";
import type { CheckId, Checks } from "../diagnose/checklist.ts";
import { connectPlain, connectTls, type StartTlsTransport } from "../mail/tls_transport.ts";
import { runSmtp } from "../mail/smtp.ts";
import { dialThroughProxy } from "../mail/proxy.ts";
import { runImap } from "../mail/imap.ts";
import { runPop3 } from "../mail/pop3.ts";
import type { LineTransport } from "../mail/transport.ts";
import type { SessionStep } from "../mail/types.ts";
import { AuthError, ConnectionError, MailboxError } from "../errors.ts";
import { Redactor } from "../redact.ts";
import { mark } from "../trace.ts";

/** Where a session's lines and progress go (the reporter, or a per-mailbox collector). */
export interface SessionSink {
  line(dir: "C" | "S", line: string): void;
  progress(message: string): void;
}

export interface SessionOutcome {
  folders?: string[];
  messages?: { count: number; octets: number };
  /** SMTP with -SendTestMessageTo: the server's reply to the message (its queue ID). */
  queued?: string;
}

/** What the session logs in with. */
export interface SessionLogin {
  mailbox: string;
  /** The XOAUTH2 string (sasl/xoauth2.ts built it from `mailbox` and `token`). */
  sasl: string;
  token: string;
}

/** Steps after which the server has accepted the login. */
const PAST_LOGIN: SessionStep[] = ["list", "stat", "send", "logout"];

/**
 * A connection to the mail server opened ahead of the login (while the token request is still
 * in flight): TCP, TLS and the greeting do not depend on the token. `secrets` is the redactor
 * its transport uses; the session adds the token and SASL string once they exist.
 */
export interface EarlyConnection {
  transport: Promise<StartTlsTransport>;
  secrets: Redactor;
  /** Closes the connection when no session will use it (the token request failed). */
  abandon(): void;
}

/**
 * An early connect runs while this process is busy with the token request (loading msal,
 * TLS to Entra ID): a timer could then fire before a finished connect is noticed. So its own
 * limit is wide, and the session waits at most -TimeoutSeconds for it once it needs it.
 */
const EARLY_CONNECT_GRACE_MS = 60_000;

/** Starts connecting to `target` now; the session joins the connection later. */
export function connectEarly(target: MailTarget): EarlyConnection {
  const secrets = new Redactor();
  const transport = openTransport(
    target,
    secrets,
    target.timeoutSeconds * 1000 + EARLY_CONNECT_GRACE_MS,
  );
  // Awaited by the session; until then a failure must not count as unhandled.
  transport.catch(() => {});
  return {
    transport,
    secrets,
    abandon: () => transport.then((t) => t.close(), () => {}),
  };
}

function openTransport(
  target: MailTarget,
  secrets: Redactor,
  connectTimeoutMs?: number,
): Promise<StartTlsTransport> {
  const timeoutMs = target.timeoutSeconds * 1000;
  const proxy = target.proxy;
  // Through -Proxy (unless NO_PROXY exempts the server) the mail connection is a CONNECT
  // tunnel; TLS runs inside it, end to end.
  const dial = proxy
    ? () => dialThroughProxy({ proxy, host: target.server, port: target.port, timeoutMs })
    : undefined;
  // SMTP submission starts in plain text and upgrades with STARTTLS; IMAP/POP3 use implicit TLS.
  return target.protocol === "SMTP"
    ? connectPlain({
      host: target.server,
      port: target.port,
      timeoutMs,
      connectTimeoutMs,
      dial,
      secrets,
    })
    : connectTls({
      host: target.server,
      port: target.port,
      caCerts: target.caCerts,
      timeoutMs,
      connectTimeoutMs,
      dial,
      secrets,
    });
}

export async function mailSession(
  target: MailTarget,
  login: SessionLogin,
  sink: SessionSink,
  checks?: Checks,
  early?: EarlyConnection,
): Promise<SessionOutcome> {
  sink.progress(`Connect to ${target.server}:${target.port} (${target.protocol}).`);
  // A broken or hostile server may echo our credentials (whole or cut short) in a reply that
  // ends up quoted in an error message: the transport removes them from every line it hands up.
  const secrets = early?.secrets ?? new Redactor();
  secrets.add(login.sasl, "<XOAUTH2 string>");
  secrets.add(login.token, "<access token>");
  // The single run charges each phase to its -Diagnose check; a many-mailbox run has none.
  const phase = <T>(id: CheckId, fn: () => Promise<T>) => checks ? checks.run(id, fn) : fn();
  const transport = await phase(
    "server",
    () => early ? joinEarly(early, target) : openTransport(target, secrets),
  );
  mark("connected");
  try {
    const callbacks = {
      sasl: login.sasl,
      onLine: (dir: "C" | "S", line: string) => sink.line(dir, line),
      onProgress: (step: SessionStep, message: string) => {
        // The session moves past login only once the server accepted it.
        if (PAST_LOGIN.includes(step)) checks?.next("mailbox");
        sink.progress(message);
      },
    };
    const dialogue = async (): Promise<SessionOutcome> => {
      switch (target.protocol) {
        case "SMTP": {
          const result = await runSmtp(transport, {
            ...callbacks,
            mailbox: login.mailbox,
            tls: { hostname: target.server, caCerts: target.caCerts },
            sendTestMessageTo: target.sendTestMessageTo,
          });
          return result.queued ? { queued: result.queued } : {};
        }
        case "IMAP":
          return { folders: (await runImap(transport, callbacks)).folders };
        case "POP3": {
          const stat = await runPop3(transport, callbacks);
          return { messages: { count: stat.count, octets: stat.octets } };
        }
      }
    };
    const outcome = await phase("login", dialogue);
    mark("dialogue");
    await serverClose(transport);
    return outcome;
  } catch (error) {
    // The protocol modules said goodbye on a refused login or mailbox; let the server close.
    if (error instanceof AuthError || error instanceof MailboxError) await serverClose(transport);
    throw error;
  } finally {
    transport.close();
  }
}

/** The early connection, if it is ready within -TimeoutSeconds from now. */
async function joinEarly(early: EarlyConnection, target: MailTarget): Promise<StartTlsTransport> {
  const timeoutMs = target.timeoutSeconds * 1000;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"late">((resolve) =>
    timer = setTimeout(() => resolve("late"), timeoutMs)
  );
  try {
    const ready = await Promise.race([early.transport, late]);
    if (ready !== "late") return ready;
  } finally {
    clearTimeout(timer);
  }
  early.abandon();
  throw new ConnectionError(
    `no answer from ${target.server}:${target.port} within ${target.timeoutSeconds} s (connect)`,
    { code: "TIMEOUT" },
  );
}

/**
 * After LOGOUT/QUIT the server closes the connection. Waiting (briefly) for
 * that, instead of closing first, means the server has let go of the session
 * before the next one starts: -ThrottleLimit then holds on the server's side too.
 */
async function serverClose(transport: LineTransport): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const drained = (async () => {
    try {
      for (let i = 0; i < 20; i++) await transport.readLine();
    } catch {
      // EOF (or anything else): the server is done.
    }
  })();
  await Promise.race([drained, new Promise((r) => timer = setTimeout(r, 1000))]);
  clearTimeout(timer);
}
