import assert from "node:assert/strict";
import { caCertificates, looksLikeCertificate } from "./ca_file.ts";
import { UsageError } from "../errors.ts";
import { makeServerPki } from "../../test/bed/pki.ts";

const badFile = (pattern: RegExp) => (e: unknown) => {
  assert.ok(e instanceof UsageError, String(e));
  assert.equal(e.code, "BAD_FILE");
  assert.match(e.message, pattern);
  return true;
};

Deno.test("caCertificates() returns each certificate of a bundle as PEM", async () => {
  const pki = await makeServerPki();
  try {
    const ca = await Deno.readTextFile(pki.caFile);
    const certs = caCertificates(`# bundle\n${ca}\n${pki.certPem}`, "ca.pem");
    assert.equal(certs.length, 2);
    for (const c of certs) {
      assert.match(c, /^-----BEGIN CERTIFICATE-----\n[\s\S]+\n-----END CERTIFICATE-----\n$/);
    }
  } finally {
    await Deno.remove(pki.dir, { recursive: true });
  }
});

Deno.test("caCertificates() names what is wrong with a damaged -CaFile", async () => {
  const pki = await makeServerPki();
  try {
    const ca = await Deno.readTextFile(pki.caFile);
    const lines = ca.trim().split("\n");
    // Cut in the middle (a truncated copy), a character changed, and the key in its place.
    const truncated = [...lines.slice(0, 4), lines.at(-1)!].join("\n");
    assert.throws(() => caCertificates(truncated, "ca.pem"), badFile(/not an X\.509 certificate/));
    const mangled = ca.replace(/\n([A-Za-z0-9+/]{10})/, "\n$1!");
    assert.throws(() => caCertificates(mangled, "ca.pem"), badFile(/not valid base64/));
    assert.throws(
      () => caCertificates(pki.keyPem, "key.pem"),
      badFile(/^-CaFile: key\.pem holds a private key, no certificate/),
    );
    assert.throws(
      () => caCertificates("hello\n", "x.txt"),
      badFile(/^-CaFile: x\.txt is not a PEM file/),
    );
    assert.throws(
      () =>
        caCertificates(`${ca}-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n`, "b"),
      badFile(/\(certificate 2 of 2\): that is not an X\.509 certificate/),
    );
  } finally {
    await Deno.remove(pki.dir, { recursive: true });
  }
});

Deno.test("looksLikeCertificate() needs the outer shape of a certificate", () => {
  assert.equal(looksLikeCertificate(new Uint8Array([])), false);
  assert.equal(looksLikeCertificate(new Uint8Array([0x30, 0x00])), false);
  // SEQUENCE { SEQUENCE {}, SEQUENCE {}, BIT STRING {0} }
  const minimal = new Uint8Array([0x30, 0x07, 0x30, 0x00, 0x30, 0x00, 0x03, 0x01, 0x00]);
  assert.equal(looksLikeCertificate(minimal), true);
  assert.equal(looksLikeCertificate(minimal.subarray(0, 8)), false, "truncated");
  assert.equal(looksLikeCertificate(new Uint8Array([0x30, 0x84, 0xff, 0xff, 0xff, 0xff])), false);
});
