/**
 * A certificate in the certificate store, found by thumbprint through the PowerShell signer
 * (`store_signer.ts`), with everything the rest of the program needs to know about it. The key
 * stays in the store; what is wrong with it (none, not RSA, no access) is a one-line UsageError
 * naming the store and the certificate.
 */

import { Buffer } from "node:buffer";
import { createHash, X509Certificate } from "node:crypto";
import { UsageError } from "../errors.ts";
import { CERT } from "./certificate_types.ts";
import {
  findPowerShell,
  isFileSync,
  type KeyState,
  POWERSHELL_ENV,
  storesFor,
  StoreSigner,
} from "./store_signer.ts";

export interface StoreCertificate {
  source: "store";
  /** Where it was found, e.g. `CurrentUser\My`. */
  store: string;
  /** The PowerShell that reads the store and signs. */
  powershell: string;
  der: Uint8Array;
  /** Upper-case hex, as Windows and the Entra portal show it. */
  thumbprintSha1: string;
  /** Lower-case hex (as `LoadedCertificate`'s). */
  thumbprintSha256: string;
  subject: string;
  notBefore: Date;
  notAfter: Date;
  warnings: string[];
  /** Signs for the assertion; the caller closes it. */
  signer: StoreSigner;
}

export interface StoreLookup {
  os: typeof Deno.build.os;
  env: (name: string) => string | undefined;
  /** Deadline for each answer of the signer, its start included. */
  timeoutMs: number;
  now: Date;
  validityWarnings: (subject: string, notBefore: Date, notAfter: Date, now: Date) => string[];
}

/**
 * Finds `thumbprint` in the store. `{ missing }` says where it looked (or why it could not) when
 * the certificate is not there; a certificate that is there but cannot sign throws.
 */
export async function openFromStore(
  thumbprint: string,
  lookup: StoreLookup,
): Promise<StoreCertificate | { missing: string }> {
  const powershell = findPowerShell(lookup.os, lookup.env, isFileSync);
  if (!powershell) {
    const which = lookup.os === "windows"
      ? "powershell.exe was not found under %SystemRoot%"
      : "PowerShell 7 (pwsh) is not installed";
    return {
      missing: `the certificate store (not searched: ${which}; ${POWERSHELL_ENV} names one)`,
    };
  }
  const signer = await StoreSigner.start({ powershell, timeoutMs: lookup.timeoutMs });
  try {
    const found = await signer.find(thumbprint, storesFor(lookup.os));
    if (!found.found) {
      await signer.close();
      return { missing: `the certificate store ${found.searched.join(", ")}` };
    }
    const x509 = new X509Certificate(Buffer.from(found.der));
    const subject = x509.subject.split("\n").join(", ");
    const where = `the certificate ${subject} in ${found.store}`;
    if (!found.key.usable) throw keyProblem(found.key, where);
    const notBefore = new Date(x509.validFrom);
    const notAfter = new Date(x509.validTo);
    return {
      source: "store",
      store: found.store,
      powershell,
      der: found.der,
      thumbprintSha1: createHash("sha1").update(found.der).digest("hex").toUpperCase(),
      thumbprintSha256: createHash("sha256").update(found.der).digest("hex"),
      subject,
      notBefore,
      notAfter,
      warnings: lookup.validityWarnings(subject, notBefore, notAfter, lookup.now),
      signer,
    };
  } catch (error) {
    await signer.close();
    throw error;
  }
}

function keyProblem(key: Exclude<KeyState, { usable: true }>, where: string): UsageError {
  switch (key.problem) {
    case "none":
      return new UsageError(
        `${CERT}: ${where} has no private key (the .cer was imported, not the .pfx); import the ` +
          "PFX with its key",
        { code: "CERT_NO_KEY" },
      );
    case "algorithm":
      return new UsageError(
        `${CERT}: the key of ${where} is not an RSA key (${key.algorithm}); Entra ID ` +
          "certificate credentials need RSA",
        { code: "CERT_NOT_RSA" },
      );
    case "inaccessible":
      if (key.code === "CERT_KEY_ACCESS") {
        return new UsageError(
          `${CERT}: the private key of ${where} cannot be used by ${key.account} (${key.reason}); ` +
            "give that account read access to the key (certlm.msc > the certificate > All Tasks > " +
            "Manage Private Keys)",
          { code: "CERT_KEY_ACCESS" },
        );
      }
      return new UsageError(
        `${CERT}: the private key of ${where} cannot be opened (${key.reason})`,
        { code: key.code === "CERT_SIGN_CANCELLED" ? "CERT_SIGN_CANCELLED" : "CERT_SIGN_FAILED" },
      );
  }
}
