/**
 * The bridge's SMTP server side before the session is relayed: its own greeting and EHLO
 * (AUTH PLAIN LOGIN), AUTH checked locally, and only after a local login succeeded the upstream
 * login (`openUpstream`); then `235` and the caller relays (`smtp_relay.ts`). Nothing is
 * relayed for a client that has not logged in, except for a device on the listener's
 * allow-list (`withoutAuth`): its `MAIL FROM:<the account's mailbox or an allowed sender>`
 * starts the upstream login as that account's mailbox. A state machine over `FrontLines`; it
 * never repeats a password and never says whether a user name exists.
 */
import { decodeSaslResponse, parsePlainResponse, type PlainCredentials } from "../sasl/plain.ts";
import type { AccountConfig } from "./config.ts";
import {
  finishLogin,
  type FrontLines,
  type FrontOptions,
  type FrontOutcome,
  FrontTls,
} from "./front.ts";

export const SMTP_HOST = "localhost";
export const SMTP_GREETING = `220 ${SMTP_HOST} ESMTP Get-IMAPAccessToken SMTP bridge ready`;
/** Honest: no PIPELINING or CHUNKING (the relay checks each command); STARTTLS only before TLS. */
export const SMTP_EHLO = [
  `250-${SMTP_HOST} Get-IMAPAccessToken SMTP bridge`,
  "250-AUTH PLAIN LOGIN",
  "250 ENHANCEDSTATUSCODES",
];
/** A STARTTLS listener before STARTTLS: no AUTH offered (RFC 4954 section 4: not in plain text). */
export const SMTP_EHLO_BEFORE_TLS = [
  `250-${SMTP_HOST} Get-IMAPAccessToken SMTP bridge`,
  "250-STARTTLS",
  "250 ENHANCEDSTATUSCODES",
];
export const SMTP_TLS_REQUIRED = "530 5.7.0 Must issue a STARTTLS command first";
export const SMTP_LOGIN_FAILED = "535 5.7.8 Authentication credentials invalid";
export const SMTP_UPSTREAM_FAILED =
  "454 4.7.0 The mail server cannot be reached right now; try again later.";
export const SMTP_AUTH_REQUIRED = "530 5.7.0 Authentication required";

export interface SmtpFrontOptions<U> extends FrontOptions<U> {
  /** The account of a client on the listener's allow-list: it may send without AUTH. */
  withoutAuth?: AccountConfig;
}

const MAIL_FROM = /^MAIL FROM:\s*<([^<>]*)>(?: .*)?$/i;

/** The sender of a `MAIL FROM:<address> [parameters]` line; undefined when malformed. */
export function senderOf(line: string): string | undefined {
  return MAIL_FROM.exec(line)?.[1];
}

/** Who an account may send as: its mailbox and its `allowedSenders`. */
export interface Senders {
  mailbox: string;
  allowedSenders?: readonly string[];
}

/** The configured spelling of `from` when the account may send as it (ignoring case), else undefined. */
export function allowedSender(senders: Senders, from: string): string | undefined {
  const wanted = from.toLowerCase();
  return [senders.mailbox, ...(senders.allowedSenders ?? [])].find((a) =>
    a.toLowerCase() === wanted
  );
}

/**
 * The reply to a MAIL FROM the account may not use (never sent upstream), or undefined when it
 * may. The null sender `<>` (a bounce) is always refused: a device never sends bounces, and
 * Exchange would put the mailbox there anyway.
 */
export function senderRefusal(senders: Senders, from: string): string | undefined {
  if (from !== "" && allowedSender(senders, from) !== undefined) return undefined;
  const count = senders.allowedSenders?.length ?? 0;
  const others = count > 0 ? ` or its ${count} allowed sender(s)` : "";
  return from === ""
    ? `550 5.7.1 The null sender <> is not relayed; this account sends as <${senders.mailbox}>${others}`
    : `550 5.7.1 This account may send only as <${senders.mailbox}>${others}`;
}

type Credentials = PlainCredentials;
type AuthResult = Credentials | "gone" | { reply: string };

