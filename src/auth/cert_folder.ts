/**
 * The certificate folder: where `-clientcertificate <thumbprint>` looks for certificate files,
 * besides the certificate store (`store_signer.ts`; the order per system is in
 * `certificate.ts`). A folder works on every platform without PowerShell, and it reads what
 * .NET itself keeps on Linux (`~/.dotnet/corefx/cryptography/x509stores/my`, PFX files
 * without a password).
 *
 * This module knows where the folder is, which files in it count, and how to pick the one
 * whose certificate has a given thumbprint. Reading a file is injected (`CandidateReader`),
 * so certificate parsing stays in `certificate.ts` without an import cycle.
 */

import { posix, win32 } from "node:path";
import { messageOf, UsageError } from "../errors.ts";

/** Environment variable that overrides the default folder. */
export const CERT_DIR_ENV = "GET_IMAPACCESSTOKEN_CERT_DIR";

const APP_DIR = "get-imapaccesstoken";

/** File name endings considered in the folder (compared case-insensitively). */
const CANDIDATE_EXTENSIONS = [".pem", ".crt", ".cer", ".pfx", ".p12"];

/**
 * The certificate folder for `os`: `GET_IMAPACCESSTOKEN_CERT_DIR` if set, otherwise
 * Linux and other Unix `$XDG_CONFIG_HOME/get-imapaccesstoken/certs` (fallback `~/.config`),
 * macOS `~/Library/Application Support/get-imapaccesstoken/certs`,
 * Windows `%APPDATA%\get-imapaccesstoken\certs`.
 */
export function defaultCertDir(
  os: typeof Deno.build.os,
  env: (name: string) => string | undefined,
): string {
  const override = env(CERT_DIR_ENV)?.trim();
  if (override) return override;
  const unknown = () =>
    new UsageError(
      `-clientcertificate: cannot tell where the certificate folder is; set ${CERT_DIR_ENV}`,
    );
  if (os === "windows") {
    const profile = env("USERPROFILE");
    const appData = env("APPDATA") || (profile && win32.join(profile, "AppData", "Roaming"));
    if (!appData) throw unknown();
    return win32.join(appData, APP_DIR, "certs");
  }
  const home = env("HOME");
  if (os === "darwin") {
    if (!home) throw unknown();
    return posix.join(home, "Library", "Application Support", APP_DIR, "certs");
  }
  // The XDG spec says a relative XDG_CONFIG_HOME is invalid and must be ignored.
  const xdg = env("XDG_CONFIG_HOME");
  const configHome = xdg && posix.isAbsolute(xdg) ? xdg : home && posix.join(home, ".config");
  if (!configHome) throw unknown();
  return posix.join(configHome, APP_DIR, "certs");
}

/**
 * Returns the upper-case 40-hex-digit SHA-1 thumbprint in `value`, or undefined when it is not
 * one. Spaces and colons are tolerated, and so are the invisible direction marks (U+200E etc.)
 * that Windows' certificate dialog puts in front of the thumbprint when it is copied.
 */
export function normalizeThumbprint(value: string): string | undefined {
  const compact = value.replace(/[\s:\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]/g, "");
  return /^[0-9a-fA-F]{40}$/.test(compact) ? compact.toUpperCase() : undefined;
}

/** True for a file name the folder search considers. */
export function isCandidateName(name: string): boolean {
  const lower = name.toLowerCase();
  return CANDIDATE_EXTENSIONS.some((ext) => lower.endsWith(ext));
}

/**
 * Reads one candidate file and returns the SHA-1 thumbprints (upper-case hex) of the
 * certificates in it. Throws when the file cannot be read; the message says why (it is
 * shown in the "skipped" list, so it must name no secret).
 */
export type CandidateReader = (path: string) => Promise<string[]>;

/** A file whose certificate has the requested thumbprint. */
export interface StoreMatch {
  path: string;
}

/**
 * The files in `dir` holding a certificate with `thumbprint` (upper-case hex), in name order;
 * or, when there is none, where was looked and why nothing was found, as a phrase for the
 * caller's "no certificate with thumbprint ... in <places>" message (which may name the
 * certificate store too). Skipped files are listed, because a PFX that needs a password is
 * the likely reason its certificate was not found.
 */
export async function findByThumbprint(
  dir: string,
  thumbprint: string,
  read: CandidateReader,
): Promise<{ matches: StoreMatch[] } | { missing: string }> {
  const listed = await listCandidates(dir);
  if ("missing" in listed) return listed;
  const names = listed.names;
  const matches: StoreMatch[] = [];
  const skipped: string[] = [];
  for (const name of names) {
    const path = joinDir(dir, name);
    try {
      if ((await read(path)).includes(thumbprint)) matches.push({ path });
    } catch (error) {
      skipped.push(`${name} (${reasonOf(error)})`);
    }
  }
  if (matches.length > 0) return { matches };
  const why = skipped.length > 0
    ? ` (${skipped.length} file(s) could not be read: ${skipped.join(", ")})`
    : names.length === 0
    ? " (it has no .pem, .crt, .cer, .pfx or .p12 file)"
    : "";
  return { missing: `the folder ${dir}${why}` };
}

async function listCandidates(dir: string): Promise<{ names: string[] } | { missing: string }> {
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      // Symlinks count too: people link certificates from elsewhere into the folder.
      if ((entry.isFile || entry.isSymlink) && isCandidateName(entry.name)) names.push(entry.name);
    }
  } catch (error) {
    const why = error instanceof Deno.errors.NotFound
      ? "does not exist"
      : error instanceof Deno.errors.NotADirectory
      ? "is not a folder"
      : `cannot be read: ${reasonOf(error)}`;
    return { missing: `the folder ${dir} (${why})` };
  }
  // Name order makes the choice between duplicates predictable.
  return { names: names.sort() };
}

/** Joins with the separator the folder path already uses, so Windows paths stay Windows paths. */
function joinDir(dir: string, name: string): string {
  if (dir.endsWith("/") || dir.endsWith("\\")) return dir + name;
  return dir + (dir.includes("\\") && !dir.includes("/") ? "\\" : "/") + name;
}

function reasonOf(error: unknown): string {
  const message = messageOf(error);
  // Reader messages start with the parameter name and repeat the path; keep the reason only.
  return message.replace(/^-\S+: /, "");
}
