/**
 * The one redactor: replaces our own secrets (client secret, certificate and
 * proxy passwords, access token, XOAUTH2 string, request credentials) in text
 * that is about to be shown or quoted. Used by the console (output/), the
 * transport and the sessions (mail/) and the token request's error answers
 * (auth/network.ts).
 */

/** The label of a secret that is quoted back to us and named no better. */
export const REDACTED = "<redacted>";

/**
 * Values under this length are ignored: replacing them would mangle ordinary
 * words ("wrong", "password") in messages, and real secrets and tokens are
 * far longer.
 */
const MIN_SECRET = 8;

/** Shortest start of a secret that still counts as the secret when a server cuts it off. */
const MIN_FRAGMENT = 32;

export class Redactor {
  #secrets: { value: string; label: string }[] = [];

  /** Registers a secret; the longest are replaced first (a token inside a longer string). */
  add(value: string | undefined, label = REDACTED): void {
    if (!value || value.length < MIN_SECRET) return;
    if (this.#secrets.some((s) => s.value === value)) return;
    this.#secrets.push({ value, label });
    this.#secrets.sort((a, b) => b.value.length - a.value.length);
  }

  /**
   * Replaces every registered secret, also where only its beginning (at least
   * 32 characters) appears, as when a server quotes it cut short.
   */
  redact(text: string): string {
    let out = text;
    for (const { value, label } of this.#secrets) out = scrub(out, value, label);
    return out;
  }
}

/** Replaces `secret` in `text` with `label`, whole or cut short to at least MIN_FRAGMENT characters. */
function scrub(text: string, secret: string, label: string): string {
  let out = text.split(secret).join(label);
  if (secret.length <= MIN_FRAGMENT) return out;
  const head = secret.slice(0, MIN_FRAGMENT);
  for (let at = out.indexOf(head); at >= 0; at = out.indexOf(head, at + label.length)) {
    let end = at + MIN_FRAGMENT;
    while (end < out.length && end - at < secret.length && out[end] === secret[end - at]) end++;
    out = out.slice(0, at) + label + out.slice(end);
  }
  return out;
}

/** A redactor for the given secrets, all under one label. */
export function redactorOf(secrets: Iterable<string>, label = REDACTED): Redactor {
  const redactor = new Redactor();
  for (const secret of secrets) redactor.add(secret, label);
  return redactor;
}
