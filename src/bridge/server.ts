/**
 * The bridge's listeners and sessions: accepts clients, runs each session (local login, upstream
 * login, relay), writes one log line per session, and shuts down cleanly: `shutdown()` stops
 * accepting at once, lets open sessions finish, and closes those still open after the deadline.
 * A listener is plain (loopback only), implicit TLS (`acceptTls` at once) or STARTTLS (plain
 * until the client's STLS/STARTTLS, then `acceptTls`); the session code is the same for all three.
 * Not `Deno.listenTls` for implicit TLS: a Deno TLS connection closed during its handshake keeps
 * the TCP socket open (Deno 2.9.6), so a client that never starts the handshake would hold a
 * socket for good; over `acceptTls` the idle limit closes it like any other silent client.
 * Every session ends within `timeouts.sessionMs` of its start (before the local login within
 * `timeouts.loginMs`), at most `maxSessions` run at once and `maxSessionsPerAddress` from one
 * client address (a connection beyond gets the protocol's temporary refusal), and local logins from a client
 * address with recent failures are slowed across sessions (`login_limiter.ts`); failures logged.
 */
import type { SecureContext } from "node:tls";
import { ConnectionError, toToolError } from "../errors.ts";
import {
  type AccountConfig,
  addressMatches,
  type BridgeConfig,
  type BridgeProtocol,
  type ListenerConfig,
} from "./config.ts";
import { acceptLoop } from "./accept_loop.ts";
import { acceptTls, type BridgeConn } from "./conn.ts";
import { tlsContexts } from "./tls_files.ts";
import { ClientLines } from "./client_lines.ts";
import { CommandLog } from "./command_log.ts";
import type { FrontLines, FrontOutcome } from "./front.ts";
import { imapFront, imapGreeting } from "./imap_front.ts";
import { addressKey, checkSlowed, type FailedLogin, LoginLimiter } from "./login_limiter.ts";
import { verifyPassword } from "./password.ts";
import { POP3_GREETING, pop3Front } from "./pop3_front.ts";
import { SMTP_GREETING, smtpFront, type SmtpFrontOptions } from "./smtp_front.ts";
import { smtpRelay } from "./smtp_relay.ts";
import {
  openSmtpUpstream,
  openUpstream,
  smtpUpstreamOf,
  type UpstreamConnection,
} from "./upstream.ts";
import type { DetachableTransport } from "../mail/tls_transport.ts";
import { relay } from "./relay.ts";
import type { TokenSource } from "./token_source.ts";
import { shown } from "../text.ts";

/** After the upstream login: a byte pipe (POP3, IMAP) or SMTP's checked relay. */
type Upstream =
  | { kind: "bytes"; connection: UpstreamConnection }
  | { kind: "smtp"; transport: DetachableTransport };

/**
 * Each protocol's greeting (IMAP's lists what works before STARTTLS) and state machine; all get
 * the SMTP front's options (FrontOptions plus the allow-list account), the others ignore the extra.
 */
const FRONTS: Record<
  BridgeProtocol,
  {
    greeting: (beforeTls: boolean) => string;
    front: (
      client: FrontLines,
      options: SmtpFrontOptions<Upstream>,
    ) => Promise<FrontOutcome<Upstream>>;
  }
> = {
  POP3: { greeting: () => POP3_GREETING, front: pop3Front },
  IMAP: { greeting: imapGreeting, front: imapFront },
  SMTP: { greeting: () => SMTP_GREETING, front: smtpFront },
};

export interface BridgeDeps {
  tokens: TokenSource;
  /** One line (no newline) for the service log: stderr in production. Never gets a secret. */
  log: (line: string) => void;
  /**
   * `-Verbose`: each session also logs the client's commands before the relay (SMTP: during it
   * too, without the message) and the status of the answers; never a credential (`command_log.ts`).
   */
  verbose?: boolean;
}

export interface RunningBridge {
  /** Where each listener listens (the real port when the configuration said 0). */
  addresses: { protocol: BridgeProtocol; hostname: string; port: number }[];
  /** Sessions open right now. */
  readonly active: number;
  /** Stops accepting; resolves when every session has ended (closed at the deadline). */
  shutdown(): Promise<void>;
}

/** What every session gets: the bridge's dependencies and the failed-login counts it shares. */
interface SessionDeps extends BridgeDeps {
  limiter: LoginLimiter;
}

