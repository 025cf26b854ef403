/**
 * -CaFile: PEM certificates to trust besides the system's. Checked here, before
 * any traffic, so that a damaged file is exit 2 naming -CaFile and what is
 * wrong, never a TLS library's message halfway through a run.
 */
import { UsageError } from "../errors.ts";
import { shown } from "../text.ts";
import { fromBase64 } from "../base64.ts";

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;

/** Length and start of the content of the DER element at `offset`, or null when malformed. */
function element(
  der: Uint8Array,
  offset: number,
): { tag: number; start: number; end: number } | null {
  if (offset + 2 > der.length) return null;
  const tag = der[offset];
  let length = der[offset + 1];
  let start = offset + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 4 || start + count > der.length) return null;
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + der[start + i];
    start += count;
  }
  const end = start + length;
  return end > der.length ? null : { tag, start, end };
}

/**
 * Whether `der` has an X.509 certificate's outer shape: a SEQUENCE that spans
 * the whole input, holding the to-be-signed SEQUENCE, the algorithm SEQUENCE
 * and the signature BIT STRING.
 */
export function looksLikeCertificate(der: Uint8Array): boolean {
  const outer = element(der, 0);
  if (!outer || outer.tag !== 0x30 || outer.end !== der.length) return false;
  const tags: number[] = [];
  let at = outer.start;
  while (at < outer.end) {
    const e = element(der, at);
    if (!e) return false;
    tags.push(e.tag);
    at = e.end;
  }
  return tags.length === 3 && tags[0] === 0x30 && tags[1] === 0x30 && tags[2] === 0x03;
}

function base64Bytes(body: string): Uint8Array | null {
  const compact = body.replace(/\s+/g, "");
  if (compact === "" || !/^[A-Za-z0-9+/]+={0,2}$/.test(compact) || compact.length % 4 !== 0) {
    return null;
  }
  try {
    return fromBase64(compact);
  } catch {
    return null;
  }
}

/** The certificates of a -CaFile's text, each as PEM; throws `UsageError` naming what is wrong. */
export function caCertificates(text: string, path: string): string[] {
  const where = `-CaFile: ${shown(path)}`;
  const fail = (why: string) => new UsageError(`${where} ${why}`, { code: "BAD_FILE" });
  const blocks = [...text.matchAll(BLOCK)].filter((m) => m[1] === "CERTIFICATE");
  if (blocks.length === 0) {
    if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) {
      throw fail("holds a private key, no certificate (BEGIN CERTIFICATE)");
    }
    throw fail("is not a PEM file: no certificate (BEGIN CERTIFICATE) in it");
  }
  return blocks.map((m, i) => {
    const n = blocks.length > 1 ? ` (certificate ${i + 1} of ${blocks.length})` : "";
    const der = base64Bytes(m[2]);
    if (!der) throw fail(`is damaged${n}: the text between BEGIN and END is not valid base64`);
    if (!looksLikeCertificate(der)) throw fail(`is damaged${n}: that is not an X.509 certificate`);
    return `-----BEGIN CERTIFICATE-----${m[2]}-----END CERTIFICATE-----\n`;
  });
}
