/**
 * `-OutputFormat Token` or `Sasl` answered from the token cache without loading the run: the
 * common case of a mail program's password command, which runs before every fetch. Loading and
 * running the run, its reporter and the translated texts cost such a start ~7 ms of the ~30 ms
 * it took on top of Deno's own start (measured with `deno task bench`).
 *
 * This path answers only when the full run would print the value and nothing else. Whenever it
 * could print anything more (a warning, a finding about the token, -Verbose) or must read
 * something only once (a secret or certificate from a pipe), it steps aside and the full run
 * decides, reading the cache again. It changes nothing on the way (a cache open to other users
 * is left for the full run to tighten and report). It decides with the full run's own
 * functions: the secret check (secret.ts), the cache lookup (token_cache.ts), the mix-up check,
 * the protocol choice and claims check (token_check.ts) and the XOAUTH2 string.
 */
import type { Options } from "../cli/options.ts";
import { decodeClaims } from "../diagnose/claims.ts";
import { clientIdIsTenant } from "../diagnose/mixups.ts";
import { buildXoauth2 } from "../sasl/xoauth2.ts";
import { checkSecret } from "./secret.ts";
import { cachedEntry, cacheFolder, openTokenCache } from "./token_cache.ts";
import { judgeToken, xoauth2User } from "./token_check.ts";

/** Devices and process files: a descriptor behind them may be readable only once. */
const SPECIAL = /^\/(dev|proc)\//;

/**
 * A regular file (or a link to one, such as certbot's live/*.pem) that is no device or process
 * file (`/dev/stdin`, `/dev/fd/N` name a descriptor, and a second open may share the first one's
 * position), or nothing at all (a thumbprint).
 */
function readableTwice(path: string | undefined): boolean {
  if (path === undefined) return true;
  if (SPECIAL.test(path)) return false;
  try {
    return Deno.statSync(path).isFile && !SPECIAL.test(Deno.realPathSync(path));
  } catch (error) {
    return error instanceof Deno.errors.NotFound;
  }
}

/** The line to print (the token or the XOAUTH2 string), or undefined: the full run decides. */
export async function cachedOutput(
  options: Options,
  env: (name: string) => string | undefined,
): Promise<string | undefined> {
  if (options.outputFormat !== "Token" && options.outputFormat !== "Sasl") return undefined;
  if (options.verbose || clientIdIsTenant(options.clientId, options.tenantId)) return undefined;
  let secret: string | undefined;
  if (options.parameterSet === "clientcredentialsSecret") {
    // Standard input can be read only once: the full run reads it.
    if (options.secret.from !== "value") return undefined;
    try {
      const checked = checkSecret(options.secret.value);
      if (checked.trimmed) return undefined; // the full run warns about it
      secret = checked.secret;
    } catch {
      return undefined; // the full run reports it
    }
  }
  if (options.parameterSet === "clientcredentialsCertificate") {
    // A FIFO or `<(...)` can be read only once: the full run reads it.
    const { value, keyFile } = options.certificate;
    if (!readableTwice(value) || !readableTwice(keyFile)) return undefined;
  }
  const dir = cacheFolder(options, env);
  if (dir === null) return undefined;
  try {
    let warned = false;
    // Looks only: a cache open to other users is the full run's to tighten and report.
    const cache = await openTokenCache(options, dir, {
      secret,
      warn: () => warned = true,
      lookOnly: true,
    });
    const entry = await cachedEntry(cache, options);
    // A cache that needed a warning (damaged, unsafe) is the full run's to report.
    if (!entry || warned) return undefined;
    const token = entry.accessToken;
    if (judgeToken(options, decodeClaims(token)).check.findings.length > 0) return undefined;
    // Without an XOAUTH2 user the run fails, even for Token output.
    const mailbox = xoauth2User(options, entry.username);
    if (!mailbox) return undefined;
    return options.outputFormat === "Token" ? token : buildXoauth2(mailbox, token);
  } catch {
    // Whatever went wrong, the full run meets it again and reports it properly.
    return undefined;
  }
}
