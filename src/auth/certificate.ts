/**
 * Loads the certificate credential for `-clientcertificate`: a PEM file (certificate and key,
 * the key possibly encrypted or in `-CertificateKeyFile`), a PFX/P12 file, or — as in the
 * PowerShell original — a SHA-1 thumbprint, looked up in the certificate store
 * (`store_certificate.ts`, the key stays there) and the certificate folder (`cert_folder.ts`).
 * A file's result is what msal-node's `clientCertificate` needs: an unencrypted PKCS#8 key,
 * the SHA-256 thumbprint and the chain; a store's result signs through PowerShell.
 *
 * node:crypto does the PEM keys and X.509 parsing (it is native and fast). node-forge reads
 * PKCS#12 (`pkcs12.ts`), which node:crypto cannot, and is the second opinion on encrypted keys
 * that Deno's node:crypto rejects; it is imported only then, as importing it costs ~90 ms.
 * Everything the user can get wrong is a one-line `UsageError` naming the parameter; no
 * message ever contains a password or key material.
 */

import { Buffer } from "node:buffer";
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  KeyObject,
  X509Certificate,
} from "node:crypto";
import { messageOf, UsageError } from "../errors.ts";
import { type FileReader, fileReader, statOrUndefined } from "./cert_file_reader.ts";
import {
  CERT_DIR_ENV,
  defaultCertDir,
  findByThumbprint,
  normalizeThumbprint,
} from "./cert_folder.ts";
import { openFromStore, type StoreCertificate } from "./store_certificate.ts";
import { CERT, type Contents, KEY_FILE, PASSWORD } from "./certificate_types.ts";
import { derBytes, loadForge, looksLikePfx, openPfx } from "./pkcs12.ts";
import { fromBase64 } from "../base64.ts";

export interface CertificateInput {
  /** The `-clientcertificate` argument: a file path or a SHA-1 thumbprint. */
  value: string;
  /** `-CertificatePassword`, for an encrypted PEM key or a PFX/P12 file. */
  password?: string;
  /** `-CertificateKeyFile`: PEM private key; overrides a key inside the certificate file. */
  keyFile?: string;
  /** Certificate folder for thumbprints; default from `defaultCertDir()`. */
  certDir?: string;
  /** Environment lookup (tests inject one); default `Deno.env.get`. */
  env?: (name: string) => string | undefined;
  /** The time validity is checked against; default now. */
  now?: Date;
  /** The system whose lookup order applies; default this one. */
  os?: typeof Deno.build.os;
  /** `false` searches the folder only (tests of the folder); default: the store too. */
  store?: false;
  /**
   * Deadline for each answer of the store's signer, and for reading a certificate or key file
   * that is a FIFO or `<(...)`; default 30 s.
   */
  timeoutMs?: number;
  /**
   * Reads the certificate and key files; default `fileReader(timeoutMs)`. The caller passes its
   * own when it read them already (a FIFO can be read only once).
   */
  read?: FileReader;
}

export type { StoreCertificate };

/** A certificate from a file or folder (the key is here), or from the store (the key is not). */
export type CertificateCredential = LoadedCertificate | StoreCertificate;

export interface LoadedCertificate {
  source: "pem" | "pfx" | "thumbprint";
  /** File the certificate came from. */
  path: string;
  /** Unencrypted PKCS#8 PEM: the key that signs the client assertion (client_credentials.ts). */
  privateKeyPem: string;
  /** Base64 DER certificates, leaf first (the JWT `x5c` header). */
  x5c: string[];
  /** Upper-case hex, as Windows and the Entra portal show it. */
  thumbprintSha1: string;
  /** Lower-case hex: msal-node's `clientCertificate.thumbprintSha256`. */
  thumbprintSha256: string;
  /** Subject, e.g. `CN=app`; several RDNs are joined with ", ". */
  subject: string;
  notBefore: Date;
  notAfter: Date;
  /** Problems that are not errors here but that Entra ID will reject (expiry). */
  warnings: string[];
}

