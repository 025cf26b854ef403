import assert from "node:assert/strict";
import { helpText } from "./help.ts";

const syntaxOf = (title: RegExp) => {
  const lines = helpText().split("\n");
  return lines[lines.findIndex((l) => title.test(l)) + 1];
};

Deno.test("helpText() shows the bridge's sets with only what they accept", () => {
  const bridge = syntaxOf(/POP3, IMAP and SMTP bridge .*\(bridge\):$/);
  assert.match(bridge, /-Bridge <config\.json>/);
  for (const p of ["-Diagnose", "-Language", "-Verbose"]) assert.ok(bridge.includes(p), p);
  for (const p of ["-Protocol", "-Server", "-tenantID", "-OutputFormat"]) {
    assert.ok(!bridge.includes(p), `${p} is refused with -Bridge, so help must not offer it`);
  }
  assert.match(helpText(), /^ {2}-Bridge {2,}Run the local POP3, IMAP and SMTP bridge /m);
  const hash = syntaxOf(/\(bridgePasswordHash\):$/);
  assert.match(hash, /-BridgePasswordHash/);
  assert.ok(!hash.includes("-Diagnose") && !hash.includes("-Protocol"), hash);
});

Deno.test("helpText() says where thumbprints are looked up: the store and the folder", () => {
  const text = helpText();
  assert.match(
    text,
    /thumbprint of a certificate in the certificate store or the certificate folder/,
  );
  assert.match(text, /CurrentUser\\My,\n\s+then LocalMachine\\My/);
  assert.match(text, /GET_IMAPACCESSTOKEN_CERT_DIR/);
});
