/**
 * Test PKI made at test time with the system `openssl`: a CA, a TLS server
 * certificate for 127.0.0.1/localhost, and application certificates in every
 * format the tool accepts. Nothing here is committed; every run makes fresh keys.
 */

export interface ServerPki {
  dir: string;
  caFile: string;
  caPem: string;
  certFile: string;
  keyFile: string;
  certPem: string;
  keyPem: string;
}

export interface AppCertificate {
  /** Certificate alone, PEM. */
  certFile: string;
  /** Unencrypted PKCS#8 key, PEM. */
  keyFile: string;
  /** Certificate followed by its unencrypted PKCS#8 key. */
  combinedFile: string;
  /** Certificate followed by its unencrypted PKCS#1 ("RSA PRIVATE KEY") key. */
  combinedPkcs1File: string;
  /** Certificate followed by an encrypted PKCS#8 key (password `password`). */
  encryptedPkcs8File: string;
  /** Certificate followed by an encrypted traditional PKCS#1 key (password `password`). */
  encryptedPkcs1File: string;
  /** PKCS#12 with the default (AES) algorithms, password `password`. */
  pfxFile: string;
  /** PKCS#12 with legacy (3DES/RC2) algorithms, password `password`. */
  legacyPfxFile: string;
  password: string;
  certPem: string;
  /** Base64 DER of the certificate (as in `x5c`). */
  certDerBase64: string;
  /** Upper-case hex SHA-1 thumbprint (as Windows shows it). */
  sha1Thumbprint: string;
  /** Base64url SHA-256 thumbprint (as in the `x5t#S256` header). */
  sha256ThumbprintB64Url: string;
  /** Public key, SPKI PEM. */
  publicKeyPem: string;
}

/** Runs the system's openssl in `cwd`; throws with its error output when it fails. */
export async function openssl(args: string[], cwd: string): Promise<void> {
  const out = await new Deno.Command("openssl", { args, cwd, stdout: "piped", stderr: "piped" })
    .output();
  if (!out.success) {
    throw new Error(`openssl ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
}

function derFromPem(pem: string): Uint8Array<ArrayBuffer> {
  const b64 = pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

function toBase64(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("").toUpperCase();
}

function base64Url(bytes: Uint8Array): string {
  return toBase64(bytes).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/**
 * Signs a TLS server certificate with the CA at `caFile` (its key beside it,
 * `.key` for `.pem`), valid for `subjectAltName` (openssl syntax, e.g.
 * `DNS:localhost,IP:127.0.0.1`). Files are `DIR/NAME.pem` and `DIR/NAME.key`.
 */
export async function signServerCertificate(
  dir: string,
  caFile: string,
  name: string,
  commonName: string,
  subjectAltName: string,
): Promise<{ certFile: string; keyFile: string; certPem: string; keyPem: string }> {
  await Deno.writeTextFile(
    `${dir}/${name}.ext`,
    "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n" +
      `extendedKeyUsage=serverAuth\nsubjectAltName=${subjectAltName}\n`,
  );
  await openssl(
    ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.csr`]
      .concat(["-subj", `/CN=${commonName}`]),
    dir,
  );
  await openssl(
    [
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      caFile,
      "-CAkey",
      caFile.replace(/\.pem$/, ".key"),
    ]
      .concat(["-CAcreateserial", "-out", `${name}.pem`, "-days", "2", "-extfile", `${name}.ext`]),
    dir,
  );
  return {
    certFile: `${dir}/${name}.pem`,
    keyFile: `${dir}/${name}.key`,
    certPem: await Deno.readTextFile(`${dir}/${name}.pem`),
    keyPem: await Deno.readTextFile(`${dir}/${name}.key`),
  };
}

/** Makes a CA and a server certificate for `127.0.0.1`, `::1` and `localhost`. */
export async function makeServerPki(dir?: string, name = "server"): Promise<ServerPki> {
  dir ??= await Deno.makeTempDir({ prefix: "gia-pki-" });
  await Deno.mkdir(dir, { recursive: true });
  const ca = `${name}-ca`;
  await openssl([
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    `${ca}.key`,
    "-out",
    `${ca}.pem`,
    "-days",
    "2",
    "-subj",
    `/CN=Test CA ${name}`,
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ], dir);
  const server = await signServerCertificate(
    dir,
    `${dir}/${ca}.pem`,
    name,
    "localhost",
    "IP:127.0.0.1,IP:::1,DNS:localhost",
  );
  return {
    dir,
    caFile: `${dir}/${ca}.pem`,
    caPem: await Deno.readTextFile(`${dir}/${ca}.pem`),
    ...server,
  };
}

export interface AppCertificateOptions {
  /** Days of validity; negative with `expired` semantics is not supported, use `startDays`. */
  days?: number;
  /** Subject common name. */
  commonName?: string;
  /** Certificate validity start/end, both needed (YYYYMMDDHHMMSSZ, e.g. `20200101000000Z`). */
  notBefore?: string;
  notAfter?: string;
}

/**
 * Self-signed certificate with explicit validity dates (expired or not yet valid). OpenSSL 3.0's
 * `req -x509` has no `-not_before`/`-not_after` (they arrived in 3.4); `ca -selfsign` with
 * `-startdate`/`-enddate` works on every OpenSSL 3. Its database lives in a per-name folder.
 */
