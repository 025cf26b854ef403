/**
 * Deliberately broken targets for the harness's own tests (harness_test.ts): each misbehaves
 * on the inputs whose `n` is 0, in one of the ways the fuzzer must catch.
 */

import { UsageError } from "../../src/errors.ts";
import { type AnyTarget, defineTarget, isRecord, outcomeOf } from "./target.ts";

export interface BrokenInput {
  n: number;
}

function broken(name: string, misbehave: () => Promise<unknown> | unknown): AnyTarget {
  return defineTarget<BrokenInput, undefined>({
    name,
    ciInputs: 50,
    slowMs: 200,
    accepts: (value): value is BrokenInput => isRecord(value) && typeof value.n === "number",
    generate: (rng) => ({ n: rng.int(8) }),
    run: (input) =>
      outcomeOf(async () => {
        if (input.n === 0) await misbehave();
      }, [UsageError]),
  });
}

export const BROKEN_TARGETS: readonly AnyTarget[] = [
  broken("crash", () => {
    throw new TypeError("boom");
  }),
  broken("codeless", () => {
    throw new UsageError("no code");
  }),
  broken("sync-hang", () => {
    while (true) {
      // a synchronous loop: only terminating the worker ends it
    }
  }),
  broken("async-hang", () => new Promise(() => {})),
  broken("slow", () => new Promise((resolve) => setTimeout(resolve, 400))),
  broken("stray-rejection", () => {
    // A rejection nobody handles kills the worker.
    Promise.reject(new Error("stray"));
    return new Promise(() => {});
  }),
];

export function findTarget(name: string): AnyTarget {
  const target = BROKEN_TARGETS.find((t) => t.name === name);
  if (!target) throw new Error(`no broken target ${name}`);
  return target;
}
