/**
 * One mail session: connect, log in with XOAUTH2, prove the mailbox works,
 * log out. Shared by the single-mailbox run and the many-mailbox run.
 */
import type { Options } from "./cli/options.ts";
import type { Checklist } from "./diagnose/checklist.ts";
import { connectPlain, connectTls, type StartTlsTransport } from "./mail/tls_transport.ts";
import { runSmtp } from "./mail/smtp.ts";
import { dialThroughProxy } from "./mail/proxy.ts";
import { runImap } from "./mail/imap.ts";
import { runPop3 } from "./mail/pop3.ts";
import type { LineTransport } from "./mail/transport.ts";
import { AuthError, MailboxError } from "./errors.ts";

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

export async function mailSession(
  options: Options,
  sink: SessionSink,
  sasl: string,
  checks?: Checklist,
): Promise<SessionOutcome> {
  sink.progress(`Connect to ${options.server}:${options.port} (${options.protocol}).`);
  checks?.start("server");
  const smtp = options.protocol === "SMTP";
  const proxy = options.proxy;
  // Through -Proxy the mail connection is a CONNECT tunnel; TLS runs inside it, end to end.
  const dial = proxy
    ? () =>
      dialThroughProxy({
        proxy,
        host: options.server,
        port: options.port,
        timeoutMs: options.timeoutSeconds * 1000,
      })
    : undefined;
  // SMTP submission starts in plain text and upgrades with STARTTLS; IMAP/POP3 use implicit TLS.
  const transport = smtp
    ? await connectPlain({
      host: options.server,
      port: options.port,
      timeoutMs: options.timeoutSeconds * 1000,
      dial,
    })
    : await connectTls({
      host: options.server,
      port: options.port,
      caCerts: options.caCerts,
      timeoutMs: options.timeoutSeconds * 1000,
      dial,
    });
  try {
    checks?.pass("server");
    checks?.start("login");
    const callbacks = {
      sasl,
      onLine: (dir: "C" | "S", line: string) => sink.line(dir, line),
      onProgress: (step: string, message: string) => {
        // The session moves past login only once the server accepted it.
        if (
          step === "list" || step === "stat" || (smtp && (step === "send" || step === "logout"))
        ) {
          checks?.pass("login");
          checks?.start("mailbox");
        }
        sink.progress(message);
      },
    };
    const outcome: SessionOutcome = {};
    try {
      if (smtp) {
        const result = await runSmtp(transport as StartTlsTransport, {
          ...callbacks,
          mailbox: options.mailbox!,
          tls: { hostname: options.server, caCerts: options.caCerts },
          sendTestMessageTo: options.sendTestMessageTo,
        });
        if (result.queued) outcome.queued = result.queued;
      } else if (options.protocol === "IMAP") {
        outcome.folders = (await runImap(transport, callbacks)).folders;
      } else {
        const stat = await runPop3(transport, callbacks);
        outcome.messages = { count: stat.count, octets: stat.octets };
      }
    } catch (error) {
      // The server refused the login or the mailbox but still talks: say goodbye,
      // so it frees the session (Exchange limits sessions per mailbox).
      if (error instanceof AuthError || error instanceof MailboxError) {
        await transport.writeLine(options.protocol === "IMAP" ? "Z99 LOGOUT" : "QUIT")
          .then(() => serverClose(transport), () => {});
      }
      throw error;
    }
    checks?.pass("mailbox");
    await serverClose(transport);
    return outcome;
  } finally {
    transport.close();
  }
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
