import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash, createPrivateKey, createPublicKey, sign, verify } from "node:crypto";
import {
  type AppCertificate,
  makeAppCertificate,
  makeServerPki,
  openssl,
} from "../../test/bed/pki.ts";
import { UsageError } from "../errors.ts";
import { loadCertificate, type LoadedCertificate } from "./certificate.ts";

// One PKI for the whole file: making RSA keys with openssl is the slow part of these tests.
let fixture: Promise<{ dir: string; a: AppCertificate; b: AppCertificate }> | undefined;
function pki() {
  fixture ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "gia-cert-test-" });
    const [a, b] = await Promise.all([
      makeAppCertificate(dir, "a"),
      makeAppCertificate(dir, "b"),
    ]);
    return { dir, a, b };
  })();
  return fixture;
}
globalThis.addEventListener("unload", () => {
  // The fixture is shared by all tests, so it is removed when the test process ends.
  fixture?.then(({ dir }) => Deno.removeSync(dir, { recursive: true }));
});

async function expectUsage(
  promise: Promise<unknown>,
  code: string,
  message: RegExp,
): Promise<UsageError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof UsageError, `expected UsageError, got ${error}`);
    assert.equal(error.exitCode, 2);
    assert.match(error.message, message);
    assert.equal(error.code, code, error.message);
    assert.ok(!error.message.includes("\n"), "messages are one line");
    return error;
  }
  assert.fail("expected a UsageError");
}

function base64Url(hex: string): string {
  return Buffer.from(hex, "hex").toString("base64url");
}

/** Every check that proves `loaded` is `app`'s certificate with a usable key. */
function assertLoaded(loaded: LoadedCertificate, app: AppCertificate) {
  assert.equal(loaded.thumbprintSha1, app.sha1Thumbprint);
  assert.match(loaded.thumbprintSha256, /^[0-9a-f]{64}$/);
  assert.equal(base64Url(loaded.thumbprintSha256), app.sha256ThumbprintB64Url);
  assert.deepEqual(loaded.x5c, [app.certDerBase64]);
  assert.match(loaded.subject, /^CN=app-[ab]$/);
  assert.ok(loaded.notBefore.getTime() < Date.now() && Date.now() < loaded.notAfter.getTime());
  assert.deepEqual(loaded.warnings, []);
  assert.match(loaded.privateKeyPem, /^-----BEGIN PRIVATE KEY-----\n/);
  assert.doesNotMatch(loaded.privateKeyPem, /ENCRYPTED/);
  const data = new TextEncoder().encode("header.payload");
  const signature = sign("sha256", data, loaded.privateKeyPem);
  assert.ok(verify("sha256", data, createPublicKey(app.publicKeyPem), signature));
}

const formats: [string, (app: AppCertificate) => string, LoadedCertificate["source"], boolean][] = [
  ["PEM with PKCS#8 key", (app) => app.combinedFile, "pem", false],
  ["PEM with PKCS#1 key", (app) => app.combinedPkcs1File, "pem", false],
  ["PEM with encrypted PKCS#8 key", (app) => app.encryptedPkcs8File, "pem", true],
  ["PEM with encrypted PKCS#1 key", (app) => app.encryptedPkcs1File, "pem", true],
  ["PFX (AES, SHA-256 MAC)", (app) => app.pfxFile, "pfx", true],
  ["PFX (legacy 3DES/RC2)", (app) => app.legacyPfxFile, "pfx", true],
];

for (const [name, file, source, encrypted] of formats) {
  Deno.test(`loadCertificate() loads a ${name}`, async () => {
    const { a } = await pki();
    const loaded = await loadCertificate({
      store: false,
      value: file(a),
      password: encrypted ? a.password : undefined,
    });
    assert.equal(loaded.source, source);
    assert.equal(loaded.path, file(a));
    assertLoaded(loaded, a);
  });

  if (!encrypted) continue;

  Deno.test(`loadCertificate() rejects a wrong password for a ${name}`, async () => {
    const { a } = await pki();
    const secret = "Wr0ng-hunter2";
    const error = await expectUsage(
      loadCertificate({ store: false, value: file(a), password: secret }),
      "CERT_PASSWORD_WRONG",
      /^-CertificatePassword: wrong password for /,
    );
    assert.ok(error.message.endsWith(file(a)));
    assert.ok(!JSON.stringify([error.message, String(error.cause)]).includes(secret));
  });

  Deno.test(`loadCertificate() asks for the password of a ${name}`, async () => {
    const { a } = await pki();
    await expectUsage(
      loadCertificate({ store: false, value: file(a) }),
      "CERT_PASSWORD_NEEDED",
      /^-CertificatePassword: .* is encrypted; give its password with -CertificatePassword$/,
    );
  });
}

