/**
 * A TLS listener's certificate and key, read again when their files change. ACME clients such as
 * certbot renew certificates every 60-90 days by replacing the files (or the links to them); a
 * bridge that kept the pair it started with would serve an expired certificate until restarted.
 *
 * The files are looked at (one `stat` each) whenever a client starts TLS: new sessions get the
 * new pair, running ones keep theirs. A new pair is checked as at start (parses, the key fits the
 * certificate); one that does not (a renewal written halfway, a file missing for a moment) keeps
 * the previous pair and is logged once, and is looked at again on the next connection.
 */
import { X509Certificate } from "node:crypto";
import { createSecureContext, type SecureContext } from "node:tls";
import { type ListenerTls, tlsPairProblem } from "./config.ts";
import { messageOf } from "../errors.ts";

/** What the bridge needs of the file system (tests pass their own). */
export interface TlsFileSystem {
  stat(path: string): { mtime: Date | null; size: number; ino: number | null };
  read(path: string): string;
}

const DENO_FILES: TlsFileSystem = { stat: Deno.statSync, read: Deno.readTextFileSync };

/** When a file last changed, as far as `stat` tells (following links, as certbot's live/ are). */
function stamp(files: TlsFileSystem, path: string): string {
  const info = files.stat(path);
  return `${info.mtime?.getTime()}/${info.size}/${info.ino}`;
}

/** Until when a PEM certificate is valid, as the log shows it. */
function validTo(certificate: string): string {
  return new Date(new X509Certificate(certificate).validTo).toISOString();
}

/**
 * The listener's current TLS context, as a function to call when a client starts TLS. `label`
 * names the listener in log lines (e.g. `127.0.0.1:995`).
 */
export function tlsContexts(
  tls: ListenerTls,
  label: string,
  log: (line: string) => void,
  files: TlsFileSystem = DENO_FILES,
): () => SecureContext {
  const pair = () => `${stamp(files, tls.certificateFile)} ${stamp(files, tls.keyFile)}`;
  let context = createSecureContext({ cert: tls.certificate, key: tls.key });
  // The pair read at start; a file that cannot be looked at now is looked at again later.
  let current = tryStamp(pair);
  /** The last state that could not be used, so that each is logged once. */
  let refused: string | undefined;
  return () => {
    const now = tryStamp(pair);
    if (now === current) return context;
    const state = now ?? "unreadable";
    if (state === refused) return context;
    let why: string | undefined;
    let certificate = "";
    let key = "";
    if (now === undefined) {
      why = `cannot look at ${tls.certificateFile} or ${tls.keyFile}`;
    } else {
      try {
        certificate = files.read(tls.certificateFile);
        key = files.read(tls.keyFile);
        why = tlsPairProblem(certificate, key, tls.certificateFile, tls.keyFile)?.why;
      } catch (error) {
        why = `cannot read it (${messageOf(error)})`;
      }
    }
    if (why !== undefined) {
      refused = state;
      log(
        `bridge: ${label}: the changed TLS certificate is not used: ${why}; still serving the previous one`,
      );
      return context;
    }
    context = createSecureContext({ cert: certificate, key });
    current = now;
    refused = undefined;
    log(
      `bridge: ${label}: TLS certificate reloaded from ${tls.certificateFile} ` +
        `(valid until ${validTo(certificate)})`,
    );
    return context;
  };
}

function tryStamp(pair: () => string): string | undefined {
  try {
    return pair();
  } catch {
    return undefined;
  }
}