/** Runs the session from after the greeting until the relay can start or the session ends. */
export async function smtpFront<U>(
  client: FrontLines,
  options: SmtpFrontOptions<U>,
): Promise<FrontOutcome<U>> {
  const tls = new FrontTls(options);
  let failures = 0;
  while (true) {
    const line = await client.readLine();
    if (line === null) return { kind: "gone", failures };
    const [verb, ...args] = line.split(" ");
    switch (verb.toUpperCase()) {
      case "EHLO":
        await client.write(...(tls.required ? SMTP_EHLO_BEFORE_TLS : SMTP_EHLO));
        continue;
      case "HELO":
        await client.write(`250 ${SMTP_HOST}`);
        continue;
      case "NOOP":
      case "RSET":
        await client.write("250 2.0.0 OK");
        continue;
      case "QUIT":
        await client.write("221 2.0.0 Bye");
        return { kind: "quit", failures };
      case "STARTTLS":
        // RFC 3207: the client starts over with EHLO; nothing it said before counts.
        if (
          await tls.command(client, {
            goAhead: "220 2.0.0 Ready to start TLS",
            active: "503 5.5.1 TLS is already active",
            unavailable: "502 5.5.1 STARTTLS is not available on this loopback listener.",
          }) === "gone"
        ) {
          return { kind: "gone", failures };
        }
        continue;
      case "":
        await client.write("500 5.5.2 Empty command");
        continue;
      case "AUTH":
        if (tls.required) {
          await client.write(SMTP_TLS_REQUIRED);
          continue;
        }
        break;
      case "MAIL":
        if (!tls.required && options.withoutAuth) {
          const outcome = await sendWithoutAuth(client, options, options.withoutAuth, line);
          if (outcome) return outcome;
          continue;
        }
        await client.write(tls.required ? SMTP_TLS_REQUIRED : SMTP_AUTH_REQUIRED);
        continue;
      default:
        await client.write(tls.required ? SMTP_TLS_REQUIRED : SMTP_AUTH_REQUIRED);
        continue;
    }
    const auth = await authenticate(client, args);
    if (auth === "gone") return { kind: "gone", failures };
    if ("reply" in auth) {
      await client.write(auth.reply);
      continue;
    }
    // Checked even when the answer is already no, so every failure takes the same time.
    const found = await options.checkLogin(auth.user, auth.password);
    const account = auth.actingForOther ? undefined : found;
    if (account === undefined) failures++;
    const end = await finishLogin(client, options, account, failures, {
      failed: [SMTP_LOGIN_FAILED],
      tooMany: ["421 4.7.0 Too many failed logins; closing the connection."],
      upstreamFailed: [SMTP_UPSTREAM_FAILED],
      loggedIn: ["235 2.7.0 Authentication successful"],
    });
    if (end !== "again") return end;
  }
}

/**
 * MAIL FROM from a client on the allow-list: the upstream login happens now, as the mapped
 * account (its mailbox), and only for its mailbox or one of its allowedSenders (so a session
 * that sends nothing costs no upstream login). Undefined when the session goes on in the front.
 */
async function sendWithoutAuth<U>(
  client: FrontLines,
  options: FrontOptions<U>,
  account: AccountConfig,
  line: string,
): Promise<FrontOutcome<U> | undefined> {
  const sender = senderOf(line);
  if (sender === undefined) {
    await client.write("501 5.5.4 Syntax: MAIL FROM:<address>");
    return undefined;
  }
  const refusal = senderRefusal(account, sender);
  if (refusal) {
    await client.write(refusal);
    return undefined;
  }
  const attempt = await options.openUpstream(account);
  if (!attempt.ok) {
    await client.write(SMTP_UPSTREAM_FAILED);
    return { kind: "upstream-failed", account, reason: attempt.reason };
  }
  // The relay sends this MAIL FROM upstream and answers it.
  return { kind: "relay", account, upstream: attempt.upstream, pending: line };
}

/** AUTH PLAIN / AUTH LOGIN (RFC 4954), with or without initial response. */
async function authenticate(client: FrontLines, args: string[]): Promise<AuthResult> {
  const [mechanism = "", initial, extra] = args;
  if (extra !== undefined || mechanism === "") {
    return { reply: "501 5.5.4 Syntax: AUTH mechanism [initial-response]" };
  }
  const ask = async (challenge: string): Promise<string | "gone" | "cancelled"> => {
    if (!(await client.write(`334 ${challenge}`))) return "gone";
    const line = await client.readLine();
    if (line === null) return "gone";
    return line === "*" ? "cancelled" : line;
  };
  const cancelled = { reply: "501 5.0.0 Authentication cancelled" };
  const undecodable = { reply: "501 5.5.2 Cannot decode the response" };
  switch (mechanism.toUpperCase()) {
    case "PLAIN": {
      const response = initial ?? await ask("");
      if (response === "gone") return "gone";
      if (response === "cancelled") return cancelled;
      return parsePlainResponse(response) ?? undecodable;
    }
    case "LOGIN": {
      const userLine = initial ?? await ask(btoa("Username:"));
      if (userLine === "gone") return "gone";
      if (userLine === "cancelled") return cancelled;
      const user = decodeSaslResponse(userLine);
      if (user === undefined) return undecodable;
      const passwordLine = await ask(btoa("Password:"));
      if (passwordLine === "gone") return "gone";
      if (passwordLine === "cancelled") return cancelled;
      const password = decodeSaslResponse(passwordLine);
      if (password === undefined) return undecodable;
      return { user, password, actingForOther: false };
    }
    default:
      return { reply: "504 5.5.4 Unrecognized authentication type; use PLAIN or LOGIN" };
  }
}