/** Loads the certificate credential described by `input`; see the module comment. */
export function loadCertificate(
  input: CertificateInput & { store: false },
): Promise<LoadedCertificate>;
export function loadCertificate(input: CertificateInput): Promise<CertificateCredential>;
export async function loadCertificate(input: CertificateInput): Promise<CertificateCredential> {
  // One reader for the whole load: each file is read once (a FIFO can be read only once).
  input = { ...input, read: readerOf(input) };
  const value = input.value.trim();
  if (value === "") {
    throw new UsageError(`${CERT}: empty value; give a certificate file or a thumbprint`, {
      code: "CERT_BAD_VALUE",
    });
  }
  const info = await statOrUndefined(value, CERT);
  if (info?.isDirectory) {
    throw new UsageError(`${CERT}: ${value} is a folder, not a certificate file`, {
      code: "CERT_BAD_VALUE",
    });
  }
  if (info) return await loadFile(value, input, {});

  const thumbprint = normalizeThumbprint(value);
  if (thumbprint) return await loadByThumbprint(thumbprint, input);

  if (/[\\/]|\.(pem|crt|cer|pfx|p12|key)$/i.test(value)) {
    throw new UsageError(`${CERT}: file not found: ${value}`, { code: "CERT_FILE_NOT_FOUND" });
  }
  throw new UsageError(
    `${CERT}: ${value} is neither an existing file nor a 40-hex-digit SHA-1 thumbprint`,
    { code: "CERT_BAD_VALUE" },
  );
}

// ---------------------------------------------------------------------------------------------
// Reading files

/** What a certificate file holds before any key is decrypted. */
type Container =
  | { format: "pem"; certs: Uint8Array[]; keys: PemKey[]; otherKeys: string[] }
  | { format: "der"; certs: Uint8Array[] }
  | { format: "pfx"; der: Uint8Array };

/** A private key PEM block, possibly encrypted (decrypting needs the password). */
interface PemKey {
  pem: string;
  encrypted: boolean;
}

interface LoadOptions {
  /** The folder search found the file by this thumbprint: that certificate is the leaf. */
  thumbprint?: string;
  /** Folder files may keep their key beside them as `<name>.key`. */
  siblingKey?: boolean;
  /** PFX files the folder search already opened (opening is slow, and needs the password). */
  opened?: Map<string, Contents>;
}

function readerOf(input: CertificateInput): FileReader {
  return input.read ?? fileReader(input.timeoutMs ?? 30_000);
}

/** Tells PEM, PKCS#12 and a bare DER certificate apart by their content, not their name. */
function parseContainer(bytes: Uint8Array, path: string, param: string): Container {
  const text = decodeText(bytes);
  if (text.includes("-----BEGIN ")) return parsePem(text, path, param);
  if (bytes[0] === 0x30) {
    if (looksLikePfx(bytes)) return { format: "pfx", der: bytes };
    try {
      new X509Certificate(Buffer.from(bytes));
      return { format: "der", certs: [bytes] };
    } catch {
      // Not a certificate either: reported below.
    }
  }
  throw new UsageError(
    `${param}: ${path} is not a certificate file (expected PEM, PFX/P12 or DER)`,
    { code: "CERT_UNREADABLE" },
  );
}

