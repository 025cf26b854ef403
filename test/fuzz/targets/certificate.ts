/**
 * Fuzz target for `loadCertificate`: real certificate files from `makeAppCertificate` (PEM with
 * plain and encrypted keys, PFX with AES and legacy algorithms, a bare certificate and key),
 * mutated as bytes or as PEM text, written to a temp file and loaded with and without the
 * right password. Every input must load or be refused with a `UsageError` with a code.
 * Loading runs node:crypto and node-forge, so this target gets far fewer inputs than the rest.
 */

import { loadCertificate } from "../../../src/auth/certificate.ts";
import { UsageError } from "../../../src/errors.ts";
import { makeAppCertificate } from "../../bed/pki.ts";
import { concat, fromBase64, mutateBytes, mutateString, toBase64 } from "../mutate.ts";
import type { Rng } from "../rng.ts";
import { check, defineTarget, isRecord, outcomeOf } from "../target.ts";

export interface CertificateInput {
  /** The `-clientcertificate` file, base64. */
  file: string;
  /** A `-CertificateKeyFile`, base64. */
  keyFile?: string;
  password?: string;
}

interface CertificateContext {
  /** Where inputs are written. */
  dir: string;
  /** The real files, base64, by kind. */
  files: Record<string, string>;
  password: string;
}

const PEM_TOKENS = [
  "-----BEGIN ",
  "-----END ",
  "CERTIFICATE-----",
  "PRIVATE KEY-----",
  "RSA PRIVATE KEY",
  "ENCRYPTED PRIVATE KEY",
  "EC PRIVATE KEY",
  "X509 CERTIFICATE",
  "Proc-Type: 4,ENCRYPTED\n",
  "DEK-Info: AES-256-CBC,00\n",
  "DEK-Info: DES-EDE3-CBC,0011223344556677\n",
  "\r\n",
  "\n\n",
  "=",
  "==",
  "MII",
  "\u0000",
];

/** The test certificates are made for this run and valid now; expiry is not what is fuzzed. */
const NOW = new Date();

export const certificateTarget = defineTarget<CertificateInput, CertificateContext>({
  name: "certificate",
  ciInputs: 1000,
  minCodes: 3,
  slowMs: 10_000,
  async setup(dir) {
    const app = await makeAppCertificate(`${dir}/pki`, "fuzz");
    const read = async (path: string) => toBase64(await Deno.readFile(path));
    const files: Record<string, string> = {};
    const kinds = {
      combined: app.combinedFile,
      pkcs1: app.combinedPkcs1File,
      encrypted8: app.encryptedPkcs8File,
      encrypted1: app.encryptedPkcs1File,
      pfx: app.pfxFile,
      legacyPfx: app.legacyPfxFile,
      cert: app.certFile,
      key: app.keyFile,
    };
    for (const [kind, path] of Object.entries(kinds)) files[kind] = await read(path);
    files.der = app.certDerBase64;
    await Deno.mkdir(`${dir}/work`);
    await Deno.mkdir(`${dir}/empty`);
    return { dir, files, password: app.password };
  },
  accepts: (value): value is CertificateInput =>
    isRecord(value) && typeof value.file === "string" &&
    (value.keyFile === undefined || typeof value.keyFile === "string") &&
    (value.password === undefined || typeof value.password === "string"),
  generate(rng, ctx, corpus) {
    const kind = rng.pick(Object.keys(ctx.files));
    const base = fromBase64(ctx.files[kind]);
    const file = rng.weighted<() => Uint8Array>([
      [2, () => base],
      [4, () => mutateBytes(rng, base, 64 * 1024)],
      [3, () => mutatePem(rng, base)],
      [1, () => rng.bytes(rng.small(200))],
      [1, () => utf16(base)],
      [1, () => (corpus.length > 0 ? mutateBytes(rng, fromBase64(rng.pick(corpus).file)) : base)],
    ])();
    const input: CertificateInput = { file: toBase64(file) };
    if (rng.chance(0.15)) {
      const key = fromBase64(ctx.files[rng.pick(["key", "encrypted8", "encrypted1", "pkcs1"])]);
      input.keyFile = toBase64(rng.chance(0.5) ? mutatePem(rng, key) : key);
    }
    const password = rng.weighted<string | undefined>([
      [3, ctx.password],
      [2, undefined],
      [1, "wrong"],
      [1, ""],
      [1, "pässwörd\u0000"],
    ]);
    if (password !== undefined) input.password = password;
    return input;
  },
  async run(input, ctx) {
    const path = `${ctx.dir}/work/input.pem`;
    await Deno.writeFile(path, fromBase64(input.file));
    let keyFile: string | undefined;
    if (input.keyFile !== undefined) {
      keyFile = `${ctx.dir}/work/input.key`;
      await Deno.writeFile(keyFile, fromBase64(input.keyFile));
    }
    return outcomeOf(async () => {
      const loaded = await loadCertificate({
        store: false,
        value: path,
        password: input.password,
        keyFile,
        certDir: `${ctx.dir}/empty`,
        env: () => undefined,
        now: NOW,
      });
      check(/BEGIN PRIVATE KEY/.test(loaded.privateKeyPem), "loaded without a PKCS#8 key");
      check(loaded.x5c.length > 0, "loaded without a certificate chain");
      check(/^[0-9A-F]{40}$/.test(loaded.thumbprintSha1), "odd SHA-1 thumbprint");
      check(/^[0-9a-f]{64}$/.test(loaded.thumbprintSha256), "odd SHA-256 thumbprint");
    }, [UsageError]);
  },
});

/** Edits a PEM file as text (labels, headers, base64 body); other files as bytes. */
function mutatePem(rng: Rng, bytes: Uint8Array): Uint8Array {
  const text = new TextDecoder().decode(bytes);
  if (!text.includes("-----BEGIN ")) return mutateBytes(rng, bytes);
  return new TextEncoder().encode(mutateString(rng, text, PEM_TOKENS, 64 * 1024));
}

/** The file as Windows PowerShell 5.1 writes text: UTF-16LE with a byte order mark. */
function utf16(bytes: Uint8Array): Uint8Array {
  const text = new TextDecoder().decode(bytes);
  const out = new Uint8Array(text.length * 2);
  for (let i = 0; i < text.length; i++) {
    out[2 * i] = text.charCodeAt(i) & 0xff;
    out[2 * i + 1] = text.charCodeAt(i) >> 8;
  }
  return concat(new Uint8Array([0xff, 0xfe]), out);
}
