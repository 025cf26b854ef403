/**
 * PKCS#12 (PFX/P12) files for certificate.ts: recognising one by its bytes, and opening it
 * with node-forge (node:crypto cannot read PKCS#12). node-forge is imported only when a PFX
 * file or an old PEM key encryption needs it (`loadForge`), as importing it costs ~90 ms.
 */

import { Buffer } from "node:buffer";
import { createPrivateKey, type KeyObject } from "node:crypto";
// @ts-types="@types/node-forge"
import type forgeTypes from "node-forge";
import { UsageError } from "../errors.ts";
import { CERT, type Contents, PASSWORD } from "./certificate_types.ts";
import { messageOf } from "../errors.ts";

export type Forge = typeof forgeTypes;
let forgeModule: Promise<Forge> | undefined;

/** node-forge takes ~90 ms to import; only PFX files and old key encryptions need it. */
export function loadForge(): Promise<Forge> {
  forgeModule ??= import("node-forge").then((module) => module.default as Forge);
  return forgeModule;
}

/**
 * A PFX starts SEQUENCE { INTEGER 3, SEQUENCE ContentInfo ... }. Checked on the bytes, so a
 * PEM or DER certificate never loads forge.
 */
export function looksLikePfx(der: Uint8Array): boolean {
  if (der[0] !== 0x30) return false;
  let i = 1;
  const length = der[i++];
  // Long form: the low bits count the length bytes. 0x80 alone is BER's indefinite length.
  if (length & 0x80) i += length & 0x7f;
  return der[i] === 0x02 && der[i + 1] === 0x01 && der[i + 2] === 0x03 && der[i + 3] === 0x30;
}

/**
 * Opens a PFX. Without a password both empty-password encodings are tried: OpenSSL writes
 * "" as a BMPString terminator, while .NET (its certificate store on Linux keeps every
 * certificate as `~/.dotnet/corefx/cryptography/x509stores/my/<THUMBPRINT>.pfx`) and Windows
 * use no password bytes at all for the MAC.
 */
export async function openPfx(
  der: Uint8Array,
  password: string | undefined,
  path: string,
): Promise<Contents> {
  const forge = await loadForge();
  const binary = forge.util.binary.raw.encode(der);
  let hasMac: boolean;
  try {
    // Strict here: lenient parsing accepts a truncated file, which then looks like a
    // wrong password.
    const parts = forge.asn1.fromDer(binary, true).value;
    if (!Array.isArray(parts) || parts.length < 2) throw new Error("not a PFX structure");
    hasMac = parts.length >= 3;
  } catch (error) {
    throw new UsageError(`${CERT}: ${path} is a damaged PFX/P12 file`, {
      code: "CERT_UNREADABLE",
      cause: error,
    });
  }
  const noPassword = password === undefined || password === "";
  const attempts = noPassword ? [{ password: "" }, { password: "", absentMac: true }] : [{
    password,
  }];
  let firstError: unknown;
  for (const attempt of attempts) {
    try {
      // Re-parse for every attempt: forge rewrites parts of the ASN.1 tree while decoding.
      const asn1 = forge.asn1.fromDer(binary, true);
      const pfx = attempt.absentMac
        ? withAbsentMacPassword(forge, () => forge.pkcs12.pkcs12FromAsn1(asn1, false, ""))
        : forge.pkcs12.pkcs12FromAsn1(asn1, false, attempt.password);
      return pfxContents(forge, pfx, path);
    } catch (error) {
      if (error instanceof UsageError) throw error;
      firstError ??= error;
    }
  }
  // With a MAC (nearly every PFX) a wrong password fails its check before anything is
  // decrypted, so any other error is about the file. Without one, a wrong password shows up
  // as garbage after decryption; forge's "Unsupported" comes from algorithm identifiers only.
  const message = messageOf(firstError);
  const passwordProblem = /MAC could not be verified/.test(message) ||
    (!hasMac && !/unsupported|integrity mode/i.test(message));
  if (!passwordProblem) {
    throw new UsageError(`${CERT}: cannot read ${path}: ${message}`, {
      code: "CERT_UNREADABLE",
      cause: firstError,
    });
  }
  if (password === undefined) {
    throw new UsageError(
      `${PASSWORD}: ${path} is encrypted; give its password with ${PASSWORD}`,
      { code: "CERT_PASSWORD_NEEDED", cause: firstError },
    );
  }
  throw new UsageError(`${PASSWORD}: wrong password for ${path}`, {
    code: "CERT_PASSWORD_WRONG",
    cause: firstError,
  });
}

/**
 * Runs `open` with forge deriving the PFX's MAC key from an absent password (no bytes) instead
 * of "" (a BMPString terminator). forge has no option for it, but it derives the MAC key
 * through `pkcs12.generateKey`, and only there (decryption calls the PBE functions directly,
 * where "" and an absent password are the same bytes), so swapping that one function for a
 * synchronous call is enough; the MAC is still verified.
 */
function withAbsentMacPassword<T>(forge: Forge, open: () => T): T {
  const pkcs12 = forge.pkcs12 as unknown as {
    generateKey: (password: string | null, ...rest: unknown[]) => unknown;
  };
  const original = pkcs12.generateKey;
  pkcs12.generateKey = (pw, ...rest) => original(pw === "" ? null : pw, ...rest);
  try {
    return open();
  } finally {
    pkcs12.generateKey = original;
  }
}

function pfxContents(forge: Forge, pfx: forgeTypes.pkcs12.Pkcs12Pfx, path: string): Contents {
  const { oids } = forge.pki;
  const bagsOf = (type: string) => pfx.getBags({ bagType: type })[type] ?? [];
  const certs: Uint8Array[] = [];
  for (const bag of bagsOf(oids.certBag)) {
    // forge leaves certificates it cannot parse (non-RSA) as ASN.1; re-encoding its parsed
    // certificate reuses the original TBSCertificate, so the DER (and thumbprint) is unchanged.
    const asn1 = bag.cert ? forge.pki.certificateToAsn1(bag.cert) : bag.asn1;
    if (asn1) certs.push(derBytes(forge, asn1));
  }
  const keys: KeyObject[] = [];
  const otherKeys: string[] = [];
  for (const bag of [...bagsOf(oids.pkcs8ShroudedKeyBag), ...bagsOf(oids.keyBag)]) {
    try {
      if (bag.key) {
        const rsa = derBytes(forge, forge.pki.privateKeyToAsn1(bag.key));
        keys.push(createPrivateKey({ key: Buffer.from(rsa), format: "der", type: "pkcs1" }));
      } else if (bag.asn1) {
        // Not RSA (forge only parses RSA): node:crypto tells what it is.
        const pkcs8 = Buffer.from(derBytes(forge, bag.asn1));
        keys.push(createPrivateKey({ key: pkcs8, format: "der", type: "pkcs8" }));
      }
    } catch (error) {
      if (bag.key) {
        throw new UsageError(`${CERT}: cannot read the private key in ${path}`, {
          code: "CERT_UNREADABLE",
          cause: error,
        });
      }
      otherKeys.push("unknown type");
    }
  }
  return { certs, keys, otherKeys };
}

export function derBytes(forge: Forge, asn1: forgeTypes.asn1.Asn1): Uint8Array {
  return forge.util.binary.raw.decode(forge.asn1.toDer(asn1).getBytes());
}
