import assert from "node:assert/strict";
import { makeAppCertificate, makeServerPki } from "./pki.ts";

Deno.test("makeServerPki() makes a CA-signed certificate for 127.0.0.1", async () => {
  const pki = await makeServerPki();
  try {
    assert.match(pki.caPem, /BEGIN CERTIFICATE/);
    assert.match(pki.certPem, /BEGIN CERTIFICATE/);
    assert.match(pki.keyPem, /PRIVATE KEY/);
  } finally {
    await Deno.remove(pki.dir, { recursive: true });
  }
});

Deno.test("makeAppCertificate() makes every format with matching thumbprints", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const app = await makeAppCertificate(dir, "app");
    assert.match(app.sha1Thumbprint, /^[0-9A-F]{40}$/);
    assert.match(app.sha256ThumbprintB64Url, /^[A-Za-z0-9_-]{43}$/);
    assert.match(await Deno.readTextFile(app.encryptedPkcs1File), /Proc-Type: 4,ENCRYPTED/);
    assert.match(await Deno.readTextFile(app.encryptedPkcs8File), /ENCRYPTED PRIVATE KEY/);
    assert.match(await Deno.readTextFile(app.combinedPkcs1File), /BEGIN RSA PRIVATE KEY/);
    assert.ok((await Deno.stat(app.pfxFile)).size > 1000);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
