/**
 * Fakes for the bridge's protocol fronts and SMTP relay (src/bridge/*_test.ts): a client that
 * sends scripted lines and records the answers, and front options whose password check and
 * upstream login record what they were asked.
 */
import type { AccountConfig } from "../../src/bridge/config.ts";
import type { FrontLines, FrontOptions } from "../../src/bridge/front.ts";

/** The account whose password is `pass word`. */
export const ACCOUNT: AccountConfig = {
  name: "scanner",
  mailbox: "box@contoso.com",
  passwordHash: "h",
};

/** A client that sends `input` line by line (then goes away) and records what it got. */
export function client(input: string[]): FrontLines & { got: string[] } {
  const queue = [...input];
  const got: string[] = [];
  return {
    got,
    readLine: () => Promise.resolve(queue.length > 0 ? queue.shift() ?? null : null),
    write: (...lines) => {
      got.push(...lines);
      return Promise.resolve(true);
    },
  };
}

/** Options that accept `scanner`/`pass word` and log in upstream ("conn") unless `down`. */
export function options(events: string[], upstream: "ok" | "down" = "ok"): FrontOptions<string> {
  return {
    checkLogin: (user, password) => {
      events.push(`check ${user}`);
      return Promise.resolve(user === "scanner" && password === "pass word" ? ACCOUNT : undefined);
    },
    openUpstream: (account) => {
      events.push(`upstream ${account.mailbox}`);
      return Promise.resolve(
        upstream === "ok" ? { ok: true, upstream: "conn" } : { ok: false, reason: "TIMEOUT" },
      );
    },
  };
}

/** options() on a STARTTLS listener whose handshake succeeds, recording "tls" in `events`. */
export function tlsOptions(events: string[]): FrontOptions<string> {
  return {
    ...options(events),
    startTls: () => {
      events.push("tls");
      return Promise.resolve(true);
    },
  };
}

/** A SASL PLAIN response (base64 of authzid NUL user NUL password). */
export const plain = (authzid: string, user: string, password: string): string =>
  btoa(`${authzid}\0${user}\0${password}`);