/** Windows PowerShell 5.1 writes UTF-16 files by default; certificates pasted there end up so. */
function decodeText(bytes: Uint8Array): string {
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return new TextDecoder("utf-16le").decode(bytes);
  if (bytes[0] === 0xfe && bytes[1] === 0xff) return new TextDecoder("utf-16be").decode(bytes);
  return new TextDecoder().decode(bytes);
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;

function parsePem(text: string, path: string, param: string): Container {
  const certs: Uint8Array[] = [];
  const keys: PemKey[] = [];
  const otherKeys: string[] = [];
  for (const match of text.matchAll(PEM_BLOCK)) {
    const [block, label, body] = match;
    if (label === "CERTIFICATE" || label === "X509 CERTIFICATE") {
      const der = decodeBase64(body);
      if (!der) {
        throw new UsageError(`${param}: ${path} has a damaged certificate block`, {
          code: "CERT_UNREADABLE",
        });
      }
      certs.push(der);
    } else if (label === "PRIVATE KEY" || label === "RSA PRIVATE KEY") {
      // Traditional PEM encryption keeps the label and says so in a header.
      const encrypted = /Proc-Type:\s*4,\s*ENCRYPTED/i.test(body);
      keys.push({ pem: block.replace(/\r\n?/g, "\n"), encrypted });
    } else if (label === "ENCRYPTED PRIVATE KEY") {
      keys.push({ pem: block.replace(/\r\n?/g, "\n"), encrypted: true });
    } else if (label.endsWith("PRIVATE KEY")) {
      otherKeys.push(label.replace(/ PRIVATE KEY$/, ""));
    }
  }
  return { format: "pem", certs, keys, otherKeys };
}

function decodeBase64(body: string): Uint8Array | undefined {
  const compact = body.replace(/\s+/g, "");
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(compact)) return undefined;
  try {
    return fromBase64(compact);
  } catch {
    return undefined;
  }
}

async function readPemKeys(
  keys: PemKey[],
  password: string | undefined,
  path: string,
): Promise<KeyObject[]> {
  const result: KeyObject[] = [];
  for (const key of keys) result.push(await readPemKey(key, password, path));
  return result;
}

/** Decrypts (if needed) and parses a PEM private key. */
async function readPemKey(
  key: PemKey,
  password: string | undefined,
  path: string,
): Promise<KeyObject> {
  if (key.encrypted && password === undefined) {
    throw new UsageError(
      `${PASSWORD}: ${path} is encrypted; give its password with ${PASSWORD}`,
      { code: "CERT_PASSWORD_NEEDED" },
    );
  }
  try {
    return createPrivateKey({
      key: key.pem,
      format: "pem",
      passphrase: key.encrypted ? password : undefined,
    });
  } catch (error) {
    if (!key.encrypted) {
      throw new UsageError(`${CERT}: cannot read the private key in ${path}`, {
        code: "CERT_UNREADABLE",
        cause: error,
      });
    }
    return await decryptWithForge(key.pem, password ?? "", path, error);
  }
}

/**
 * Second opinion on an encrypted key node:crypto could not open. Its errors cannot tell a
 * wrong password from an unsupported format: a wrong password gives "bad decrypt", or about
 * once in 200 tries "DECODER routines::unsupported" (the garbage passed the padding check),
 * and Deno 2.9.6 also says "bad decrypt" for a RIGHT password with PBES2 + hmacWithSHA1
 * (OpenSSL 1.0 and some Windows exports) and "unsupported" for PBES2-3DES and PBE-SHA1-3DES.
 * forge decrypts all of those, returns null for a wrong password, and says "Unsupported" only
 * from the algorithm identifiers, so only when both give up is the format the problem.
 */
async function decryptWithForge(
  pem: string,
  password: string,
  path: string,
  nodeError: unknown,
): Promise<KeyObject> {
  const forge = await loadForge();
  let forgeError: unknown;
  try {
    const rsa = forge.pki.decryptRsaPrivateKey(pem, password);
    if (rsa) {
      const der = derBytes(forge, forge.pki.privateKeyToAsn1(rsa));
      return createPrivateKey({ key: Buffer.from(der), format: "der", type: "pkcs1" });
    }
  } catch (error) {
    forgeError = error;
  }
  if (
    /unsupported/i.test(messageOf(forgeError)) && !/bad decrypt/i.test(messageOf(nodeError))
  ) {
    throw new UsageError(
      `${CERT}: the key in ${path} uses an encryption this tool cannot read; re-encrypt it with ` +
        "`openssl pkey -in OLD -aes256 -out NEW`",
      {
        code: "CERT_UNREADABLE",
        cause: nodeError,
      },
    );
  }
  throw new UsageError(`${PASSWORD}: wrong password for ${path}`, {
    code: "CERT_PASSWORD_WRONG",
    cause: nodeError,
  });
}