async function selfSignWithDates(
  dir: string,
  name: string,
  cn: string,
  notBefore: string,
  notAfter: string,
): Promise<void> {
  const caDir = `${dir}/${name}.ca`;
  await Deno.mkdir(caDir, { recursive: true });
  await Deno.writeTextFile(`${caDir}/index.txt`, "");
  await Deno.writeTextFile(`${caDir}/serial`, "01\n");
  await Deno.writeTextFile(
    `${caDir}/ca.cnf`,
    `[ca]\ndefault_ca = app\n[app]\ndatabase = ${caDir}/index.txt\nnew_certs_dir = ${caDir}\n` +
      `serial = ${caDir}/serial\ndefault_md = sha256\npolicy = any\nunique_subject = no\n` +
      "[any]\ncommonName = supplied\n",
  );
  await openssl([
    "req",
    "-new",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.csr`,
    "-subj",
    `/CN=${cn}`,
  ], dir);
  await openssl([
    "ca",
    "-batch",
    "-notext",
    "-selfsign",
    "-config",
    `${caDir}/ca.cnf`,
    "-keyfile",
    `${name}.key`,
    "-in",
    `${name}.csr`,
    "-out",
    `${name}.crt`,
    "-startdate",
    notBefore,
    "-enddate",
    notAfter,
  ], dir);
}

/** Makes a self-signed application certificate (as uploaded to an app registration) in every format. */
export async function makeAppCertificate(
  dir: string,
  name: string,
  options: AppCertificateOptions = {},
): Promise<AppCertificate> {
  await Deno.mkdir(dir, { recursive: true });
  const password = "password";
  const cn = options.commonName ?? `app-${name}`;
  if (options.notBefore && options.notAfter) {
    await selfSignWithDates(dir, name, cn, options.notBefore, options.notAfter);
  } else {
    await openssl([
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.crt`,
      "-days",
      String(options.days ?? 2),
      "-subj",
      `/CN=${cn}`,
    ], dir);
  }
  await openssl(["rsa", "-in", `${name}.key`, "-traditional", "-out", `${name}.rsa.key`], dir);
  await openssl([
    "pkey",
    "-in",
    `${name}.key`,
    "-aes256",
    "-passout",
    `pass:${password}`,
    "-out",
    `${name}.enc8.key`,
  ], dir);
  await openssl([
    "rsa",
    "-in",
    `${name}.key`,
    "-traditional",
    "-aes256",
    "-passout",
    `pass:${password}`,
    "-out",
    `${name}.enc1.key`,
  ], dir);
  await openssl([
    "pkcs12",
    "-export",
    "-in",
    `${name}.crt`,
    "-inkey",
    `${name}.key`,
    "-out",
    `${name}.pfx`,
    "-passout",
    `pass:${password}`,
  ], dir);
  await openssl([
    "pkcs12",
    "-export",
    "-legacy",
    "-in",
    `${name}.crt`,
    "-inkey",
    `${name}.key`,
    "-out",
    `${name}.legacy.p12`,
    "-passout",
    `pass:${password}`,
  ], dir);
  await openssl(["x509", "-in", `${name}.crt`, "-pubkey", "-noout", "-out", `${name}.pub`], dir);

  const certPem = await Deno.readTextFile(`${dir}/${name}.crt`);
  const read = (f: string) => Deno.readTextFile(`${dir}/${f}`);
  const combine = async (out: string, key: string) => {
    await Deno.writeTextFile(`${dir}/${out}`, certPem + (await read(key)));
    return `${dir}/${out}`;
  };
  const der = derFromPem(certPem);
  const sha1 = new Uint8Array(await crypto.subtle.digest("SHA-1", der));
  const sha256 = new Uint8Array(await crypto.subtle.digest("SHA-256", der));
  return {
    certFile: `${dir}/${name}.crt`,
    keyFile: `${dir}/${name}.key`,
    combinedFile: await combine(`${name}.pem`, `${name}.key`),
    combinedPkcs1File: await combine(`${name}.pkcs1.pem`, `${name}.rsa.key`),
    encryptedPkcs8File: await combine(`${name}.enc8.pem`, `${name}.enc8.key`),
    encryptedPkcs1File: await combine(`${name}.enc1.pem`, `${name}.enc1.key`),
    pfxFile: `${dir}/${name}.pfx`,
    legacyPfxFile: `${dir}/${name}.legacy.p12`,
    password,
    certPem,
    certDerBase64: toBase64(der),
    sha1Thumbprint: toHex(sha1),
    sha256ThumbprintB64Url: base64Url(sha256),
    publicKeyPem: await read(`${name}.pub`),
  };
}

/**
 * A self-signed EC (P-256) certificate with its key, as PEM files and as a PFX (password
 * `password`): what Entra ID refuses for a certificate credential.
 */
export async function makeEcCertificate(
  dir: string,
  name: string,
): Promise<{ certFile: string; keyFile: string; pfxFile: string }> {
  await Deno.mkdir(dir, { recursive: true });
  await openssl([
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.crt`,
    "-days",
    "2",
    "-subj",
    `/CN=app-${name}`,
  ], dir);
  await openssl([
    "pkcs12",
    "-export",
    "-in",
    `${name}.crt`,
    "-inkey",
    `${name}.key`,
    "-out",
    `${name}.pfx`,
    "-passout",
    "pass:password",
  ], dir);
  return {
    certFile: `${dir}/${name}.crt`,
    keyFile: `${dir}/${name}.key`,
    pfxFile: `${dir}/${name}.pfx`,
  };
}
