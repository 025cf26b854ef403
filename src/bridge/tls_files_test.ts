import assert from "node:assert/strict";
import { makeServerPki } from "../../test/bed/pki.ts";
import { tlsContexts } from "./tls_files.ts";

/** Replaces `path` as ACME clients do: a new file renamed over the old one. */
async function replace(path: string, text: string): Promise<void> {
  await Deno.writeTextFile(`${path}.new`, text);
  await Deno.rename(`${path}.new`, path);
}

Deno.test("tlsContexts() serves a renewed pair to new sessions, and keeps the old one while the new does not fit", async () => {
  const dir = await Deno.makeTempDir();
  const a = await makeServerPki(`${dir}/a`, "a");
  const b = await makeServerPki(`${dir}/b`, "b");
  try {
    const certificateFile = `${dir}/cert.pem`;
    const keyFile = `${dir}/key.pem`;
    await Deno.writeTextFile(certificateFile, a.certPem);
    await Deno.writeTextFile(keyFile, a.keyPem);
    const logged: string[] = [];
    const context = tlsContexts(
      { mode: "implicit", certificate: a.certPem, key: a.keyPem, certificateFile, keyFile },
      "127.0.0.1:995",
      (line) => logged.push(line),
    );
    const first = context();
    assert.equal(context(), first, "unchanged files: the same context");
    assert.deepEqual(logged, []);

    // Half a renewal: the new key beside the old certificate.
    await replace(keyFile, b.keyPem);
    assert.equal(context(), first);
    assert.equal(context(), first);
    assert.equal(logged.length, 1, "logged once");
    assert.match(
      logged[0],
      /^bridge: 127\.0\.0\.1:995: the changed TLS certificate is not used: .*key\.pem is not the key of .*cert\.pem; still serving the previous one$/,
    );

    // The renewal completed.
    await replace(certificateFile, b.certPem);
    const renewed = context();
    assert.notEqual(renewed, first);
    assert.equal(context(), renewed);
    assert.match(
      logged[1],
      /^bridge: 127\.0\.0\.1:995: TLS certificate reloaded from .*cert\.pem \(valid until \d{4}-\d\d-\d\dT/,
    );

    // A file missing for a moment.
    await Deno.remove(certificateFile);
    assert.equal(context(), renewed);
    assert.match(logged[2], /not used: cannot look at .*cert\.pem/);
    await Deno.writeTextFile(certificateFile, "garbage");
    assert.equal(context(), renewed);
    assert.match(logged[3], /not used: not a PEM certificate/);
    await replace(certificateFile, b.certPem);
    assert.notEqual(context(), renewed, "back to a good pair: read again");
    assert.equal(logged.length, 5);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
