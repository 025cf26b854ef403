/**
 * The CI-sized fuzz run: for every target, replay the corpus in `corpus/<target>/`, then run
 * the target's `ciInputs` generated inputs (random, grammar-made and mutated), in a worker
 * under a watchdog. Every input must end with a result or a typed error with a code, within
 * the time limits. The seed is random unless `FUZZ_SEED` is set; it is printed with every
 * summary and failure, so `FUZZ_SEED=<seed> deno test -A test/fuzz/` replays the same run.
 * The long campaign is `deno task fuzz` (scripts/fuzz.ts).
 */

import assert from "node:assert/strict";
import { failureFileName, saveCorpusEntry } from "./corpus.ts";
import type { Failure } from "./harness.ts";
import { parseSeed } from "./rng.ts";
import { describeFailure, dispose, prepare, runInWorker, summarize } from "./supervisor.ts";
import { TARGETS } from "./targets/mod.ts";

const SEED = parseSeed(Deno.env.get("FUZZ_SEED"));

/** The issue asks for at least this many inputs in every CI run, across all targets. */
const MIN_CI_INPUTS = 100_000;

/** Writes the failing inputs in full (the test output shortens them); returns the folder. */
async function saveFailures(failures: Failure[]): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "fuzz-failures-" });
  for (const failure of failures) {
    await saveCorpusEntry(
      dir,
      failure.target,
      failureFileName(failure),
      failure.input,
      failure.problem,
    );
  }
  return dir;
}

Deno.test("fuzz: every CI run feeds at least 100,000 generated inputs", () => {
  const total = TARGETS.reduce((sum, target) => sum + target.ciInputs, 0);
  console.log(
    `fuzz: ${total} generated inputs per run (seed ${SEED}): ` +
      TARGETS.map((t) => `${t.name} ${t.ciInputs}`).join(", "),
  );
  assert.ok(total >= MIN_CI_INPUTS, `only ${total} inputs`);
});

for (const target of TARGETS) {
  Deno.test(`fuzz: ${target.name} survives its corpus and ${target.ciInputs} generated inputs`, async () => {
    const prepared = await prepare(target);
    try {
      const report = await runInWorker(prepared, {
        seed: SEED,
        count: target.ciInputs,
        replay: true,
      });
      console.log(summarize(report));
      if (report.failures.length > 0) {
        const saved = await saveFailures(report.failures);
        assert.fail(
          `${report.failureCount} failure(s) (the run stops at ${report.failures.length}), ` +
            `FUZZ_SEED=${SEED}:\n` +
            report.failures.map((f) => describeFailure(f)).join("\n") +
            `\nThe inputs in full are in ${saved}; copy one into test/fuzz/corpus/${target.name}/ ` +
            "to replay it in every run.",
        );
      }
      assert.equal(report.corpusInputs, prepared.corpus.length, "corpus not fully replayed");
      assert.equal(report.generatedInputs, target.ciInputs, "not every input ran");
      assert.ok(report.results > 0, "no input ever succeeded: the generators are off");
      const codes = Object.keys(report.codes).length;
      assert.ok(
        codes >= (target.minCodes ?? 0),
        `only ${codes} distinct rejection codes (want ${target.minCodes}): the generators are off`,
      );
    } finally {
      await dispose(prepared);
    }
  });
}
