import assert from "node:assert/strict";
import { acceptLoop } from "./accept_loop.ts";

/** A listener that answers each accept() with the next script step. */
function fakeListener(script: (string | Error)[]) {
  return {
    accept(): Promise<string> {
      const next = script.shift() ?? new Deno.errors.BadResource("closed");
      return next instanceof Error ? Promise.reject(next) : Promise.resolve(next);
    },
  };
}

Deno.test("acceptLoop() logs an accept error, pauses and goes on accepting", async () => {
  const emfile = new Error("Too many open files (os error 24)");
  const listener = fakeListener(["a", emfile, emfile, emfile, emfile, "b", emfile, "c"]);
  const got: string[] = [];
  const logs: string[] = [];
  const pauses: number[] = [];
  await acceptLoop(listener, (c) => got.push(c), {
    label: "127.0.0.1:1110",
    log: (l) => logs.push(l),
    stopping: () => false,
    sleep: (ms) => {
      pauses.push(ms);
      return Promise.resolve();
    },
  });
  assert.deepEqual(got, ["a", "b", "c"]);
  assert.deepEqual(pauses, [200, 400, 800, 1000, 200], "grows to 1 s, starts over after a success");
  assert.equal(logs.length, 5);
  assert.equal(
    logs[0],
    "bridge: accepting on 127.0.0.1:1110 failed: Too many open files (os error 24); retrying",
  );
});

Deno.test("acceptLoop() ends when the listener is closed or the shutdown began", async () => {
  for (const closed of [new Deno.errors.BadResource("x"), new Deno.errors.Interrupted("x")]) {
    const logs: string[] = [];
    await acceptLoop(fakeListener(["a", closed, "never"]), () => {}, {
      label: "l",
      log: (l) => logs.push(l),
      stopping: () => false,
    });
    assert.deepEqual(logs, []);
  }
  let stopping = false;
  const got: string[] = [];
  await acceptLoop(fakeListener(["a", new Error("ECONNABORTED"), "never"]), (c) => {
    got.push(c);
    stopping = true;
  }, { label: "l", log: () => assert.fail("no log"), stopping: () => stopping });
  assert.deepEqual(got, ["a"]);
});

Deno.test("acceptLoop() keeps a real listener going after an accept error", async () => {
  const real = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let failOnce = true;
  const flaky = {
    accept(): Promise<Deno.Conn> {
      if (failOnce) {
        failOnce = false;
        return Promise.reject(new Error("Software caused connection abort (os error 103)"));
      }
      return real.accept();
    },
  };
  const logs: string[] = [];
  const accepted = Promise.withResolvers<Deno.Conn>();
  const loop = acceptLoop(flaky, (c) => accepted.resolve(c), {
    label: "127.0.0.1",
    log: (l) => logs.push(l),
    stopping: () => false,
    sleep: () => Promise.resolve(),
  });
  const client = await Deno.connect({
    hostname: "127.0.0.1",
    port: (real.addr as Deno.NetAddr).port,
  });
  const server = await accepted.promise;
  server.close();
  client.close();
  real.close();
  await loop;
  assert.equal(logs.length, 1);
  assert.match(logs[0], /connection abort.*; retrying$/);
});