Deno.test("loadCertificate() reads older key encryptions node:crypto rejects", async () => {
  const { dir, a } = await pki();
  // Deno's node:crypto says "bad decrypt" or "unsupported" for these even with the right
  // password; they come from OpenSSL 1.0, Java and Windows exports.
  const variants: [string, string[]][] = [
    ["pbes2-aes128-sha1", ["pkcs8", "-topk8", "-v2", "aes-128-cbc", "-v2prf", "hmacWithSHA1"]],
    ["pbes2-des3", ["pkcs8", "-topk8", "-v2", "des3"]],
    ["pbe-sha1-3des", ["pkcs8", "-topk8", "-v1", "PBE-SHA1-3DES"]],
    ["scrypt", ["pkcs8", "-topk8", "-scrypt"]],
    ["traditional-des3", ["rsa", "-traditional", "-des3"]],
  ];
  for (const [name, args] of variants) {
    await openssl([...args, "-in", a.keyFile, "-passout", "pass:pw", "-out", `${name}.key`], dir);
    const keyFile = `${dir}/${name}.key`;
    assertLoaded(
      await loadCertificate({ store: false, value: a.certFile, keyFile, password: "pw" }),
      a,
    );
    await expectUsage(
      loadCertificate({ store: false, value: a.certFile, keyFile, password: "nope" }),
      "CERT_PASSWORD_WRONG",
      new RegExp(`^-CertificatePassword: wrong password for .*${name}\\.key$`),
    );
  }
});

Deno.test("loadCertificate() calls a wrong password wrong even when it decrypts to garbage", async () => {
  const { a } = await pki();
  // About one wrong password in 200 passes the CBC padding check, and node:crypto then
  // reports "unsupported" instead of "bad decrypt". Find one for this key and try it.
  const pem = await Deno.readTextFile(a.encryptedPkcs8File);
  let unlucky: string | undefined;
  for (let i = 0; i < 5000 && !unlucky; i++) {
    try {
      createPrivateKey({ key: pem, format: "pem", passphrase: `try-${i}` });
    } catch (error) {
      if (!/bad decrypt/.test((error as Error).message)) unlucky = `try-${i}`;
    }
  }
  assert.ok(unlucky, "no password decrypted to garbage");
  await expectUsage(
    loadCertificate({ store: false, value: a.encryptedPkcs8File, password: unlucky }),
    "CERT_PASSWORD_WRONG",
    /^-CertificatePassword: wrong password for /,
  );
});

Deno.test("loadCertificate() takes the key from -CertificateKeyFile", async () => {
  const { a } = await pki();
  const loaded = await loadCertificate({ store: false, value: a.certFile, keyFile: a.keyFile });
  assert.equal(loaded.source, "pem");
  assert.equal(loaded.path, a.certFile);
  assertLoaded(loaded, a);

  // An encrypted key file uses -CertificatePassword.
  const encrypted = await loadCertificate({
    store: false,
    value: a.certFile,
    keyFile: a.encryptedPkcs1File,
    password: a.password,
  });
  assertLoaded(encrypted, a);
});

Deno.test("loadCertificate() without a key asks for -CertificateKeyFile", async () => {
  const { a } = await pki();
  await expectUsage(
    loadCertificate({ store: false, value: a.certFile }),
    "CERT_NO_KEY",
    /^-clientcertificate: .*a\.crt contains no private key; give it with -CertificateKeyFile$/,
  );
});