// ---------------------------------------------------------------------------------------------
// Loading

async function loadFile(
  path: string,
  input: CertificateInput,
  options: LoadOptions,
): Promise<LoadedCertificate> {
  let contents = options.opened?.get(path);
  let format: Container["format"] = "pfx";
  if (!contents) {
    const container = parseContainer(await readerOf(input)(path, CERT), path, CERT);
    format = container.format;
    contents = container.format === "pfx"
      ? await openPfx(container.der, input.password, path)
      : container.format === "der"
      ? { certs: container.certs, keys: [], otherKeys: [] }
      : {
        certs: container.certs,
        // With a separate key file the key in the certificate file is not used, so it must
        // not ask for a password either.
        keys: input.keyFile ? [] : await readPemKeys(container.keys, input.password, path),
        otherKeys: container.otherKeys,
      };
  }
  if (contents.certs.length === 0) {
    throw new UsageError(`${CERT}: ${path} contains no certificate`, {
      code: "CERT_NO_CERTIFICATE",
    });
  }

  let keys = contents.keys;
  let otherKeys = contents.otherKeys;
  let keyPath = path;
  if (input.keyFile) {
    ({ keys, otherKeys } = await readKeyFile(readerOf(input), input.keyFile, input.password));
    keyPath = input.keyFile;
  } else if (keys.length === 0 && otherKeys.length === 0 && options.siblingKey) {
    const sibling = path.replace(/\.[^./\\]*$/, "") + ".key";
    if (sibling !== path && (await statOrUndefined(sibling, CERT))?.isFile) {
      ({ keys, otherKeys } = await readKeyFile(readerOf(input), sibling, input.password, CERT));
      keyPath = sibling;
    }
  }

  const source = options.thumbprint ? "thumbprint" : format === "pfx" ? "pfx" : "pem";
  return assemble({ ...contents, keys, otherKeys }, {
    source,
    path,
    keyPath,
    thumbprint: options.thumbprint,
    now: input.now ?? new Date(),
  });
}

async function readKeyFile(
  read: FileReader,
  keyFile: string,
  password: string | undefined,
  param = KEY_FILE,
): Promise<{ keys: KeyObject[]; otherKeys: string[] }> {
  const text = decodeText(await read(keyFile, param));
  const container = text.includes("-----BEGIN ") ? parsePem(text, keyFile, param) : undefined;
  if (!container || container.format !== "pem") {
    throw new UsageError(`${param}: ${keyFile} is not a PEM private key file`, {
      code: "CERT_UNREADABLE",
    });
  }
  if (container.keys.length === 0 && container.otherKeys.length === 0) {
    throw new UsageError(`${param}: ${keyFile} contains no private key`, {
      code: "CERT_NO_KEY",
    });
  }
  return {
    keys: await readPemKeys(container.keys, password, keyFile),
    otherKeys: container.otherKeys,
  };
}

interface AssembleContext {
  source: LoadedCertificate["source"];
  path: string;
  keyPath: string;
  thumbprint?: string;
  now: Date;
}

interface ParsedCert {
  der: Uint8Array;
  x509: X509Certificate;
  sha1: string;
}

