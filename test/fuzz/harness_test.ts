import assert from "node:assert/strict";
import { makeInput } from "./harness.ts";
import { findTarget } from "./harness_targets.ts";
import { dispose, prepare, runInWorker } from "./supervisor.ts";
import { Rng } from "./rng.ts";

const MODULE = new URL("./harness_targets.ts", import.meta.url).href;
const SEED = 1234;

/** Runs a broken target and checks that the first input with n = 0 is the one reported. */
async function expectCaught(name: string, problem: RegExp): Promise<void> {
  const target = findTarget(name);
  const prepared = await prepare(target, "/nonexistent-corpus", MODULE);
  try {
    const report = await runInWorker(prepared, {
      seed: SEED,
      count: target.ciInputs,
      replay: false,
      maxFailures: 1,
      stallMs: 1000,
    });
    assert.equal(report.failures.length, 1, JSON.stringify(report));
    const [failure] = report.failures;
    assert.match(failure.problem, problem);
    let first = 0;
    while ((makeInput(target, SEED, first, undefined, []) as { n: number }).n !== 0) first++;
    assert.equal(failure.index, first, "reports the input that failed");
    assert.deepEqual(failure.input, { n: 0 });
    assert.equal(failure.seed, SEED);
  } finally {
    await dispose(prepared);
  }
}

Deno.test("the fuzz harness reports an untyped exception with its input", async () => {
  await expectCaught("crash", /^untyped TypeError: boom$/);
});

Deno.test("the fuzz harness reports a ToolError without a code", async () => {
  await expectCaught("codeless", /^UsageError without a code: no code$/);
});

Deno.test("the fuzz watchdog ends a synchronous hang and names the input", async () => {
  await expectCaught("sync-hang", /^hang: no input finished for 1 s$/);
});

Deno.test("the fuzz watchdog ends a promise that never settles", async () => {
  await expectCaught("async-hang", /^hang: no input finished for 1 s$/);
});

Deno.test("the fuzz harness reports an input slower than the target's limit", async () => {
  await expectCaught("slow", /^took \d+ ms \(limit 200 ms\)$/);
});

Deno.test("the fuzz harness survives a worker killed by an unhandled rejection", async () => {
  await expectCaught("stray-rejection", /^the worker crashed: .*stray/);
});

Deno.test("Rng gives the same numbers for the same seed and input", () => {
  const a = Rng.forInput(7, "imap", 3);
  const b = Rng.forInput(7, "imap", 3);
  const c = Rng.forInput(7, "imap", 4);
  const draw = (r: Rng) => Array.from({ length: 5 }, () => r.uint32());
  assert.deepEqual(draw(a), draw(b));
  assert.notDeepEqual(draw(Rng.forInput(7, "imap", 3)), draw(c));
});