export function startBridge(config: BridgeConfig, bridgeDeps: BridgeDeps): RunningBridge {
  const deps: SessionDeps = {
    ...bridgeDeps,
    limiter: new LoginLimiter({ baseDelayMs: config.failureDelayMs }),
  };
  const listeners: Deno.Listener[] = [];
  try {
    for (const l of config.listeners) listeners.push(listen(l));
  } catch (error) {
    for (const l of listeners) l.close();
    throw error;
  }
  const sessions = new Set<Promise<void>>();
  /** Sessions open per client address (addressKey: IPv6 per /64). */
  const perAddress = new Map<string, number>();
  const stop = new AbortController();
  let shuttingDown: Promise<void> | undefined;
  const loops = listeners.map(async (listener, i) => {
    const l = config.listeners[i];
    const addr = listener.addr as Deno.NetAddr;
    // One TLS context per TLS listener, made anew when its files change (a renewal).
    const context = l.tls ? tlsContexts(l.tls, peerOf(addr), deps.log) : undefined;
    await acceptLoop(listener, (conn) => {
      if (sessions.size >= config.maxSessions) {
        refuseBusy(l, conn, `${config.maxSessions} sessions open: maxSessions`, deps.log);
        return;
      }
      const from = addressKey((conn.remoteAddr as Deno.NetAddr).hostname);
      const fromThere = perAddress.get(from) ?? 0;
      if (fromThere >= config.maxSessionsPerAddress) {
        refuseBusy(
          l,
          conn,
          `${fromThere} sessions open from ${from}: maxSessionsPerAddress`,
          deps.log,
        );
        return;
      }
      perAddress.set(from, fromThere + 1);
      const session = runSession(l, context, conn, config, deps, stop.signal).catch((error) => {
        deps.log(`bridge: internal error in a session: ${toToolError(error).message}`);
      });
      sessions.add(session);
      session.finally(() => {
        sessions.delete(session);
        const left = (perAddress.get(from) ?? 1) - 1;
        if (left > 0) perAddress.set(from, left);
        else perAddress.delete(from);
      });
    }, {
      label: peerOf(addr),
      log: deps.log,
      stopping: () => shuttingDown !== undefined,
    });
  });
  return {
    addresses: listeners.map((l, i) => {
      const addr = l.addr as Deno.NetAddr;
      return { protocol: config.listeners[i].protocol, hostname: addr.hostname, port: addr.port };
    }),
    get active() {
      return sessions.size;
    },
    shutdown() {
      shuttingDown ??= (async () => {
        for (const l of listeners) l.close();
        await Promise.all(loops);
        const deadline = setTimeout(() => stop.abort(), config.timeouts.shutdownMs);
        try {
          await Promise.all([...sessions]);
        } finally {
          clearTimeout(deadline);
        }
      })();
      return shuttingDown;
    },
  };
}

function listen(l: ListenerConfig): Deno.Listener {
  try {
    return Deno.listen({ hostname: l.address, port: l.port });
  } catch (error) {
    const why = error instanceof Deno.errors.AddrInUse
      ? "the port is in use"
      : error instanceof Error
      ? error.message
      : String(error);
    throw new ConnectionError(`cannot listen on ${l.address}:${l.port} (${why})`, {
      code: "BRIDGE_LISTEN_FAILED",
      cause: error,
    });
  }
}

/** The protocol's temporary refusal for a connection beyond the session limits. */
const BUSY: Record<BridgeProtocol, string> = {
  POP3: "-ERR [SYS/TEMP] Too many sessions, try again later.",
  IMAP: "* BYE [UNAVAILABLE] Too many sessions, try again later.",
  SMTP: "421 4.7.0 Too many sessions, try again later.",
};

/**
 * Refuses a connection beyond `maxSessions` or `maxSessionsPerAddress` (`why` says which, for
 * the log): the protocol's temporary refusal (in plain text; on
 * an implicit TLS listener, which would need a handshake first, the connection is only closed),
 * then closed at once. The refusal is a few bytes into a fresh socket's buffer; the close waits
 * for it at most a second.
 */
function refuseBusy(
  l: ListenerConfig,
  conn: Deno.Conn,
  why: string,
  log: (line: string) => void,
): void {
  log(`bridge: ${l.protocol} ${peerOf(conn.remoteAddr as Deno.NetAddr)} result=refused (${why})`);
  if (l.tls?.mode === "implicit") {
    closeQuietly(conn);
    return;
  }
  const timer = setTimeout(() => closeQuietly(conn), 1000);
  conn.write(new TextEncoder().encode(`${BUSY[l.protocol]}\r\n`)).catch(() => {}).finally(() => {
    clearTimeout(timer);
    closeQuietly(conn);
  });
}

function peerOf(addr: Deno.NetAddr): string {
  return addr.hostname.includes(":")
    ? `[${addr.hostname}]:${addr.port}`
    : `${addr.hostname}:${addr.port}`;
}

