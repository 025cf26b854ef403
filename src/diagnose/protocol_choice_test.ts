import assert from "node:assert/strict";
import { chooseProtocol } from "./protocol_choice.ts";

Deno.test("chooseProtocol() picks POP3 for an app token with POP.AccessAsApp only", () => {
  assert.deepEqual(chooseProtocol({ roles: ["POP.AccessAsApp"] }, "app"), {
    protocol: "POP3",
    source: "token",
    reason: "roles: POP.AccessAsApp",
    allowed: ["POP3"],
  });
  assert.deepEqual(chooseProtocol({ roles: ["IMAP.AccessAsApp", "SMTP.SendAsApp"] }, "app"), {
    protocol: "IMAP",
    source: "token",
    reason: "roles: IMAP.AccessAsApp",
    allowed: ["IMAP"],
  });
});

Deno.test("chooseProtocol() reads delegated scopes (short or full URL) from scp", () => {
  const pop = chooseProtocol({ scp: "POP.AccessAsUser.All offline_access" }, "user");
  assert.equal(pop.protocol, "POP3");
  assert.equal(pop.reason, "scp: POP.AccessAsUser.All");
  const url = chooseProtocol({ scp: "https://outlook.office.com/POP.AccessAsUser.All" }, "user");
  assert.equal(url.protocol, "POP3");
  // An app token's roles do not count for a user sign-in, and the other way round.
  assert.equal(chooseProtocol({ roles: ["POP.AccessAsApp"] }, "user").source, "default");
  assert.equal(chooseProtocol({ scp: "POP.AccessAsUser.All" }, "app").source, "default");
});

Deno.test("chooseProtocol() keeps IMAP when the token allows both or neither", () => {
  const both = chooseProtocol({ roles: ["IMAP.AccessAsApp", "POP.AccessAsApp"] }, "app");
  assert.deepEqual(both, {
    protocol: "IMAP",
    source: "default",
    reason: "roles allow both IMAP and POP3",
    allowed: ["IMAP", "POP3"],
  });
  const neither = chooseProtocol({ roles: ["SMTP.SendAsApp"] }, "app");
  assert.equal(neither.protocol, "IMAP");
  assert.equal(neither.reason, "roles allow neither IMAP nor POP3");
  assert.deepEqual(neither.allowed, []);
  assert.equal(chooseProtocol({}, "app").protocol, "IMAP");
  assert.equal(chooseProtocol(null, "app").source, "default");
});

Deno.test("chooseProtocol() lets an explicit -Protocol win over the token", () => {
  assert.deepEqual(chooseProtocol({ roles: ["POP.AccessAsApp"] }, "app", "IMAP"), {
    protocol: "IMAP",
    source: "parameter",
    reason: null,
    allowed: [],
  });
  assert.equal(chooseProtocol({ roles: ["POP.AccessAsApp"] }, "app", "SMTP").protocol, "SMTP");
});
