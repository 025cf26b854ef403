/**
 * The fuzz loop that runs inside a worker: replays a target's corpus, then makes and runs
 * numbered inputs, tallying results, rejection codes and the slowest input. After every input
 * it advances a shared heartbeat, so the supervisor can tell a hang (even a synchronous one,
 * such as catastrophic regex backtracking) from slow progress and say which input hung.
 */

import type { CorpusEntry } from "./corpus.ts";
import { Rng } from "./rng.ts";
import { type AnyTarget, Finding } from "./target.ts";

export interface RunRequest {
  /** URL of the module whose `findTarget(name)` gives the target (the worker imports it). */
  module: string;
  target: string;
  seed: number;
  /** Number of the first generated input; inputs are numbered so one can be made alone. */
  start: number;
  /** Generated inputs to run. */
  count: number;
  /** Replay the corpus before the generated inputs. */
  replay: boolean;
  corpusDir: string;
  /** What the target's `setup` made. */
  ctx: unknown;
  /** Keep at most this many failures: one bug tends to fail thousands of inputs. */
  maxFailures: number;
  /** Run every input even after `maxFailures` (the long run); otherwise stop there. */
  keepGoing?: boolean;
}

export interface Failure {
  target: string;
  seed: number;
  /** Number of the generated input (absent for a corpus entry). */
  index?: number;
  /** Corpus file of a replayed entry. */
  corpusFile?: string;
  problem: string;
  input: unknown;
  stack?: string;
}

export interface RunReport {
  target: string;
  seed: number;
  corpusInputs: number;
  generatedInputs: number;
  /** Inputs that ended with a result. */
  results: number;
  /** Inputs that ended with a typed rejection, and how often each code came. */
  rejections: number;
  codes: Record<string, number>;
  slowestMs: number;
  elapsedMs: number;
  /** The first `maxFailures` failures... */
  failures: Failure[];
  /** ...of this many. */
  failureCount: number;
}

/** Heartbeat slots (an Int32Array on a SharedArrayBuffer). */
export const BEAT_DONE = 0;
/** The input being run: its number, or -1 - i for corpus entry i. */
export const BEAT_INPUT = 1;
/** 1 once the worker has loaded the target and corpus (loading is not an input's time). */
export const BEAT_STARTED = 2;
export const BEAT_SLOTS = 3;

/** Default limit for one input; above it the input counts as a hang in the making. */
export const DEFAULT_SLOW_MS = 5000;

/** The generated input `index`, made exactly as the run made it. */
export function makeInput(
  target: AnyTarget,
  seed: number,
  index: number,
  ctx: unknown,
  corpus: readonly CorpusEntry[],
): unknown {
  const inputs = corpus.map((entry) => entry.input);
  return target.generate(Rng.forInput(seed, target.name, index), ctx, inputs);
}

export async function runInputs(
  target: AnyTarget,
  request: RunRequest,
  corpus: readonly CorpusEntry[],
  beat: Int32Array = new Int32Array(BEAT_SLOTS),
): Promise<RunReport> {
  const started = performance.now();
  Atomics.store(beat, BEAT_STARTED, 1);
  const slowMs = target.slowMs ?? DEFAULT_SLOW_MS;
  const report: RunReport = {
    target: target.name,
    seed: request.seed,
    corpusInputs: 0,
    generatedInputs: 0,
    results: 0,
    rejections: 0,
    codes: {},
    slowestMs: 0,
    elapsedMs: 0,
    failures: [],
    failureCount: 0,
  };
  const fail = (where: Pick<Failure, "index" | "corpusFile">, input: unknown, error: unknown) => {
    const problem = error instanceof Finding
      ? error.message
      : `harness error: ${error instanceof Error ? error.message : String(error)}`;
    const cause = error instanceof Error ? error.cause : undefined;
    const stack = cause instanceof Error ? cause.stack : error instanceof Error ? error.stack : "";
    report.failureCount++;
    if (report.failures.length < request.maxFailures) {
      report.failures.push({
        target: target.name,
        seed: request.seed,
        ...where,
        problem,
        input,
        stack,
      });
    }
  };
  const stop = () => !request.keepGoing && report.failureCount >= request.maxFailures;

  const runOne = async (input: unknown, where: Pick<Failure, "index" | "corpusFile">) => {
    const t0 = performance.now();
    try {
      const outcome = await target.run(input, request.ctx);
      if (outcome.kind === "result") {
        report.results++;
      } else {
        report.rejections++;
        report.codes[outcome.code] = (report.codes[outcome.code] ?? 0) + 1;
      }
    } catch (error) {
      fail(where, input, error);
    }
    const ms = performance.now() - t0;
    report.slowestMs = Math.max(report.slowestMs, ms);
    if (ms > slowMs) {
      fail(where, input, new Finding(`took ${Math.round(ms)} ms (limit ${slowMs} ms)`));
    }
    Atomics.add(beat, BEAT_DONE, 1);
  };

  if (request.replay) {
    for (let i = 0; i < corpus.length && !stop(); i++) {
      Atomics.store(beat, BEAT_INPUT, -1 - i);
      await runOne(corpus[i].input, { corpusFile: corpus[i].file });
      report.corpusInputs++;
    }
  }
  const end = request.start + request.count;
  for (let index = request.start; index < end; index++) {
    if (stop()) break;
    Atomics.store(beat, BEAT_INPUT, index);
    let input: unknown;
    try {
      input = makeInput(target, request.seed, index, request.ctx, corpus);
    } catch (error) {
      fail({ index }, null, new Finding(`the generator threw: ${error}`, { cause: error }));
      continue;
    }
    await runOne(input, { index });
    report.generatedInputs++;
  }
  report.elapsedMs = performance.now() - started;
  return report;
}
