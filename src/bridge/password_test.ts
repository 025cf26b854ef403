import assert from "node:assert/strict";
import {
  hashPassword,
  passwordHashProblem,
  RememberedPasswords,
  Semaphore,
  verifyPassword,
} from "./password.ts";

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

Deno.test("verifyPassword() remembers only successes, per password and stored hash, for a while", async () => {
  let now = 0;
  const remembered = new RememberedPasswords(1000, 2, () => now);
  const hash = await hashPassword("right one");
  const other = await hashPassword("right one");
  assert.equal(await verifyPassword("wrong", hash, remembered), false);
  assert.equal(remembered.size, 0, "a failure is never remembered");
  assert.equal(await verifyPassword("right one", hash, remembered), true);
  assert.ok(remembered.has("right one", hash));
  assert.ok(!remembered.has("right one", other), "another stored hash (new salt) checks again");
  assert.ok(!remembered.has("right one ", hash));
  assert.equal(await verifyPassword("wrong", hash, remembered), false, "still checked in full");
  // A remembered success skips scrypt: one remembered by hand (scrypt would say no) proves it.
  remembered.add("never checked", hash);
  assert.equal(await verifyPassword("never checked", hash, remembered), true);
  assert.equal(await verifyPassword("never checked", hash, null), false, "null: always scrypt");
  now = 1000;
  assert.ok(!remembered.has("right one", hash), "forgotten after ttlMs");
  for (const p of ["a", "b", "c"]) remembered.add(p, hash);
  assert.equal(remembered.size, 2, "bounded: the oldest is dropped");
  assert.ok(!remembered.has("a", hash) && remembered.has("c", hash));
  assert.equal(await verifyPassword("right one", undefined, remembered), false);
});

Deno.test("Semaphore runs at most its size at once, the others in order", async () => {
  const slots = new Semaphore(2);
  let running = 0;
  let most = 0;
  const order: number[] = [];
  const gates = Array.from({ length: 5 }, () => Promise.withResolvers<void>());
  const tasks = gates.map((gate, i) =>
    slots.run(async () => {
      running++;
      most = Math.max(most, running);
      order.push(i);
      await gate.promise;
      running--;
      return i;
    })
  );
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual(order, [0, 1]);
  assert.equal(slots.waiting, 3);
  for (const gate of gates) gate.resolve();
  assert.deepEqual(await Promise.all(tasks), [0, 1, 2, 3, 4]);
  assert.deepEqual(order, [0, 1, 2, 3, 4]);
  assert.equal(most, 2);
  // A failing task frees its slot too.
  await assert.rejects(slots.run(() => Promise.reject(new Error("x"))));
  assert.equal(await slots.run(() => Promise.resolve("free")), "free");
});

Deno.test("verifyPassword() waits for a free scrypt slot", async () => {
  const hash = await hashPassword("right");
  const slots = new Semaphore(1);
  const held = Promise.withResolvers<void>();
  const holder = slots.run(() => held.promise);
  let done = false;
  const check = verifyPassword("right", hash, null, slots).then((ok) => {
    done = true;
    return ok;
  });
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(done, false, "no scrypt while the only slot is taken");
  assert.equal(slots.waiting, 1);
  held.resolve();
  await holder;
  assert.equal(await check, true);
});
