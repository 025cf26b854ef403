import assert from "node:assert/strict";
import { bindArguments, lookupParameter } from "./bind.ts";
import { UsageError } from "../errors.ts";

function bound(argv: string[]) {
  const r = bindArguments(argv);
  assert.equal(r.kind, "bound");
  return (r as { values: Map<string, unknown> }).values;
}

Deno.test("lookupParameter() matches names case-insensitively and by unique prefix", () => {
  assert.equal(lookupParameter("TENANTID").name, "tenantID");
  assert.equal(lookupParameter("tenant").name, "tenantID");
  assert.equal(lookupParameter("clientS").name, "clientsecret");
  assert.equal(lookupParameter("clientc").name, "clientcertificate");
  assert.equal(lookupParameter("vb").name, "Verbose");
  assert.equal(lookupParameter("v").name, "Verbose");
  assert.equal(lookupParameter("ea").name, "ErrorAction");
});

Deno.test("lookupParameter() lists candidates of an ambiguous prefix in declaration order", () => {
  assert.throws(() => lookupParameter("client"), {
    message: "-client: ambiguous parameter name. Possible matches: -clientId -clientsecret " +
      "-clientcertificate.",
  });
  assert.throws(() => lookupParameter("e"), /Possible matches: -ErrorAction -ErrorVariable/);
});

Deno.test("lookupParameter() rejects unknown names", () => {
  assert.throws(
    () => lookupParameter("Foo"),
    (e) => e instanceof UsageError && /-Foo/.test(e.message),
  );
});

Deno.test("bindArguments() takes -Name value and -Name:value", () => {
  const v = bound(["-tenantID:T", "-clientId", "C", "-Port:995"]);
  assert.equal(v.get("tenantID"), "T");
  assert.equal(v.get("clientId"), "C");
  assert.equal(v.get("Port"), 995);
});

Deno.test("bindArguments() binds values that start with a dash, as pwsh -File does", () => {
  assert.equal(bound(["-clientsecret", "-x~y"]).get("clientsecret"), "-x~y");
});

Deno.test("bindArguments() treats a following full parameter name as a missing value", () => {
  assert.throws(() => bindArguments(["-tenantID", "-clientId", "C"]), /-tenantID: missing value/);
  assert.throws(() => bindArguments(["-tenantID"]), /-tenantID: missing value/);
});

Deno.test("bindArguments() reads switches with and without $true/$false", () => {
  assert.equal(bound(["-Verbose"]).get("Verbose"), true);
  assert.equal(bound(["-Verbose:$false"]).get("Verbose"), false);
  assert.equal(bound(["-Verbose:$true"]).get("Verbose"), true);
  assert.equal(bound(["-NoConnect"]).get("NoConnect"), true);
  assert.throws(() => bindArguments(["-Verbose:yes"]), /-Verbose: is a switch/);
});

Deno.test("bindArguments() rejects duplicates, empty values and bare words", () => {
  assert.throws(
    () => bindArguments(["-tenantID", "a", "-tenant", "b"]),
    /-tenantID: given more than once/,
  );
  assert.throws(() => bindArguments(["-tenantID", ""]), /-tenantID: must not be empty/);
  assert.throws(() => bindArguments(["T"]), /unexpected argument 'T'/);
});

Deno.test("bindArguments() converts enums and numbers", () => {
  assert.equal(bound(["-Protocol", "pop"]).get("Protocol"), "POP3");
  assert.equal(bound(["-OutputFormat", "json"]).get("OutputFormat"), "Json");
  assert.throws(
    () => bindArguments(["-Protocol", "SMTPX"]),
    /-Protocol: expected one of IMAP, POP3/,
  );
  assert.throws(() => bindArguments(["-Port", "99x"]), /-Port: expected a whole number/);
  assert.throws(
    () => bindArguments(["-TimeoutSeconds", "soon"]),
    /-TimeoutSeconds: expected a number/,
  );
});

Deno.test("bindArguments() recognises help and version anywhere", () => {
  assert.deepEqual(bindArguments(["-tenantID", "x", "-?"]), { kind: "help" });
  assert.deepEqual(bindArguments(["--help"]), { kind: "help" });
  assert.deepEqual(bindArguments(["-h"]), { kind: "help" });
  assert.deepEqual(bindArguments(["--version"]), { kind: "version" });
});

Deno.test("bindArguments() accepts an en dash pasted from a document", () => {
  assert.equal(bound(["\u2013tenantID", "T"]).get("tenantID"), "T");
});

Deno.test("bindArguments() ignores a leading -- (deno task start -- ARGS)", () => {
  assert.equal(bound(["--", "-tenantID", "T"]).get("tenantID"), "T");
});
