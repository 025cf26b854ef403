/**
 * Runs a target's inputs in a worker and watches it: when the shared heartbeat stops moving
 * for `stallMs`, the worker is terminated and the input it was on is made again here (inputs
 * are reproducible from seed and number) and reported as a hang. This is the wall-clock guard
 * that a step counter alone cannot give: it also catches synchronous loops.
 */

import { CORPUS_DIR, type CorpusEntry, loadCorpus } from "./corpus.ts";
import {
  BEAT_DONE,
  BEAT_INPUT,
  BEAT_SLOTS,
  BEAT_STARTED,
  DEFAULT_SLOW_MS,
  type Failure,
  makeInput,
  type RunReport,
  type RunRequest,
} from "./harness.ts";
import type { AnyTarget } from "./target.ts";

export interface RunOptions {
  seed: number;
  /** Number of the first generated input (default 0). */
  start?: number;
  count: number;
  replay: boolean;
  corpusDir?: string;
  maxFailures?: number;
  /** Run every input even after `maxFailures` failures. */
  keepGoing?: boolean;
  /** No finished input for this long (ms) = hang. Default: 3 x the target's slow limit. */
  stallMs?: number;
}

/** Loading modules and corpus in a fresh worker is slow on a busy machine, but not this slow. */
const START_MS = 60_000;

/** The module the worker finds targets in. */
const TARGETS_MODULE = new URL("./targets/mod.ts", import.meta.url).href;

/** A target's context (temp files, certificates) and the folder to remove afterwards. */
export interface Prepared {
  target: AnyTarget;
  /** URL of the module exporting `findTarget` that knows the target. */
  module: string;
  ctx: unknown;
  dir: string;
  corpus: CorpusEntry[];
  corpusDir: string;
}

export async function prepare(
  target: AnyTarget,
  corpusDir = CORPUS_DIR,
  module = TARGETS_MODULE,
): Promise<Prepared> {
  const corpus = await loadCorpus(corpusDir, target);
  const dir = await Deno.makeTempDir({ prefix: `fuzz-${target.name}-` });
  try {
    const ctx = target.setup ? await target.setup(dir) : undefined;
    return { target, module, ctx, dir, corpus, corpusDir };
  } catch (error) {
    await Deno.remove(dir, { recursive: true });
    throw error;
  }
}

export async function dispose(prepared: Prepared): Promise<void> {
  await Deno.remove(prepared.dir, { recursive: true }).catch(() => {});
}

/** Runs one request in a fresh worker under the watchdog. */
export function runInWorker(prepared: Prepared, options: RunOptions): Promise<RunReport> {
  const { target } = prepared;
  const request: RunRequest = {
    module: prepared.module,
    target: target.name,
    seed: options.seed,
    start: options.start ?? 0,
    count: options.count,
    replay: options.replay,
    corpusDir: prepared.corpusDir,
    ctx: prepared.ctx,
    maxFailures: options.maxFailures ?? 5,
    keepGoing: options.keepGoing,
  };
  const stallMs = options.stallMs ?? 3 * (target.slowMs ?? DEFAULT_SLOW_MS);
  const beat = new Int32Array(new SharedArrayBuffer(BEAT_SLOTS * Int32Array.BYTES_PER_ELEMENT));
  const started = performance.now();
  const worker = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });

  return new Promise<RunReport>((resolve) => {
    let lastDone = -1;
    let lastChange = performance.now();
    let settled = false;
    const finish = (report: RunReport) => {
      if (settled) return;
      settled = true;
      clearInterval(watchdog);
      worker.terminate();
      resolve(report);
    };
    // A report of what is known when the worker did not send one (it hung or crashed).
    const abandoned = (problem: string): RunReport => {
      const current = Atomics.load(beat, BEAT_INPUT);
      const failure: Failure = { target: target.name, seed: options.seed, problem, input: null };
      if (current < 0) {
        const entry = prepared.corpus[-1 - current];
        failure.corpusFile = entry?.file;
        failure.input = entry?.input ?? null;
      } else {
        failure.index = current;
        failure.input = makeInput(target, options.seed, current, prepared.ctx, prepared.corpus);
      }
      const done = Atomics.load(beat, BEAT_DONE);
      return {
        target: target.name,
        seed: options.seed,
        corpusInputs: Math.min(done, request.replay ? prepared.corpus.length : 0),
        generatedInputs: Math.max(0, done - (request.replay ? prepared.corpus.length : 0)),
        results: 0,
        rejections: 0,
        codes: {},
        slowestMs: 0,
        elapsedMs: performance.now() - started,
        failures: [failure],
        failureCount: 1,
      };
    };
    const watchdog = setInterval(() => {
      const done = Atomics.load(beat, BEAT_DONE);
      const now = performance.now();
      if (Atomics.load(beat, BEAT_STARTED) === 0) {
        // The stall clock starts when the inputs do.
        lastChange = now;
        if (now - started > START_MS) finish(abandoned("the worker did not start within 60 s"));
      } else if (done !== lastDone) {
        lastDone = done;
        lastChange = now;
      } else if (now - lastChange > stallMs) {
        finish(abandoned(`hang: no input finished for ${Math.round(stallMs / 1000)} s`));
      }
    }, 100);
    worker.onmessage = (event: MessageEvent<RunReport>) => finish(event.data);
    worker.onerror = (event: ErrorEvent) => {
      // Handled here: the worker's uncaught error must not take the test process down.
      event.preventDefault();
      finish(abandoned(`the worker crashed: ${event.message}`));
    };
    worker.postMessage({ request, beat: beat.buffer });
  });
}

/** One line per failure, with what is needed to make the input again. */
export function describeFailure(failure: Failure, maxInput = 2000): string {
  const where = failure.corpusFile !== undefined
    ? `corpus file ${failure.target}/${failure.corpusFile}`
    : `input ${failure.index} (FUZZ_SEED=${failure.seed})`;
  let input = JSON.stringify(failure.input) ?? "undefined";
  if (input.length > maxInput) input = `${input.slice(0, maxInput)}... (${input.length} chars)`;
  return `${failure.target}: ${failure.problem}\n  at ${where}\n  input: ${input}` +
    (failure.stack ? `\n  ${failure.stack.split("\n").slice(0, 6).join("\n  ")}` : "");
}

/** A one-line summary for the test output. */
export function summarize(report: RunReport): string {
  const codes = Object.keys(report.codes).length;
  return `fuzz ${report.target}: ${report.corpusInputs} corpus + ${report.generatedInputs} ` +
    `generated inputs (seed ${report.seed}): ${report.results} results, ${report.rejections} ` +
    `typed rejections with ${codes} distinct codes, slowest ${report.slowestMs.toFixed(1)} ms, ` +
    `${(report.elapsedMs / 1000).toFixed(1)} s`;
}
