/**
 * What every protocol front of the bridge (POP3, IMAP) shares: the client's lines as the state
 * machine sees them, the local password check and upstream login it is given, and how a
 * session before the relay can end. A front checks the password locally first and calls
 * `openUpstream` only after a successful local login.
 */
import type { AccountConfig } from "./config.ts";

/** The client's side as the state machine sees it (ClientLines in production). */
export interface FrontLines {
  /** The next line without its line end; null when the client is gone (closed, idle, ...). */
  readLine(): Promise<string | null>;
  /** Sends lines; false when the client is gone. */
  write(...lines: string[]): Promise<boolean>;
}

export type UpstreamAttempt<U> =
  | { ok: true; upstream: U }
  | { ok: false; reason: string };

export interface FrontOptions<U> {
  /** The account when `password` is right for `user`, else undefined (slow: scrypt). */
  checkLogin(user: string, password: string): Promise<AccountConfig | undefined>;
  /** Logs in upstream for the account; called only after a successful local login. */
  openUpstream(account: AccountConfig): Promise<UpstreamAttempt<U>>;
  /** Failed logins after which the session is closed; default 3. */
  maxFailures?: number;
  /** The connection is TLS from the first byte (an implicit TLS listener). */
  secure?: boolean;
  /**
   * Only on a STARTTLS listener: after the front sent its go-ahead to STLS/STARTTLS, switches
   * the client's lines to TLS (dropping anything pipelined); false when the handshake failed.
   */
  startTls?: () => Promise<boolean>;
}

/**
 * Where a session stands with TLS. On a STARTTLS listener, before the upgrade, a front offers
 * STARTTLS and refuses every login, so no password crosses the network in plain text.
 */
export class FrontTls {
  #secure: boolean;
  readonly #startTls: (() => Promise<boolean>) | undefined;

  constructor(options: Pick<FrontOptions<unknown>, "secure" | "startTls">) {
    this.#secure = options.secure ?? false;
    this.#startTls = options.startTls;
  }

  /** Before STARTTLS on a STARTTLS listener: offer it, refuse logins. */
  get required(): boolean {
    return !this.#secure && this.#startTls !== undefined;
  }

  /**
   * Answers a STARTTLS (POP3: STLS) command in the front's words and, where TLS may start, runs
   * the handshake after the go-ahead: "upgraded" (the client starts over on TLS), "answered"
   * (already active, or not on this listener), "gone" (the client or the handshake failed).
   */
  async command(
    client: FrontLines,
    replies: { goAhead: string; active: string; unavailable: string },
  ): Promise<"upgraded" | "answered" | "gone"> {
    if (this.#secure) {
      await client.write(replies.active);
      return "answered";
    }
    if (!this.#startTls) {
      await client.write(replies.unavailable);
      return "answered";
    }
    if (!(await client.write(replies.goAhead)) || !(await this.#startTls())) return "gone";
    this.#secure = true;
    return "upgraded";
  }
}

export type FrontOutcome<U> =
  /** Logged in locally and upstream: relay from here. */
  | {
    kind: "relay";
    account: AccountConfig;
    upstream: U;
    /** A command the front read that the relay handles first (SMTP MAIL FROM without AUTH). */
    pending?: string;
  }
  /** The client said goodbye (QUIT, LOGOUT) before logging in. */
  | { kind: "quit"; failures: number }
  /** The client went away (or stayed silent) before logging in. */
  | { kind: "gone"; failures: number }
  /** Too many wrong passwords: the session was closed. */
  | { kind: "refused"; failures: number }
  /** The client broke the protocol so that the rest of its input cannot be read: closed. */
  | { kind: "protocol error"; failures: number; reason: string }
  /** The local login was right, the upstream login failed: the client got a temporary failure. */
  | { kind: "upstream-failed"; account: AccountConfig; reason: string };

/** What a front answers after a local password check, in its protocol. */
export interface LoginReplies {
  /** A wrong password; the client may try again. */
  failed: string[];
  /** The last allowed wrong password: the session closes. */
  tooMany: string[];
  /** The local login was right but the upstream login failed (a temporary failure). */
  upstreamFailed: string[];
  /** Logged in locally and upstream: the relay starts. */
  loggedIn: string[];
}

/**
 * After a front checked a password (`account` undefined: wrong): counts a failure and answers it
 * (closing after `maxFailures`, default 3), or logs in upstream and answers that. The same steps
 * in every protocol, only the replies differ. `"again"` means the client may try once more.
 */
export async function finishLogin<U>(
  client: FrontLines,
  options: FrontOptions<U>,
  account: AccountConfig | undefined,
  failures: number,
  replies: LoginReplies,
): Promise<FrontOutcome<U> | "again"> {
  if (account === undefined) {
    if (failures >= (options.maxFailures ?? 3)) {
      await client.write(...replies.tooMany);
      return { kind: "refused", failures };
    }
    await client.write(...replies.failed);
    return "again";
  }
  const attempt = await options.openUpstream(account);
  if (!attempt.ok) {
    await client.write(...replies.upstreamFailed);
    return { kind: "upstream-failed", account, reason: attempt.reason };
  }
  await client.write(...replies.loggedIn);
  return { kind: "relay", account, upstream: attempt.upstream };
}
