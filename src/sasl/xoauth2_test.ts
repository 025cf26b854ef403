import assert from "node:assert/strict";
import { TokenError, UsageError } from "../errors.ts";
import { buildXoauth2, mailboxProblem, parseXoauth2 } from "./xoauth2.ts";

Deno.test("buildXoauth2() encodes the documented format", () => {
  const sasl = buildXoauth2("box@contoso.com", "eyJ0.eyJ1.sig");
  assert.equal(atob(sasl), "user=box@contoso.com\x01auth=Bearer eyJ0.eyJ1.sig\x01\x01");
  assert.deepEqual(parseXoauth2(sasl), { user: "box@contoso.com", token: "eyJ0.eyJ1.sig" });
});

Deno.test("buildXoauth2() encodes non-ASCII addresses as UTF-8", () => {
  const sasl = buildXoauth2("jürgen@contoso.de", "t");
  assert.deepEqual(parseXoauth2(sasl), { user: "jürgen@contoso.de", token: "t" });
});

Deno.test("buildXoauth2() refuses control characters in user or token with typed errors", () => {
  // Typed (fuzz finding): a TypeError here surfaced as exit 1 "internal error".
  for (const user of ["a\x01@b.c", "a@b.c\r\n", "a\0@b.c", "nobody", "a\ud800@b.c"]) {
    assert.throws(
      () => buildXoauth2(user, "t"),
      (e) => e instanceof UsageError && e.code === "BAD_MAILBOX",
      JSON.stringify(user),
    );
  }
  for (const token of ["t\x01", "", "a b", "t\udc00"]) {
    assert.throws(
      () => buildXoauth2("a@b.c", token),
      (e) => e instanceof TokenError && e.code === "BAD_TOKEN",
      JSON.stringify(token),
    );
  }
});

Deno.test("buildXoauth2() output decodes to exactly the user and token given", () => {
  // A lone surrogate would have been encoded as U+FFFD: a different mailbox (fuzz finding).
  assert.equal(mailboxProblem("a\ud800@b.c"), "contains an invalid character");
  for (const [user, token] of [["jürgen@contoso.de", "t"], ["box@contoso.com", "tökén"]]) {
    assert.deepEqual(parseXoauth2(buildXoauth2(user, token)), { user, token });
  }
});

Deno.test("mailboxProblem() explains each rejected address", () => {
  assert.equal(mailboxProblem("box@contoso.com"), null);
  assert.match(mailboxProblem("box")!, /e-mail address/);
  assert.match(mailboxProblem("@contoso.com")!, /e-mail address/);
  assert.match(mailboxProblem("box@")!, /e-mail address/);
  assert.match(mailboxProblem("a b@c.d")!, /space/);
  assert.match(mailboxProblem("a\x01b@c.d")!, /control/);
  assert.match(mailboxProblem("CONTOSO\\box@c.d")!, /DOMAIN/);
});

Deno.test("mailboxProblem() refuses what copying from a web page, Outlook or Excel leaves", () => {
  const cases: [string, RegExp][] = [
    ["a@b@contoso.com", /more than one @/],
    ['"box@contoso.com"', /in quotes/],
    ["'box@contoso.com'", /in quotes/],
    ["\u201cbox@contoso.com\u201d", /U\+201C, an invisible or look-alike character/],
    ["box\u200b@contoso.com", /U\+200B/],
    ["\ufeffbox@contoso.com", /U\+FEFF/],
    ["box@contoso.com\u00a0", /U\+00A0/],
    ["box\u2010a@contoso.com", /U\+2010/],
    ["mailto:box@contoso.com", /starts with mailto:/],
    ["MAILTO:box@contoso.com", /starts with mailto:/],
    ["box@contoso.com.", /ends with a dot/],
    ["box@contoso..com", /empty part/],
    ["box@contoso.com;other@contoso.com", /list separator/],
    ["box@contoso.com,", /list separator/],
    ["<box@contoso.com>", /< or >/],
  ];
  for (const [address, reason] of cases) {
    assert.match(mailboxProblem(address) ?? "accepted", reason, JSON.stringify(address));
  }
  for (const ok of ["o'brien@contoso.com", "jürgen@contoso.de", "a.b-c+d@sub.contoso.com"]) {
    assert.equal(mailboxProblem(ok), null, ok);
  }
});

Deno.test("parseXoauth2() returns null for garbage", () => {
  assert.equal(parseXoauth2("!!!"), null);
  assert.equal(parseXoauth2(btoa("user=a")), null);
});
