import assert from "node:assert/strict";
import { createPublicKey, sign, verify } from "node:crypto";
import { type AppCertificate, makeAppCertificate } from "../../test/bed/pki.ts";
import { UsageError } from "../errors.ts";
import {
  CERT_DIR_ENV,
  defaultCertDir,
  findByThumbprint,
  normalizeThumbprint,
} from "./cert_folder.ts";
import { loadCertificate } from "./certificate.ts";

function envOf(vars: Record<string, string>): (name: string) => string | undefined {
  return (name) => vars[name];
}

async function expectUsage(promise: Promise<unknown>, message: RegExp): Promise<UsageError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof UsageError, `expected UsageError, got ${error}`);
    assert.match(error.message, message);
    assert.ok(!error.message.includes("\n"), "messages are one line");
    return error;
  }
  assert.fail("expected a UsageError");
}

Deno.test("defaultCertDir() follows each OS's convention", () => {
  const home = { HOME: "/home/u" };
  assert.equal(defaultCertDir("linux", envOf(home)), "/home/u/.config/get-imapaccesstoken/certs");
  assert.equal(
    defaultCertDir("linux", envOf({ ...home, XDG_CONFIG_HOME: "/xdg" })),
    "/xdg/get-imapaccesstoken/certs",
  );
  // A relative XDG_CONFIG_HOME is invalid per the XDG spec and ignored.
  assert.equal(
    defaultCertDir("linux", envOf({ ...home, XDG_CONFIG_HOME: "rel" })),
    "/home/u/.config/get-imapaccesstoken/certs",
  );
  assert.equal(
    defaultCertDir("freebsd", envOf(home)),
    "/home/u/.config/get-imapaccesstoken/certs",
  );
  assert.equal(
    defaultCertDir("darwin", envOf({ HOME: "/Users/u" })),
    "/Users/u/Library/Application Support/get-imapaccesstoken/certs",
  );
  assert.equal(
    defaultCertDir("windows", envOf({ APPDATA: "C:\\Users\\u\\AppData\\Roaming" })),
    "C:\\Users\\u\\AppData\\Roaming\\get-imapaccesstoken\\certs",
  );
  assert.equal(
    defaultCertDir("windows", envOf({ USERPROFILE: "C:\\Users\\u" })),
    "C:\\Users\\u\\AppData\\Roaming\\get-imapaccesstoken\\certs",
  );
});

Deno.test("defaultCertDir() uses GET_IMAPACCESSTOKEN_CERT_DIR first", () => {
  for (const os of ["linux", "darwin", "windows"] as const) {
    assert.equal(defaultCertDir(os, envOf({ HOME: "/h", [CERT_DIR_ENV]: "/certs" })), "/certs");
  }
  // Empty means unset, as in shells that export VAR= to clear it.
  assert.equal(
    defaultCertDir("linux", envOf({ HOME: "/h", [CERT_DIR_ENV]: "" })),
    "/h/.config/get-imapaccesstoken/certs",
  );
});

Deno.test("defaultCertDir() without a home folder asks for the variable", () => {
  for (const os of ["linux", "darwin", "windows"] as const) {
    assert.throws(
      () => defaultCertDir(os, envOf({})),
      (error) => error instanceof UsageError && error.message.includes(CERT_DIR_ENV),
    );
  }
});

Deno.test("normalizeThumbprint() accepts what people paste", () => {
  const hex = "0123456789ABCDEF0123456789ABCDEF01234567";
  assert.equal(normalizeThumbprint(hex), hex);
  assert.equal(normalizeThumbprint(hex.toLowerCase()), hex);
  assert.equal(normalizeThumbprint(hex.replace(/(..)(?!$)/g, "$1 ")), hex);
  assert.equal(normalizeThumbprint(hex.replace(/(..)(?!$)/g, "$1:")), hex);
  // Windows' certificate dialog copies an invisible left-to-right mark in front.
  assert.equal(normalizeThumbprint(`\u200e${hex.toLowerCase()}`), hex);
  assert.equal(normalizeThumbprint(` ${hex}\n`), hex);
  assert.equal(normalizeThumbprint(hex.slice(1)), undefined);
  assert.equal(normalizeThumbprint(`${hex}00`), undefined);
  assert.equal(normalizeThumbprint(hex.replace("A", "G")), undefined);
  assert.equal(normalizeThumbprint("./app.pem"), undefined);
});

