import assert from "node:assert/strict";
import { hashPassword, passwordHashProblem, verifyPassword } from "./password.ts";

Deno.test("hashPassword() makes salted scrypt hashes that verifyPassword() accepts", async () => {
  const [a, b] = await Promise.all([hashPassword("s3cret ü"), hashPassword("s3cret ü")]);
  assert.match(a, /^scrypt\$16384\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
  assert.notEqual(a, b, "a new salt each time");
  assert.ok(!a.includes("s3cret"));
  assert.equal(passwordHashProblem(a), null);
  assert.equal(await verifyPassword("s3cret ü", a), true);
  assert.equal(await verifyPassword("s3cret u", a), false);
  assert.equal(await verifyPassword("", a), false);
});

Deno.test("verifyPassword() refuses unknown users and damaged hashes", async () => {
  assert.equal(await verifyPassword("anything", undefined), false);
  assert.equal(await verifyPassword("x", "scrypt$3$8$1$AAAA$AAAA"), false);
  assert.match(passwordHashProblem("plain-password") ?? "", /expected scrypt/);
  assert.match(
    passwordHashProblem("scrypt$1000$8$1$c2FsdHNhbHQ=$aGFzaGhhc2hoYXNoaGFzaA==") ?? "",
    /power of two/,
  );
});
