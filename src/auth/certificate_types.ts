/**
 * What certificate.ts and pkcs12.ts share: the parameter names their messages start with and
 * the certificates and keys read from a file. A module of its own so that neither imports
 * the other's values in a cycle.
 */

import type { KeyObject } from "node:crypto";

export const CERT = "-clientcertificate";
export const PASSWORD = "-CertificatePassword";
export const KEY_FILE = "-CertificateKeyFile";

/** Certificates and decrypted keys, whatever the file format. */
export interface Contents {
  certs: Uint8Array[];
  keys: KeyObject[];
  /** Types of keys that were found but not read (e.g. `EC`), to explain why none is usable. */
  otherKeys: string[];
}