Deno.test("loadCertificate() reports a key that does not match the certificate", async () => {
  const { dir, a, b } = await pki();
  await expectUsage(
    loadCertificate({ store: false, value: a.certFile, keyFile: b.keyFile }),
    "CERT_KEY_MISMATCH",
    /^-clientcertificate: the private key does not match the certificate \(.*a\.crt, key .*b\.key\)$/,
  );
  const mixed = `${dir}/mixed.pem`;
  await Deno.writeTextFile(mixed, a.certPem + (await Deno.readTextFile(b.keyFile)));
  await expectUsage(
    loadCertificate({ store: false, value: mixed }),
    "CERT_KEY_MISMATCH",
    /^-clientcertificate: the private key does not match the certificate \(.*mixed\.pem\)$/,
  );
});

Deno.test("loadCertificate() puts the certificate of the key first in the chain", async () => {
  const server = await makeServerPki();
  try {
    // CA first, then the leaf: the leaf is the one the key belongs to, not the first one.
    const pem = `${server.dir}/chain.pem`;
    await Deno.writeTextFile(pem, server.caPem + server.certPem + server.keyPem);
    const fromPem = await loadCertificate({ store: false, value: pem });
    assert.equal(fromPem.subject, "CN=localhost");
    assert.equal(fromPem.x5c.length, 2);

    await openssl([
      "pkcs12",
      "-export",
      "-in",
      server.certFile,
      "-inkey",
      server.keyFile,
      "-certfile",
      server.caFile,
      "-passout",
      "pass:pw",
      "-out",
      "chain.pfx",
    ], server.dir);
    const fromPfx = await loadCertificate({
      store: false,
      value: `${server.dir}/chain.pfx`,
      password: "pw",
    });
    assert.deepEqual(fromPfx.x5c, fromPem.x5c);
    assert.equal(fromPfx.thumbprintSha1, fromPem.thumbprintSha1);
  } finally {
    await Deno.remove(server.dir, { recursive: true });
  }
});

Deno.test("loadCertificate() opens PFX files without a password", async () => {
  const { dir, a } = await pki();
  const common = ["pkcs12", "-export", "-in", a.certFile, "-inkey", a.keyFile, "-passout", "pass:"];
  await openssl([...common, "-out", "empty.pfx"], dir);
  await openssl([...common, "-legacy", "-out", "empty-legacy.p12"], dir);
  await openssl(
    [...common, "-nomac", "-keypbe", "NONE", "-certpbe", "NONE", "-out", "none.pfx"],
    dir,
  );
  for (const file of ["empty.pfx", "empty-legacy.p12", "none.pfx"]) {
    assertLoaded(await loadCertificate({ store: false, value: `${dir}/${file}` }), a);
    assertLoaded(await loadCertificate({ store: false, value: `${dir}/${file}`, password: "" }), a);
  }
  await expectUsage(
    loadCertificate({ store: false, value: `${dir}/empty.pfx`, password: "password" }),
    "CERT_PASSWORD_WRONG",
    /^-CertificatePassword: wrong password for .*empty\.pfx$/,
  );
});

Deno.test("loadCertificate() reads a DER certificate and a UTF-16 PEM file", async () => {
  const { dir, a } = await pki();
  await openssl(["x509", "-in", a.certFile, "-outform", "DER", "-out", "a.cer"], dir);
  assertLoaded(
    await loadCertificate({ store: false, value: `${dir}/a.cer`, keyFile: a.keyFile }),
    a,
  );

  // What Windows PowerShell 5.1's `Out-File` writes: UTF-16LE with a byte order mark.
  const text = await Deno.readTextFile(a.combinedFile);
  const utf16 = new Uint8Array([0xff, 0xfe, ...new Uint8Array(Buffer.from(text, "utf16le"))]);
  await Deno.writeFile(`${dir}/utf16.pem`, utf16);
  assertLoaded(await loadCertificate({ store: false, value: `${dir}/utf16.pem` }), a);
});

Deno.test("loadCertificate() refuses a certificate whose subject cannot be read (fuzz finding)", async () => {
  const { dir, a } = await pki();
  // Damage the subject's SET length (short form -> long form 0x82): Deno's X509Certificate
  // still parses the certificate but leaves `subject` undefined, which crashed with a TypeError.
  const der = new Uint8Array(Buffer.from(a.certDerBase64, "base64"));
  let at = -1;
  for (let i = 0; i + 8 < der.length; i++) {
    const [set, length, seq, inner, oid, oidLength, n1, n2, n3] = der.subarray(i, i + 9);
    if (set === 0x31 && seq === 0x30 && inner === length - 2 && oid === 0x06 && oidLength === 3) {
      if (n1 === 0x55 && n2 === 0x04 && n3 === 0x03) at = i + 1; // the last one is the subject
    }
  }
  assert.ok(at > 0, "subject not found");
  der[at] = 0x82;
  await Deno.writeFile(`${dir}/damaged.cer`, der);
  await expectUsage(
    loadCertificate({ store: false, value: `${dir}/damaged.cer`, keyFile: a.keyFile }),
    "CERT_UNREADABLE",
    /has a certificate that cannot be read/,
  );
});

