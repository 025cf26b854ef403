/**
 * SASL XOAUTH2 (the Google/Microsoft mechanism):
 * base64("user=" + user + "\x01auth=Bearer " + token + "\x01\x01").
 * Pure; the only place that knows the format.
 */

import { TokenError, UsageError } from "../errors.ts";
import { lookAlike } from "../text.ts";
import { base64, fromBase64 } from "../base64.ts";

/**
 * Why a mailbox address cannot go into `user=`, or `null` when it can.
 * `\x01` separates the SASL fields and CR/LF/NUL would break the protocol
 * line, so those are refused before any token is requested. So is what
 * copying from a web page, Outlook or Excel leaves behind (quotes, invisible
 * characters, `mailto:`, a list separator, a trailing dot): Exchange would
 * only refuse the login, and the advice would then quote the damaged address.
 */
export function mailboxProblem(address: string): string | null {
  // deno-lint-ignore no-control-regex
  if (/[\x00-\x1f\x7f]/.test(address)) return "contains a control character";
  // A lone UTF-16 surrogate (argv on Windows can carry one) would go out as U+FFFD: another mailbox.
  if (!address.isWellFormed()) return "contains an invalid character";
  if (/^mailto:/i.test(address)) return "starts with mailto:; give the address alone";
  if (/"/.test(address) || /^'|'$/.test(address)) {
    return "is in quotes; give the address without them";
  }
  const odd = lookAlike(address);
  if (odd) {
    return `contains ${odd}, an invisible or look-alike character (copied from a document or ` +
      "web page?); type the address again";
  }
  if (/\s/.test(address)) return "contains a space";
  if (/[,;]/.test(address)) return "contains a list separator (, or ;); give one address";
  if (/[<>]/.test(address)) return "contains < or >; give the address alone, without a name";
  const at = address.lastIndexOf("@");
  if (at <= 0 || at === address.length - 1) return "is not an e-mail address (user@domain)";
  if (address.includes("\\")) return "uses DOMAIN\\user syntax, which OAuth logins do not support";
  if (address.indexOf("@") !== at) return "contains more than one @";
  const domain = address.slice(at + 1);
  if (domain.endsWith(".")) return "ends with a dot";
  if (domain.startsWith(".") || domain.includes("..")) return "has an empty part in its domain";
  return null;
}

function toBase64(text: string): string {
  return base64(new TextEncoder().encode(text));
}

/**
 * Builds the base64 XOAUTH2 initial response. A malformed user is a `UsageError` (the mailbox
 * comes from the parameters or the signed-in account), a malformed token a `TokenError` (it
 * comes from Entra ID): typed, so that neither ends as an unexplained internal error.
 */
export function buildXoauth2(user: string, accessToken: string): string {
  const problem = mailboxProblem(user);
  if (problem) {
    throw new UsageError(
      `the mailbox for the XOAUTH2 login ${problem}; give it as user@domain with ` +
        "-targetMailbox or -SharedMailbox",
      { code: "BAD_MAILBOX" },
    );
  }
  // deno-lint-ignore no-control-regex
  if (accessToken === "" || /[\x00-\x20\x7f]/.test(accessToken) || !accessToken.isWellFormed()) {
    throw new TokenError("the access token is empty or contains control or invalid characters", {
      code: "BAD_TOKEN",
    });
  }
  return toBase64(`user=${user}\x01auth=Bearer ${accessToken}\x01\x01`);
}

/** Decodes an XOAUTH2 initial response (for tests and transcripts). */
export function parseXoauth2(base64: string): { user: string; token: string } | null {
  let text: string;
  try {
    text = new TextDecoder().decode(fromBase64(base64));
  } catch {
    return null;
  }
  // deno-lint-ignore no-control-regex
  const m = /^user=([^\x01]*)\x01auth=Bearer ([^\x01]*)\x01\x01$/.exec(text);
  return m ? { user: m[1], token: m[2] } : null;
}
