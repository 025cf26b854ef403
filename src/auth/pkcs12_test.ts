import assert from "node:assert/strict";
import { UsageError } from "../errors.ts";
import { looksLikePfx, openPfx } from "./pkcs12.ts";

Deno.test("looksLikePfx() recognises SEQUENCE { INTEGER 3, SEQUENCE } in short and long form", () => {
  assert.equal(looksLikePfx(new Uint8Array([0x30, 0x10, 0x02, 0x01, 0x03, 0x30])), true);
  assert.equal(
    looksLikePfx(new Uint8Array([0x30, 0x82, 0x01, 0x00, 0x02, 0x01, 0x03, 0x30])),
    true,
  );
  // A DER certificate starts SEQUENCE { SEQUENCE TBSCertificate ... }.
  assert.equal(looksLikePfx(new Uint8Array([0x30, 0x82, 0x01, 0x00, 0x30, 0x82])), false);
  assert.equal(looksLikePfx(new Uint8Array([0x02, 0x01, 0x03, 0x30])), false);
  assert.equal(looksLikePfx(new Uint8Array([])), false);
});

Deno.test("openPfx() reports a damaged file as a UsageError naming it", async () => {
  await assert.rejects(
    openPfx(new Uint8Array([0x30, 0x10, 0x02, 0x01, 0x03]), "pw", "bad.pfx"),
    (e) => {
      assert.ok(e instanceof UsageError, String(e));
      assert.equal(e.code, "CERT_UNREADABLE");
      assert.equal(e.message, "-clientcertificate: bad.pfx is a damaged PFX/P12 file");
      return true;
    },
  );
});