Deno.test("loadCertificate() refuses a certificate whose public key cannot be read (fuzz finding)", async () => {
  const { dir, a } = await pki();
  // Damage the rsaEncryption OID of the public key: X509Certificate parses the certificate,
  // but its `publicKey` getter throws ("unsupported x509 public key type").
  const der = new Uint8Array(Buffer.from(a.certDerBase64, "base64"));
  const oid = Buffer.from("06092a864886f70d010101", "hex");
  const at = Buffer.from(der).indexOf(oid);
  assert.ok(at > 0, "public key algorithm not found");
  der[at + 2] = 0x02;
  await Deno.writeFile(`${dir}/badkey.cer`, der);
  await expectUsage(
    loadCertificate({ store: false, value: `${dir}/badkey.cer`, keyFile: a.keyFile }),
    "CERT_UNREADABLE",
    /has a certificate whose public key cannot be read$/,
  );
});

Deno.test("loadCertificate() rejects a non-RSA key", async () => {
  const { dir } = await pki();
  await openssl([
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    "ec.key",
    "-out",
    "ec.crt",
    "-days",
    "1",
    "-subj",
    "/CN=ec",
  ], dir);
  await expectUsage(
    loadCertificate({ store: false, value: `${dir}/ec.crt`, keyFile: `${dir}/ec.key` }),
    "CERT_NOT_RSA",
    /^-clientcertificate: the private key in .*ec\.key is not an RSA key \(EC\); .* need RSA$/,
  );
  await openssl(["ec", "-in", "ec.key", "-out", "ec.sec1.key"], dir);
  await expectUsage(
    loadCertificate({ store: false, value: `${dir}/ec.crt`, keyFile: `${dir}/ec.sec1.key` }),
    "CERT_NOT_RSA",
    /not an RSA key \(EC\)/,
  );
  await openssl([
    "pkcs12",
    "-export",
    "-in",
    "ec.crt",
    "-inkey",
    "ec.key",
    "-passout",
    "pass:pw",
    "-out",
    "ec.pfx",
  ], dir);
  await expectUsage(
    loadCertificate({ store: false, value: `${dir}/ec.pfx`, password: "pw" }),
    "CERT_NOT_RSA",
    /not an RSA key \(EC\)/,
  );
});