Deno.test("findByThumbprint() picks matching files in name order and skips others", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (const name of ["b.pfx", "a.PEM", "c.p12", "d.crt", "e.cer", "notes.txt", "x.key"]) {
      await Deno.writeTextFile(`${dir}/${name}`, name);
    }
    await Deno.mkdir(`${dir}/sub.pem`);
    const seen: string[] = [];
    const found = await findByThumbprint(dir, "T", (path) => {
      seen.push(path.slice(dir.length + 1));
      if (path.endsWith("c.p12")) return Promise.reject(new Error("broken"));
      return Promise.resolve(path.endsWith("b.pfx") || path.endsWith("d.crt") ? ["X", "T"] : []);
    });
    assert.deepEqual(seen, ["a.PEM", "b.pfx", "c.p12", "d.crt", "e.cer"]);
    assert.ok("matches" in found);
    assert.deepEqual(found.matches.map((m) => m.path), [`${dir}/b.pfx`, `${dir}/d.crt`]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("findByThumbprint() says where it looked and why nothing was found", async () => {
  const dir = await Deno.makeTempDir();
  try {
    assert.deepEqual(await findByThumbprint(dir, "T", () => Promise.resolve([])), {
      missing: `the folder ${dir} (it has no .pem, .crt, .cer, .pfx or .p12 file)`,
    });
    await Deno.writeTextFile(`${dir}/a.pfx`, "");
    await Deno.writeTextFile(`${dir}/b.pem`, "");
    assert.deepEqual(
      await findByThumbprint(
        dir,
        "T",
        (path) =>
          path.endsWith(".pfx")
            ? Promise.reject(new Error("encrypted, needs -CertificatePassword"))
            : Promise.resolve(["U"]),
      ),
      {
        missing: `the folder ${dir} (1 file(s) could not be read: a.pfx (encrypted, needs ` +
          "-CertificatePassword))",
      },
    );
    assert.deepEqual(await findByThumbprint(`${dir}/missing`, "T", () => Promise.resolve([])), {
      missing: `the folder ${dir}/missing (does not exist)`,
    });
    assert.deepEqual(await findByThumbprint(`${dir}/a.pfx`, "T", () => Promise.resolve([])), {
      missing: `the folder ${dir}/a.pfx (is not a folder)`,
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// Real certificates in a folder found through the environment variable, as a user would.
let fixture: Promise<{ dir: string; a: AppCertificate; b: AppCertificate }> | undefined;
function pki() {
  fixture ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "gia-store-test-" });
    const [a, b] = await Promise.all([
      makeAppCertificate(`${dir}/make`, "a"),
      makeAppCertificate(`${dir}/make`, "b"),
    ]);
    return { dir, a, b };
  })();
  return fixture;
}
globalThis.addEventListener("unload", () => {
  fixture?.then(({ dir }) => Deno.removeSync(dir, { recursive: true }));
});

async function folderWith(files: Record<string, string>): Promise<string> {
  const { dir } = await pki();
  const folder = await Deno.makeTempDir({ dir });
  for (const [name, from] of Object.entries(files)) await Deno.copyFile(from, `${folder}/${name}`);
  return folder;
}

Deno.test("loadCertificate() finds a thumbprint in the folder from the environment", async () => {
  const { a, b } = await pki();
  const folder = await folderWith({ "a.pem": a.combinedFile, "b.pfx": b.pfxFile });
  const env = envOf({ [CERT_DIR_ENV]: folder, HOME: "/nonexistent" });
  const pasted = [
    a.sha1Thumbprint,
    a.sha1Thumbprint.toLowerCase(),
    a.sha1Thumbprint.replace(/(..)(?!$)/g, "$1 "),
    a.sha1Thumbprint.replace(/(..)(?!$)/g, "$1:").toLowerCase(),
    `\u200e${a.sha1Thumbprint.replace(/(..)(?!$)/g, "$1 ").toLowerCase()}`,
  ];
  for (const value of pasted) {
    const loaded = await loadCertificate({ store: false, value, env, password: b.password });
    assert.equal(loaded.source, "thumbprint");
    assert.equal(loaded.path, `${folder}/a.pem`);
    assert.equal(loaded.thumbprintSha1, a.sha1Thumbprint);
    assert.match(loaded.privateKeyPem, /BEGIN PRIVATE KEY/);
  }
  const fromPfx = await loadCertificate({
    store: false,
    value: b.sha1Thumbprint,
    env,
    password: b.password,
  });
  assert.equal(fromPfx.path, `${folder}/b.pfx`);
  assert.equal(fromPfx.thumbprintSha1, b.sha1Thumbprint);
  assert.deepEqual(fromPfx.x5c, [b.certDerBase64]);
});

Deno.test("loadCertificate() by thumbprint handles keys beside .crt files and encrypted PEM", async () => {
  const { a, b } = await pki();
  const folder = await folderWith({
    "a.crt": a.certFile,
    "a.key": a.keyFile,
    "b.pem": b.encryptedPkcs8File,
  });
  const loaded = await loadCertificate({ store: false, value: a.sha1Thumbprint, certDir: folder });
  assert.equal(loaded.path, `${folder}/a.crt`);
  assert.equal(loaded.thumbprintSha1, a.sha1Thumbprint);

  // The certificate of an encrypted PEM is found without the password; the key then needs it.
  await expectUsage(
    loadCertificate({ store: false, value: b.sha1Thumbprint, certDir: folder }),
    /^-CertificatePassword: .*b\.pem is encrypted; give its password with -CertificatePassword$/,
  );
  const withPassword = await loadCertificate({
    store: false,
    value: b.sha1Thumbprint,
    certDir: folder,
    password: b.password,
  });
  assert.equal(withPassword.path, `${folder}/b.pem`);
});

Deno.test("loadCertificate() by thumbprint prefers a file that loads", async () => {
  const { a } = await pki();
  // "1.crt" comes first but has no key; the PFX with the same certificate has one.
  const folder = await folderWith({ "1.crt": a.certFile, "2.pfx": a.pfxFile });
  const loaded = await loadCertificate({
    store: false,
    value: a.sha1Thumbprint,
    certDir: folder,
    password: a.password,
  });
  assert.equal(loaded.path, `${folder}/2.pfx`);

  const crtOnly = await folderWith({ "1.crt": a.certFile });
  await expectUsage(
    loadCertificate({ store: false, value: a.sha1Thumbprint, certDir: crtOnly }),
    /1\.crt contains no private key; give it with -CertificateKeyFile$/,
  );
});

Deno.test("loadCertificate() by thumbprint says which files it could not read", async () => {
  const { a, b } = await pki();
  const folder = await folderWith({ "a.pfx": a.pfxFile, "b.pem": b.combinedFile });
  await Deno.writeTextFile(`${folder}/junk.pem`, "not a certificate");
  const missing = "00".repeat(20);
  await expectUsage(
    loadCertificate({ store: false, value: missing, certDir: folder, password: a.password }),
    /^-clientcertificate: no certificate with thumbprint 0{40} in the folder .* \(1 file\(s\) could not be read: junk\.pem \(not a readable certificate file\)\) \(put the certificate file into the folder or set GET_IMAPACCESSTOKEN_CERT_DIR to another folder\)$/,
  );
  // Without the password the PFX cannot be read, so its certificate cannot be found.
  await expectUsage(
    loadCertificate({ store: false, value: a.sha1Thumbprint, certDir: folder }),
    /could not be read: a\.pfx \(encrypted, needs -CertificatePassword\), junk\.pem/,
  );
  await expectUsage(
    loadCertificate({ store: false, value: a.sha1Thumbprint, certDir: folder, password: "wrong" }),
    /could not be read: a\.pfx \(wrong -CertificatePassword\)/,
  );
});

/** What Windows PowerShell writes: UTF-16 (LE: `Out-File`, `>`; BE: -Encoding BigEndianUnicode)
 * or UTF-8 with a byte order mark (5.1's -Encoding UTF8), with CRLF line ends. */
function windowsText(text: string, encoding: "utf-16le" | "utf-16be" | "utf-8-bom"): Uint8Array {
  const crlf = text.replace(/\r?\n/g, "\r\n");
  if (encoding === "utf-8-bom") {
    return new Uint8Array([0xef, 0xbb, 0xbf, ...new TextEncoder().encode(crlf)]);
  }
  const bytes = new Uint8Array(2 + crlf.length * 2);
  bytes.set(encoding === "utf-16le" ? [0xff, 0xfe] : [0xfe, 0xff]);
  for (let i = 0; i < crlf.length; i++) {
    const [lo, hi] = [crlf.charCodeAt(i) & 0xff, crlf.charCodeAt(i) >> 8];
    bytes.set(encoding === "utf-16le" ? [lo, hi] : [hi, lo], 2 + 2 * i);
  }
  return bytes;
}

Deno.test("loadCertificate() by thumbprint reads UTF-16 and UTF-8-BOM files with CRLF", async () => {
  const { dir, a, b } = await pki();
  for (const encoding of ["utf-16le", "utf-16be", "utf-8-bom"] as const) {
    const folder = await Deno.makeTempDir({ dir });
    await Deno.writeFile(
      `${folder}/a.crt`,
      windowsText(await Deno.readTextFile(a.certFile), encoding),
    );
    await Deno.writeFile(
      `${folder}/a.key`,
      windowsText(await Deno.readTextFile(a.keyFile), encoding),
    );
    await Deno.writeFile(
      `${folder}/b.pem`,
      windowsText(await Deno.readTextFile(b.encryptedPkcs1File), encoding),
    );
    const loaded = await loadCertificate({
      store: false,
      value: a.sha1Thumbprint,
      certDir: folder,
    });
    assert.equal(loaded.path, `${folder}/a.crt`, encoding);
    assert.equal(loaded.thumbprintSha1, a.sha1Thumbprint);
    assert.match(loaded.privateKeyPem, /^-----BEGIN PRIVATE KEY-----\n/);
    const encrypted = await loadCertificate({
      store: false,
      value: b.sha1Thumbprint,
      certDir: folder,
      password: b.password,
    });
    assert.equal(encrypted.thumbprintSha1, b.sha1Thumbprint, encoding);

    // -clientcertificate <file> with -CertificateKeyFile, both from Windows PowerShell.
    const withKeyFile = await loadCertificate({
      store: false,
      value: `${folder}/a.crt`,
      keyFile: `${folder}/a.key`,
    });
    assert.equal(withKeyFile.thumbprintSha1, a.sha1Thumbprint, encoding);
    const data = new TextEncoder().encode("header.payload");
    const signature = sign("sha256", data, withKeyFile.privateKeyPem);
    assert.ok(verify("sha256", data, createPublicKey(a.publicKeyPem), signature), "a's key");
  }
});
