/**
 * SASL XOAUTH2 (the Google/Microsoft mechanism):
 * base64("user=" + user + "\x01auth=Bearer " + token + "\x01\x01").
 * Pure; the only place that knows the format.
 */

/**
 * Why a mailbox address cannot go into `user=`, or `null` when it can.
 * `\x01` separates the SASL fields and CR/LF/NUL would break the protocol
 * line, so those are refused before any token is requested.
 */
export function mailboxProblem(address: string): string | null {
  // deno-lint-ignore no-control-regex
  if (/[\x00-\x1f\x7f]/.test(address)) return "contains a control character";
  if (/\s/.test(address)) return "contains a space";
  const at = address.lastIndexOf("@");
  if (at <= 0 || at === address.length - 1) return "is not an e-mail address (user@domain)";
  if (address.includes("\\")) return "uses DOMAIN\\user syntax, which OAuth logins do not support";
  return null;
}

function toBase64(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}

/** Builds the base64 XOAUTH2 initial response. Throws on a malformed user or token. */
export function buildXoauth2(user: string, accessToken: string): string {
  const problem = mailboxProblem(user);
  if (problem) throw new TypeError(`XOAUTH2 user ${problem}`);
  // deno-lint-ignore no-control-regex
  if (accessToken === "" || /[\x00-\x20\x7f]/.test(accessToken)) {
    throw new TypeError("XOAUTH2 token is empty or contains control characters");
  }
  return toBase64(`user=${user}\x01auth=Bearer ${accessToken}\x01\x01`);
}

/** Decodes an XOAUTH2 initial response (for tests and transcripts). */
export function parseXoauth2(base64: string): { user: string; token: string } | null {
  let text: string;
  try {
    text = new TextDecoder().decode(Uint8Array.from(atob(base64), (c) => c.charCodeAt(0)));
  } catch {
    return null;
  }
  // deno-lint-ignore no-control-regex
  const m = /^user=([^\x01]*)\x01auth=Bearer ([^\x01]*)\x01\x01$/.exec(text);
  return m ? { user: m[1], token: m[2] } : null;
}