Deno.test("loadCertificate() rejects missing files, garbage and bad values", async () => {
  const { dir, a } = await pki();
  await expectUsage(
    loadCertificate({ store: false, value: "./nope/app.pem" }),
    "CERT_FILE_NOT_FOUND",
    /^-clientcertificate: file not found: \.\/nope\/app\.pem$/,
  );
  await expectUsage(
    loadCertificate({ store: false, value: "app.pfx" }),
    "CERT_FILE_NOT_FOUND",
    /^-clientcertificate: file not found: app\.pfx$/,
  );
  await expectUsage(
    loadCertificate({ store: false, value: "hello" }),
    "CERT_BAD_VALUE",
    /^-clientcertificate: hello is neither an existing file nor a 40-hex-digit SHA-1 thumbprint$/,
  );
  await expectUsage(
    loadCertificate({ store: false, value: "  " }),
    "CERT_BAD_VALUE",
    /^-clientcertificate: empty value/,
  );
  await expectUsage(
    loadCertificate({ store: false, value: dir }),
    "CERT_BAD_VALUE",
    /is a folder, not a certificate file$/,
  );
  await expectUsage(
    loadCertificate({ store: false, value: a.certFile, keyFile: `${dir}/missing.key` }),
    "CERT_FILE_NOT_FOUND",
    /^-CertificateKeyFile: file not found: .*missing\.key$/,
  );
  await expectUsage(
    loadCertificate({ store: false, value: a.combinedFile, keyFile: a.certFile }),
    "CERT_NO_KEY",
    /^-CertificateKeyFile: .*a\.crt contains no private key$/,
  );

  const garbage = `${dir}/garbage.pfx`;
  await Deno.writeFile(garbage, crypto.getRandomValues(new Uint8Array(2000)));
  await expectUsage(
    loadCertificate({ store: false, value: garbage, password: "x" }),
    "CERT_UNREADABLE",
    /^-clientcertificate: .*garbage\.pfx is not a certificate file \(expected PEM, PFX\/P12 or DER\)$/,
  );
  // DER-looking garbage (a SEQUENCE that is neither PKCS#12 nor a certificate).
  await Deno.writeFile(`${dir}/seq.p12`, new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x05]));
  await expectUsage(
    loadCertificate({ store: false, value: `${dir}/seq.p12` }),
    "CERT_UNREADABLE",
    /is not a certificate file/,
  );
  const pfx = await Deno.readFile(a.pfxFile);
  await Deno.writeFile(`${dir}/truncated.pfx`, pfx.subarray(0, pfx.length >> 1));
  await expectUsage(
    loadCertificate({ store: false, value: `${dir}/truncated.pfx`, password: a.password }),
    "CERT_UNREADABLE",
    /^-clientcertificate: .*truncated\.pfx is a damaged PFX\/P12 file$/,
  );
  await Deno.writeTextFile(`${dir}/empty.pem`, "");
  await expectUsage(
    loadCertificate({ store: false, value: `${dir}/empty.pem` }),
    "CERT_UNREADABLE",
    /is not a certificate file/,
  );
  await Deno.writeTextFile(`${dir}/keyonly.pem`, await Deno.readTextFile(a.keyFile));
  await expectUsage(
    loadCertificate({ store: false, value: `${dir}/keyonly.pem` }),
    "CERT_NO_CERTIFICATE",
    /^-clientcertificate: .*keyonly\.pem contains no certificate$/,
  );
  const damaged = a.certPem.replace(/\n[A-Za-z0-9+/]{64}\n/, "\n!!!!\n");
  await Deno.writeTextFile(`${dir}/damaged.pem`, damaged);
  await expectUsage(
    loadCertificate({ store: false, value: `${dir}/damaged.pem`, keyFile: a.keyFile }),
    "CERT_UNREADABLE",
    /damaged\.pem has a damaged certificate block$/,
  );
});

Deno.test("loadCertificate() warns about an expired or not yet valid certificate", async () => {
  const { dir, a } = await pki();
  const old = await makeAppCertificate(dir, "old", {
    notBefore: "20200101000000Z",
    notAfter: "20210101000000Z",
  });
  const loaded = await loadCertificate({
    store: false,
    value: old.pfxFile,
    password: old.password,
  });
  assert.equal(loaded.notAfter.toISOString(), "2021-01-01T00:00:00.000Z");
  assert.equal(loaded.notBefore.toISOString(), "2020-01-01T00:00:00.000Z");
  assert.deepEqual(loaded.warnings, [
    "-clientcertificate: the certificate CN=app-old expired on 2021-01-01T00:00:00Z; " +
    "Entra ID will reject it",
  ]);

  const early = await loadCertificate({
    store: false,
    value: a.combinedFile,
    now: new Date("2000-01-01"),
  });
  assert.equal(early.warnings.length, 1);
  assert.match(
    early.warnings[0],
    /^-clientcertificate: the certificate CN=app-a is not valid before /,
  );
});

Deno.test("loadCertificate() thumbprints equal openssl's", async () => {
  const { a } = await pki();
  const loaded = await loadCertificate({ store: false, value: a.pfxFile, password: a.password });
  const out = await new Deno.Command("openssl", {
    args: ["x509", "-in", a.certFile, "-noout", "-fingerprint", "-sha256"],
    stdout: "piped",
  }).output();
  const fingerprint = new TextDecoder().decode(out.stdout).split("=")[1].trim();
  assert.equal(fingerprint.replace(/:/g, "").toLowerCase(), loaded.thumbprintSha256);
  const der = Buffer.from(a.certDerBase64, "base64");
  assert.equal(createHash("sha1").update(der).digest("hex").toUpperCase(), loaded.thumbprintSha1);
});