/** Waits `ms`, or less when `stop` fires (the shutdown deadline must not wait for it). */
function sleepUnless(ms: number, stop: AbortSignal): Promise<void> {
  if (ms <= 0 || stop.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      stop.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    stop.addEventListener("abort", done);
  });
}

async function runSession(
  listener: ListenerConfig,
  context: (() => SecureContext) | undefined,
  raw: Deno.Conn,
  config: BridgeConfig,
  deps: SessionDeps,
  stop: AbortSignal,
): Promise<void> {
  const started = performance.now();
  const protocol = listener.protocol;
  const remote = raw.remoteAddr as Deno.NetAddr;
  const peer = peerOf(remote);
  /** The client's connection: `raw`, or its TLS (implicit, or after STARTTLS). */
  let conn: BridgeConn = raw;
  let secure = false;
  const address = remote.hostname;
  /** The address as failed logins are counted (IPv6 per /64). */
  const from = addressKey(address);
  // SMTP's relay reads the message as lines too: room for long ones.
  const client = new ClientLines(conn, config.timeouts.idleMs, protocol === "SMTP" ? 65536 : 1024);
  const verbose = deps.verbose
    ? (text: string) => deps.log(`bridge: ${protocol} ${peer} ${text}`)
    : undefined;
  if (verbose) client.observer = new CommandLog(protocol, verbose);
  const onStop = () => closeQuietly(conn);
  /** The TLS handshake within the idle time; then the session goes on over TLS. */
  const startTls = async (tls: SecureContext): Promise<boolean> => {
    try {
      conn = await acceptTls(raw, tls, config.timeouts.idleMs);
    } catch {
      client.ended = "TLS handshake failed";
      return false;
    }
    client.switchTo(conn);
    secure = true;
    verbose?.("TLS started");
    return true;
  };
  // A device on the SMTP allow-list sends as its account without AUTH.
  const allowed = listener.allowWithoutAuth?.find((a) =>
    addressMatches(a.address, remote.hostname)
  );
  stop.addEventListener("abort", onStop);
  // The whole session's time: closes the client (and, for SMTP, the upstream) when it is up;
  // the byte relay gets what is left and ends itself ("session limit").
  let expired = false;
  let onExpiry: (() => void) | undefined;
  const sessionTimer = setTimeout(() => {
    expired = true;
    closeQuietly(conn);
    onExpiry?.();
  }, config.timeouts.sessionMs);
  // The local login's deadline: the idle limit restarts with every byte, so without it a client
  // sending a byte now and then would hold a session (and its descriptor) for sessionMs.
  let loginExpired = false;
  const loginTimer = setTimeout(() => {
    loginExpired = true;
    closeQuietly(conn);
  }, config.timeouts.loginMs);
  const loggedIn = () => clearTimeout(loginTimer);
  /** Why the client's side ended before the login. */
  const clientEnd = () =>
    expired
      ? "session limit"
      : loginExpired
      ? "login timeout"
      : `client ${client.ended ?? "closed"}`;
  const logFailure = (user: string, failed: FailedLogin, why: string) =>
    deps.log(
      `bridge: ${protocol} ${peer} failed login user='${shown(user, 64)}'${why}: ` +
        `${failed.failures} failure(s) from ${from} within ${
          Math.round(deps.limiter.forgetMs / 60_000)
        } min of each other; the next login from there waits ${failed.delayMs / 1000} s`,
    );
  /**
   * The user of a right password the front did not follow with `openUpstream`: it refused the
   * login after the check (AUTH PLAIN for another authorization identity, which checkLogin cannot
   * see). Counted as a failure like a wrong password when the next attempt comes or the session
   * ends, so that such logins are slowed too.
   */
  let refusedSuccess: string | undefined;
  const countRefusedSuccess = () => {
    if (refusedSuccess === undefined) return;
    const user = refusedSuccess;
    refusedSuccess = undefined;
    logFailure(user, deps.limiter.failed(from), " (for another authorization identity)");
  };
  let account: AccountConfig | undefined;
  let result = "closed";
  let up = 0;
  let down = 0;
  const upstream = config.upstream[protocol];
  const { greeting, front } = FRONTS[protocol];
  try {
    if (listener.tls?.mode === "implicit" && context && !(await startTls(context()))) {
      result = clientEnd();
      return;
    }
    const beforeTls = listener.tls?.mode === "starttls";
    if (!(await client.write(greeting(beforeTls)))) return;
    const outcome = await front(client, {
      // No delay in the front: checkLogin waits before each check for the address's failures.
      secure,
      withoutAuth: allowed && config.accounts.get(allowed.account),
      startTls: beforeTls && context ? () => startTls(context()) : undefined,
      async checkLogin(user, password) {
        countRefusedSuccess();
        // Waits first for the address's recent failures, whatever the outcome (login_limiter.ts).
        const attempt = await checkSlowed(deps.limiter, address, async () => {
          const found = config.accounts.get(user.toLowerCase());
          return (await verifyPassword(password, found?.passwordHash)) ? found : undefined;
        }, (ms) => sleepUnless(ms, stop));
        if (attempt.failed) logFailure(user, attempt.failed, "");
        else refusedSuccess = user;
        return attempt.account;
      },
      async openUpstream(a) {
        // Logged in locally (or, for SMTP, allowed without AUTH by its address): the front calls
        // this only for a login it accepted.
        refusedSuccess = undefined;
        loggedIn();
        const target = {
          host: upstream.host,
          port: upstream.port,
          caCerts: config.caCerts,
          timeoutMs: config.timeouts.upstreamMs,
        };
        try {
          if (protocol === "SMTP") {
            const transport = await openSmtpUpstream(target, a.mailbox, deps.tokens);
            return { ok: true, upstream: { kind: "smtp", transport } };
          }
          const connection = await openUpstream(protocol, target, a.mailbox, deps.tokens);
          return { ok: true, upstream: { kind: "bytes", connection } };
        } catch (error) {
          const e = toToolError(error);
          return { ok: false, reason: `${e.code ?? e.kind}: ${e.message}` };
        }
      },
    });
    switch (outcome.kind) {
      case "relay": {
        account = outcome.account;
        if (outcome.upstream.kind === "smtp") {
          const transport = outcome.upstream.transport;
          const onStopSmtp = () => transport.close();
          stop.addEventListener("abort", onStopSmtp);
          onExpiry = onStopSmtp;
          if (expired) onStopSmtp();
          try {
            const r = await smtpRelay(client, smtpUpstreamOf(transport), account.mailbox, {
              secure,
              pending: outcome.pending,
              allowedSenders: account.allowedSenders,
            });
            const end = expired
              ? "session limit"
              : r.end === "client closed" && client.ended === "idle"
              ? "idle"
              : r.end;
            result = `relayed (${end}, ${r.messages} message(s)` +
              (r.refusedSenders > 0 ? `, ${r.refusedSenders} sender(s) refused` : "") +
              // For the audit: addresses other than the mailbox it sent as (from the config).
              (r.sentAs.length > 0 ? `, as allowed sender(s) ${r.sentAs.join(" ")}` : "") +
              // For the audit: this session skipped AUTH by its address.
              (outcome.pending !== undefined ? ", without AUTH by allowWithoutAuth" : "") + ")";
          } finally {
            stop.removeEventListener("abort", onStopSmtp);
            transport.close();
          }
          break;
        }
        stop.removeEventListener("abort", onStop);
        clearTimeout(sessionTimer);
        const { connection } = outcome.upstream;
        verbose?.("relay started (the session's commands are not logged from here)");
        const r = await relay(conn, connection.conn, {
          idleMs: config.timeouts.idleMs,
          clientRest: client.takeRest(),
          serverRest: connection.rest,
          stop,
          limitMs: started + config.timeouts.sessionMs - performance.now(),
        });
        up = r.up;
        down = r.down;
        result = `relayed (${expired ? "session limit" : r.end})`;
        break;
      }
      case "upstream-failed":
        account = outcome.account;
        result = `upstream failed (${oneLine(outcome.reason)})`;
        break;
      case "quit":
        result = outcome.failures > 0 ? `quit after ${outcome.failures} failed logins` : "quit";
        break;
      case "refused":
        result = `refused after ${outcome.failures} failed logins`;
        break;
      case "protocol error":
        result = `protocol error (${outcome.reason})`;
        break;
      case "gone":
        result = clientEnd() +
          (outcome.failures > 0 ? ` after ${outcome.failures} failed logins` : "");
        break;
    }
  } finally {
    countRefusedSuccess();
    clearTimeout(sessionTimer);
    clearTimeout(loginTimer);
    stop.removeEventListener("abort", onStop);
    closeQuietly(conn);
    const ms = Math.round(performance.now() - started);
    deps.log(
      `bridge: ${protocol} ${peer} user=${account?.name ?? "-"} mailbox=${
        account?.mailbox ?? "-"
      } ` +
        `upstream=${upstream.host}:${upstream.port} result=${result} ` +
        `bytes_in=${client.bytesIn + up} bytes_out=${client.bytesOut + down} ms=${ms}` +
        (listener.tls ? ` tls=${secure ? listener.tls.mode : "none"}` : ""),
    );
  }
}

function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, " ").slice(0, 300);
}

function closeQuietly(conn: BridgeConn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}