/** Picks the leaf (the certificate the key belongs to) and builds the result. */
function assemble(contents: Contents, ctx: AssembleContext): LoadedCertificate {
  const keyWhere = ctx.keyPath === ctx.path ? ctx.path : `${ctx.path}, key ${ctx.keyPath}`;
  if (contents.keys.length === 0 && contents.otherKeys.length === 0) {
    throw new UsageError(
      `${CERT}: ${ctx.path} contains no private key; give it with ${KEY_FILE}`,
      { code: "CERT_NO_KEY" },
    );
  }
  const rsaKeys = contents.keys.filter((k) => k.asymmetricKeyType === "rsa");
  if (rsaKeys.length === 0) {
    const found = contents.keys[0]?.asymmetricKeyType?.toUpperCase() ?? contents.otherKeys[0];
    throw new UsageError(
      `${CERT}: the private key in ${ctx.keyPath} is not an RSA key (${found}); Entra ID ` +
        "certificate credentials need RSA",
      { code: "CERT_NOT_RSA" },
    );
  }

  const certs = contents.certs.map((der) => parseCert(der, ctx.path));
  const candidates = ctx.thumbprint ? certs.filter((c) => c.sha1 === ctx.thumbprint) : certs;
  let leaf: ParsedCert | undefined;
  let key: KeyObject | undefined;
  let unreadableKey: unknown;
  for (const cert of candidates) {
    let publicKey: KeyObject;
    try {
      publicKey = cert.x509.publicKey;
    } catch (error) {
      // The getter throws for a damaged key; that certificate cannot be the leaf.
      unreadableKey ??= error;
      continue;
    }
    key = rsaKeys.find((k) => samePublicKey(k, publicKey));
    if (key) {
      leaf = cert;
      break;
    }
  }
  if ((!leaf || !key) && unreadableKey !== undefined) {
    throw new UsageError(`${CERT}: ${ctx.path} has a certificate whose public key cannot be read`, {
      code: "CERT_UNREADABLE",
      cause: unreadableKey,
    });
  }
  if (!leaf || !key) {
    throw new UsageError(
      `${CERT}: the private key does not match the certificate (${keyWhere})`,
      { code: "CERT_KEY_MISMATCH" },
    );
  }

  const chain = [leaf, ...certs.filter((c) => c !== leaf)];
  const x5c = chain.map((c) => Buffer.from(c.der).toString("base64"));
  const notBefore = new Date(leaf.x509.validFrom);
  const notAfter = new Date(leaf.x509.validTo);
  const subject = leaf.x509.subject.split("\n").join(", ");
  return {
    source: ctx.source,
    path: ctx.path,
    privateKeyPem: key.export({ type: "pkcs8", format: "pem" }).toString(),
    x5c,
    thumbprintSha1: leaf.sha1,
    thumbprintSha256: createHash("sha256").update(leaf.der).digest("hex"),
    subject,
    notBefore,
    notAfter,
    warnings: validityWarnings(subject, notBefore, notAfter, ctx.now),
  };
}

function parseCert(der: Uint8Array, path: string): ParsedCert {
  try {
    const x509 = new X509Certificate(Buffer.from(der));
    // Deno's X509Certificate accepts some damaged certificates and leaves the fields it could
    // not read undefined: such a certificate is as unreadable as one it rejects.
    const dates = [x509.validFrom, x509.validTo].map((d) => Date.parse(d));
    if (typeof x509.subject !== "string" || dates.some(Number.isNaN)) {
      throw new Error("subject or validity cannot be read");
    }
    return { der, x509, sha1: createHash("sha1").update(der).digest("hex").toUpperCase() };
  } catch (error) {
    throw new UsageError(`${CERT}: ${path} has a certificate that cannot be read`, {
      code: "CERT_UNREADABLE",
      cause: error,
    });
  }
}

/** Compares the RSA modulus and exponent (JWK `n`, `e`) of a private key and a public key. */
function samePublicKey(privateKey: KeyObject, publicKey: KeyObject): boolean {
  if (publicKey.asymmetricKeyType !== "rsa") return false;
  const a = createPublicKey(privateKey).export({ format: "jwk" });
  const b = publicKey.export({ format: "jwk" });
  return a.n === b.n && a.e === b.e;
}

export function validityWarnings(
  subject: string,
  notBefore: Date,
  notAfter: Date,
  now: Date,
): string[] {
  const day = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, "Z");
  if (now.getTime() > notAfter.getTime()) {
    return [
      `${CERT}: the certificate ${subject} expired on ${day(notAfter)}; Entra ID will reject it`,
    ];
  }
  if (now.getTime() < notBefore.getTime()) {
    return [
      `${CERT}: the certificate ${subject} is not valid before ${
        day(notBefore)
      }; Entra ID will reject it until then`,
    ];
  }
  return [];
}

