/**
 * What a fuzz target is, and the one rule every target checks: a rejection is a `ToolError`
 * of an expected class, with a `code`. Anything else thrown (TypeError, RangeError, a plain
 * Error) is an untyped crash, which in the tool would surface as exit 1 "internal error".
 */

import { ToolError } from "../../src/errors.ts";
import type { Rng } from "./rng.ts";

/** A property the fuzzer found broken. Never a `ToolError`, so it cannot pass as a rejection. */
export class Finding extends Error {
  override readonly name = "Finding";
}

/** How one input ended: a result, or a typed rejection with its code. */
export type Outcome = { kind: "result" } | { kind: "rejection"; code: string };

export const RESULT: Outcome = { kind: "result" };

/** A `ToolError` subclass (the constructor signatures differ, only `instanceof` matters). */
// deno-lint-ignore no-explicit-any
export type ErrorClass = abstract new (...args: any[]) => ToolError;

export interface Target<I, C = undefined> {
  name: string;
  /** Inputs per CI run; the long run shares its total in the same proportions. */
  ciInputs: number;
  /** One input taking longer than this (ms) is a failure: a hang in the making. */
  slowMs?: number;
  /**
   * Distinct rejection codes a CI run must see at least: if the generators stop reaching the
   * deeper checks (say after a protocol change), the count drops and the test says so.
   */
  minCodes?: number;
  /**
   * Makes what inputs refer to (temp files, certificates) in `dir`, once, outside the worker
   * that runs the inputs, so the supervisor can make a hanging input again. JSON-able.
   */
  setup?(dir: string): Promise<C>;
  /** Whether a corpus file's `input` has this target's shape. */
  accepts(value: unknown): value is I;
  /** Makes one input; `corpus` is the target's corpus, for mutation. */
  generate(rng: Rng, ctx: C, corpus: readonly I[]): I;
  /** Runs one input. Throws `Finding` when a property does not hold. */
  run(input: I, ctx: C): Promise<Outcome>;
}

/** A target with its types erased, for lists of targets. */
export type AnyTarget = Target<unknown, unknown>;

export function defineTarget<I, C>(target: Target<I, C>): AnyTarget {
  return target as unknown as AnyTarget;
}

/**
 * Checks a thrown value: returns the rejection when it is a `ToolError` of one of `allowed`
 * with a code, throws a `Finding` (with the value as `cause`) otherwise.
 */
export function expectTyped(error: unknown, allowed: readonly ErrorClass[]): Outcome {
  if (error instanceof Finding) throw error;
  if (!(error instanceof ToolError)) {
    const name = error instanceof Error ? error.name : typeof error;
    const message = error instanceof Error ? error.message : String(error);
    throw new Finding(`untyped ${name}: ${message}`, { cause: error });
  }
  if (!allowed.some((type) => error instanceof type)) {
    throw new Finding(`unexpected ${error.name} (${error.code}): ${error.message}`, {
      cause: error,
    });
  }
  if (!error.code) {
    throw new Finding(`${error.name} without a code: ${error.message}`, { cause: error });
  }
  return { kind: "rejection", code: error.code };
}

/** Runs `body`; a result is RESULT, a throw goes through `expectTyped`. */
export async function outcomeOf(
  body: () => unknown,
  allowed: readonly ErrorClass[],
): Promise<Outcome> {
  try {
    await body();
    return RESULT;
  } catch (error) {
    return expectTyped(error, allowed);
  }
}

/** For code that must never throw: runs `body`, turning anything thrown into a `Finding`. */
export function neverThrows<T>(what: string, body: () => T): T {
  try {
    return body();
  } catch (error) {
    if (error instanceof Finding) throw error;
    const name = error instanceof Error ? error.name : typeof error;
    const message = error instanceof Error ? error.message : String(error);
    throw new Finding(`${what} threw ${name}: ${message}`, { cause: error });
  }
}

export function check(condition: unknown, problem: string): asserts condition {
  if (!condition) throw new Finding(problem);
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === "string");
}
