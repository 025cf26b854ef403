/**
 * The long fuzz campaign: `deno task fuzz [target ...]`.
 *
 * Runs FUZZ_ITERATIONS generated inputs in total (default 2,000,000), shared between the
 * targets in the proportions of their CI counts, in batches of FUZZ_BATCH inputs (default
 * 50,000), FUZZ_JOBS workers at a time (default 2), each under the hang watchdog. The seed is
 * FUZZ_SEED or random, and printed. Every input that fails (uncaught exception, untyped or
 * codeless error, broken property, hang) is written into test/fuzz/corpus/<target>/ as
 * crash-<seed>-<input>.json, where every CI run replays it; at most three per kind of problem
 * and ten per target, as one bug tends to fail many inputs. Exit code 1 when anything failed.
 * FUZZ_CORPUS names another corpus folder.
 */

import { CORPUS_DIR, failureFileName, saveCorpusEntry } from "../test/fuzz/corpus.ts";
import type { Failure, RunReport } from "../test/fuzz/harness.ts";
import { parseSeed } from "../test/fuzz/rng.ts";
import {
  describeFailure,
  dispose,
  prepare,
  type Prepared,
  runInWorker,
} from "../test/fuzz/supervisor.ts";
import { TARGETS } from "../test/fuzz/targets/mod.ts";

function envNumber(name: string, fallback: number): number {
  const raw = Deno.env.get(name)?.replace(/[_,]/g, "");
  const value = raw ? Number(raw) : fallback;
  if (!Number.isInteger(value) || value < 1) {
    console.error(`${name} must be a positive whole number, got ${raw}`);
    Deno.exit(2);
  }
  return value;
}

const total = envNumber("FUZZ_ITERATIONS", 2_000_000);
const batch = envNumber("FUZZ_BATCH", 50_000);
const jobs = envNumber("FUZZ_JOBS", 2);
const seed = parseSeed(Deno.env.get("FUZZ_SEED"));
/** Another corpus folder (to try the campaign without touching the repo). */
const corpusDir = Deno.env.get("FUZZ_CORPUS") ?? CORPUS_DIR;
const names = Deno.args.filter((a) => a !== "--");
const unknown = names.filter((name) => !TARGETS.some((t) => t.name === name));
if (unknown.length > 0) {
  console.error(`unknown target(s) ${unknown.join(", ")}; known: ${TARGETS.map((t) => t.name)}`);
  Deno.exit(2);
}
const targets = TARGETS.filter((t) => names.length === 0 || names.includes(t.name));
const weight = targets.reduce((sum, t) => sum + t.ciInputs, 0);

interface Batch {
  prepared: Prepared;
  start: number;
  count: number;
  replay: boolean;
}

interface Tally {
  corpus: number;
  generated: number;
  results: number;
  rejections: number;
  codes: Set<string>;
  failures: Failure[];
  /** All failures, kept or not. */
  failureCount: number;
  written: string[];
  /** Files written per kind of problem (the problem text without its numbers). */
  kinds: Map<string, number>;
}

console.log(`fuzz: ${total} inputs, seed ${seed}, ${jobs} workers, batches of ${batch}`);
const prepared = new Map<string, Prepared>();
const batches: Batch[] = [];
for (const target of targets) {
  const share = Math.max(1, Math.round((total * target.ciInputs) / weight));
  const ready = await prepare(target, corpusDir);
  prepared.set(target.name, ready);
  for (let start = 0; start < share; start += batch) {
    batches.push({
      prepared: ready,
      start,
      count: Math.min(batch, share - start),
      replay: start === 0,
    });
  }
}

const tallies = new Map<string, Tally>(targets.map((t) => [t.name, {
  corpus: 0,
  generated: 0,
  results: 0,
  rejections: 0,
  codes: new Set<string>(),
  failures: [],
  failureCount: 0,
  written: [],
  kinds: new Map(),
}]));

async function record(report: RunReport): Promise<void> {
  const tally = tallies.get(report.target)!;
  tally.corpus += report.corpusInputs;
  tally.generated += report.generatedInputs;
  tally.results += report.results;
  tally.rejections += report.rejections;
  for (const code of Object.keys(report.codes)) tally.codes.add(code);
  tally.failureCount += report.failureCount;
  for (const failure of report.failures) {
    tally.failures.push(failure);
    console.log(describeFailure(failure, 500));
    const kind = failure.problem.replace(/\d+/g, "N").slice(0, 120);
    const seen = tally.kinds.get(kind) ?? 0;
    // Corpus entries that fail are already in the corpus.
    if (failure.corpusFile !== undefined || seen >= 3 || tally.written.length >= 10) continue;
    tally.kinds.set(kind, seen + 1);
    const path = await saveCorpusEntry(
      corpusDir,
      failure.target,
      failureFileName(failure),
      failure.input,
      failure.problem,
    );
    tally.written.push(path);
  }
  const done = tally.corpus + tally.generated;
  console.log(
    `${report.target}: ${done} inputs so far (${(report.elapsedMs / 1000).toFixed(1)} s for ` +
      `this batch), ${tally.failureCount} failures`,
  );
}

const started = performance.now();
let next = 0;
async function work(): Promise<void> {
  while (next < batches.length) {
    const item = batches[next++];
    const report = await runInWorker(item.prepared, {
      seed,
      start: item.start,
      count: item.count,
      replay: item.replay,
      maxFailures: 10,
      keepGoing: true,
    });
    await record(report);
  }
}
await Promise.all(Array.from({ length: Math.min(jobs, batches.length) }, work));
for (const ready of prepared.values()) await dispose(ready);

let failed = false;
console.log(`\nfuzz: done in ${((performance.now() - started) / 1000).toFixed(0)} s, seed ${seed}`);
for (const [name, tally] of tallies) {
  failed ||= tally.failureCount > 0;
  console.log(
    `${name}: ${tally.corpus} corpus + ${tally.generated} generated inputs, ${tally.results} ` +
      `results, ${tally.rejections} typed rejections (${tally.codes.size} codes), ` +
      `${tally.failureCount} failures` +
      (tally.written.length > 0 ? `; written: ${tally.written.join(", ")}` : ""),
  );
}
Deno.exit(failed ? 1 : 0);