// ---------------------------------------------------------------------------------------------
// Thumbprints

/**
 * Finds a thumbprint where the system keeps certificates. Windows: the certificate store first
 * (CurrentUser\My, the original's place, then LocalMachine\My), then the folder. Elsewhere the
 * folder first (no PowerShell needed, and fast), then .NET's store through pwsh if installed.
 */
async function loadByThumbprint(
  thumbprint: string,
  input: CertificateInput,
): Promise<CertificateCredential> {
  const env = input.env ?? ((name: string) => Deno.env.get(name));
  const os = input.os ?? Deno.build.os;
  const folder = () => loadFromFolder(thumbprint, input, env);
  const store = () =>
    openFromStore(thumbprint, {
      os,
      env,
      timeoutMs: input.timeoutMs ?? 30_000,
      now: input.now ?? new Date(),
      validityWarnings,
    });
  const lookups = input.store === false ? [folder] : os === "windows" ? [store, folder] : [
    folder,
    store,
  ];
  const missing: string[] = [];
  for (const lookup of lookups) {
    const result = await lookup();
    if (!("missing" in result)) return result;
    missing.push(result.missing);
  }
  const fix = input.store === false
    ? `put the certificate file into the folder or set ${CERT_DIR_ENV} to another folder`
    : "import the certificate with its private key into CurrentUser\\My, or put the certificate " +
      `file into the folder (${CERT_DIR_ENV} sets another folder)`;
  throw new UsageError(
    `${CERT}: no certificate with thumbprint ${thumbprint} in ${
      missing.join(", nor in ")
    } (${fix})`,
    { code: "CERT_NOT_FOUND" },
  );
}

async function loadFromFolder(
  thumbprint: string,
  input: CertificateInput,
  env: (name: string) => string | undefined,
): Promise<LoadedCertificate | { missing: string }> {
  const dir = input.certDir ?? defaultCertDir(Deno.build.os, env);
  const opened = new Map<string, Contents>();

  const found = await findByThumbprint(dir, thumbprint, async (path) => {
    try {
      // A FIFO in the folder is skipped ("not a file"), not waited for.
      const info = await statOrUndefined(path, CERT);
      if (info && !info.isFile) {
        throw new UsageError(`${CERT}: ${path} is not a file`, { code: "CERT_BAD_VALUE" });
      }
      const container = parseContainer(await readerOf(input)(path, CERT), path, CERT);
      if (container.format !== "pfx") return container.certs.map((der) => sha1Hex(der));
      const contents = await openPfx(container.der, input.password, path);
      opened.set(path, contents);
      return contents.certs.map((der) => sha1Hex(der));
    } catch (error) {
      throw new Error(skipReason(error), { cause: error });
    }
  });
  if ("missing" in found) return found;

  // Several files may hold the same certificate (say a .crt without key and the .pfx):
  // the first that loads wins, otherwise the first file's error is the most useful one.
  let firstError: unknown;
  for (const match of found.matches) {
    try {
      return await loadFile(match.path, input, { thumbprint, siblingKey: true, opened });
    } catch (error) {
      firstError ??= error;
    }
  }
  throw firstError;
}

function sha1Hex(der: Uint8Array): string {
  return createHash("sha1").update(der).digest("hex").toUpperCase();
}

/** Short reason for the "could not be read" list of a failed folder search. */
function skipReason(error: unknown): string {
  const code = error instanceof UsageError ? error.code : undefined;
  if (code === "CERT_PASSWORD_NEEDED") return `encrypted, needs ${PASSWORD}`;
  if (code === "CERT_PASSWORD_WRONG") return `wrong ${PASSWORD}`;
  return "not a readable certificate file";
}
