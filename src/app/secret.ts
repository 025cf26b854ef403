/**
 * The client secret as given (`-clientsecret <value>`) or piped (`-clientsecret -`), checked
 * the same way for the token request and the cache lookup. Never echoes the secret.
 */
import type { SecretOptions } from "../cli/options.ts";
import { UsageError } from "../errors.ts";
import { MAX_STDIN_BYTES, readBoundedText } from "../bounded_input.ts";

/** Quotes a copy from a web page, a mail or Excel may put around a value. */
const QUOTES = `"'\u2018\u2019\u201a\u201b\u201c\u201d\u201e\u201f\u00ab\u00bb\u2039\u203a`;

/**
 * `raw` checked: surrounding whitespace (a pasted line break or blank) is removed — Entra's
 * secrets never contain any — and `trimmed` says so; a value wrapped in quotes is refused, as
 * no Entra secret contains quotes.
 */
export function checkSecret(raw: string): { secret: string; trimmed: boolean } {
  const secret = raw.trim();
  if (secret === "") {
    throw new UsageError("-clientsecret: the value is only whitespace; give the secret's Value", {
      code: "EMPTY_VALUE",
    });
  }
  const first = secret[0];
  const last = secret[secret.length - 1];
  if (secret.length >= 2 && QUOTES.includes(first) && QUOTES.includes(last)) {
    const shown = (c: string) =>
      c.charCodeAt(0) < 128
        ? c
        : `U+${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")}`;
    throw new UsageError(
      `-clientsecret: the value is wrapped in quotes (${shown(first)} ... ${shown(last)}); ` +
        "give the secret without them (no Entra ID secret contains quotes)",
      { code: "SECRET_QUOTED" },
    );
  }
  return { secret, trimmed: secret !== raw };
}

/** The secret of the parameter, read from standard input (bounded in size and time) for `-`. */
export async function readSecret(
  options: SecretOptions,
  env: { stdin(): ReadableStream<Uint8Array> },
): Promise<{ secret: string; trimmed: boolean }> {
  if (options.secret.from === "value") return checkSecret(options.secret.value);
  const text = await readBoundedText(env.stdin(), {
    what: "-clientsecret: standard input",
    maxBytes: MAX_STDIN_BYTES,
    timeoutMs: options.timeoutSeconds * 1000,
  });
  const raw = text.replace(/\r?\n$/, "");
  if (raw === "") {
    throw new UsageError("-clientsecret: '-' was given but standard input was empty.", {
      code: "EMPTY_VALUE",
    });
  }
  return checkSecret(raw);
}
